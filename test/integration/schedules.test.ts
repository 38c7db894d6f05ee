import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { chromium } from 'playwright-core';
import type { ConfigInput } from '../../src/config/schema';
import type { ScheduleConfig } from '../../src/config/schedules';
import type { ScheduleListing } from '../../src/schedules/manage';
import type { ArchiveRunResult } from '../../src/shared/run-types';
import { listAll } from '../helpers/bucket';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { runMain, stackLines } from '../helpers/in-process-cli';
import { PROJECT_DIR, temporal, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from '../helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';
import { createS3Client } from '../../src/store/client';

/** The stack's Temporal Web UI, and Debian's chromium to look at it (temporal/system-packages.sh). */
const WEB_UI = process.env.STACK_TEMPORAL_UI ?? 'http://127.0.0.1:8233';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** With DOCS_SCREENSHOTS=1 the screenshot replaces docs/images/schedule.png. */
const SCREENSHOTS =
  process.env.DOCS_SCREENSHOTS === '1'
    ? path.join(PROJECT_DIR, 'docs', 'images')
    : mkdtempSync(path.join(tmpdir(), 'aa-schedules-'));

/** Polls `fn` until it returns a value other than undefined (visibility lags behind writes). */
async function eventually<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const value = await fn();
    if (value !== undefined) return value;
    if (attempt >= 300) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// Issue 13, item 3: Temporal Schedules from the config, against the stack's real Temporal
// dev server (its `temporal` CLI too), with a real worker archiving a real table.
describe('Schedules from the config: schedule apply, list, delete (real Temporal)', function () {
  this.timeout(240_000);
  // Names unique to this run: other test runs share the server and its schedules.
  const run = `t${randomBytes(4).toString('hex')}`;
  const prefix = `schedules-${run}/`;
  const taskQueue = uniqueTaskQueue();
  const names = { all: `${run}-all`, db: `${run}-db`, table: `${run}-table` };
  const foreignId = `audit-archiver/${run}-foreign`;
  let db: TestDatabase;
  let worker: TestWorker;
  let client: Client;

  const schedules = (): Record<string, Partial<ScheduleConfig>> => ({
    [names.all]: { cron: '30 2 * * *', time_zone: 'Europe/Berlin', note: 'nightly' },
    [names.db]: { database: db.name, every: '6h', offset: '15m', jitter: '1m' },
    [names.table]: {
      database: db.name,
      table: 'audit_log',
      cron: ['0 3 * * *', '0 15 * * SAT'],
      overlap: 'buffer_one',
      catchup_window: '10m',
      // Paused: only the trigger below runs it, never the clock.
      paused: true,
      note: 'paused: runs when triggered',
    },
  });
  const configInput = (edit?: (s: Record<string, Partial<ScheduleConfig>>) => void) => {
    const input: ConfigInput = testConfigInput({ database: db.name, prefix, taskQueue });
    const s = schedules();
    edit?.(s);
    (input as { schedules?: unknown }).schedules = s;
    return input;
  };
  const cli = async (args: string[], input = configInput()) => {
    const result = await runMain([...args, '--config', writeConfigFile(input)]);
    assert.deepEqual(stackLines(result.stderr), [], result.stderr);
    return result;
  };
  const ids = () => Object.values(names).map((n) => `audit-archiver/${n}`);
  const describeSchedule = (id: string) => client.schedule.getHandle(id).describe();

  before(async () => {
    db = await TestDatabase.create();
    await createAuditTable(db, { rows: 300 });
    worker = await startTestWorker(testConfig({ database: db.name, prefix, taskQueue }));
    client = worker.client;
    // Made by someone else: the archiver's id prefix, but not its memo marker.
    await client.schedule.create({
      scheduleId: foreignId,
      spec: { intervals: [{ every: '1d' }] },
      action: { type: 'startWorkflow', workflowType: 'SomeoneElses', taskQueue, args: [] },
      state: { paused: true, note: 'not the archiver' },
    });
  });

  after(async () => {
    for (const id of [...ids(), foreignId]) {
      await client?.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
    await worker?.stop();
    await db?.drop();
  });

  it('creates one schedule per configured scope, and a second apply changes nothing and says "unchanged" for each', async () => {
    const first = await cli(['schedule', 'apply']);
    assert.equal(first.code, 0, first.stderr);
    for (const id of ids()) assert.match(first.stdout, new RegExp(`^created +${id}: `, 'm'));
    assert.match(
      first.stdout,
      new RegExp(`^left alone +${foreignId}: it was not created by audit-archiver`, 'm'),
    );
    const before = await Promise.all(ids().map(describeSchedule));

    const second = await cli(['schedule', 'apply']);
    assert.equal(second.code, 0, second.stderr);
    for (const id of ids()) assert.match(second.stdout, new RegExp(`^unchanged +${id}$`, 'm'));
    assert.doesNotMatch(second.stdout, /^(created|updated)/m);
    const after = await Promise.all(ids().map(describeSchedule));
    for (const [i, d] of after.entries()) {
      assert.equal(d.info.createdAt.getTime(), before[i]!.info.createdAt.getTime());
      assert.equal(d.info.lastUpdatedAt?.getTime(), before[i]!.info.lastUpdatedAt?.getTime());
    }

    // As configured: scope as the workflow input, the spec, the policies, the marker memo.
    const [all, database, table] = after as [
      (typeof after)[0],
      (typeof after)[0],
      (typeof after)[0],
    ];
    assert.deepEqual(all.action.args, [{}]);
    assert.equal(all.action.workflowType, 'ArchiveAll');
    assert.equal(all.action.taskQueue, taskQueue);
    assert.equal(all.action.workflowId, `archive-run/scheduled/${names.all}`);
    assert.equal(all.spec.timezone, 'Europe/Berlin');
    assert.equal(all.spec.calendars?.length, 1);
    assert.equal(all.state.note, 'nightly');
    assert.equal(all.policies.overlap, 'SKIP');
    assert.equal(all.policies.catchupWindow, 3_600_000);
    assert.deepEqual(all.memo, { managedBy: 'audit-archiver', taskQueue, name: names.all });
    assert.deepEqual(database.action.args, [{ database: db.name }]);
    assert.deepEqual(database.spec.intervals, [{ every: 21_600_000, offset: 900_000 }]);
    assert.equal(database.spec.jitter, 60_000);
    assert.deepEqual(table.action.args, [{ database: db.name, table: 'public.audit_log' }]);
    assert.equal(table.spec.calendars?.length, 2);
    assert.equal(table.policies.overlap, 'BUFFER_ONE');
    assert.equal(table.policies.catchupWindow, 600_000);
    assert.equal(table.state.paused, true);
    assert.match(
      table.action.staticSummary ?? '',
      /^Scheduled archive of table public\.audit_log of /,
    );
    assert.match(table.action.staticDetails ?? '', /keeps in step with `schedules\./);
  });

  it('shows them in `temporal schedule list` (the real CLI), with the foreign one still there', async () => {
    const listed = await eventually('the schedules in temporal schedule list', async () => {
      const { stdout } = await temporal('schedule', 'list', '-o', 'json');
      const found = (JSON.parse(stdout) as { scheduleId: string }[]).map((s) => s.scheduleId);
      return [...ids(), foreignId].every((id) => found.includes(id)) ? found : undefined;
    });
    assert.equal(listed.filter((id) => ids().includes(id)).length, 3, 'one schedule per scope');
    const { stdout } = await temporal('schedule', 'describe', '--schedule-id', ids()[0]!);
    assert.match(stdout, /ArchiveAll/);
    assert.match(stdout, /managedBy/);
  });

  it('runs a real archive when a schedule is triggered, and `schedule list` shows its outcome', async () => {
    const id = `audit-archiver/${names.table}`;
    const rowsBefore = Number(
      (await db.one<{ n: string }>('select count(*) as n from audit_log')).n,
    );
    await client.schedule.getHandle(id).trigger();
    const action = await eventually('the triggered run', async () => {
      const d = await describeSchedule(id);
      return d.info.recentActions.at(-1)?.action.workflow;
    });
    assert.match(action.workflowId, new RegExp(`^archive-run/scheduled/${names.table}-`));
    const result = (await client.workflow
      .getHandle(action.workflowId, undefined, { firstExecutionRunId: action.firstExecutionRunId })
      .result()) as ArchiveRunResult;
    assert.equal(result.failed, 0);
    assert.equal(result.tables.length, 1);
    const [archived] = result.tables;
    assert.equal(archived!.outcome, 'archived');
    assert.ok((archived!.rowsArchived ?? 0) > 0, 'rows were archived');
    const rowsAfter = Number(
      (await db.one<{ n: string }>('select count(*) as n from audit_log')).n,
    );
    assert.equal(rowsBefore - rowsAfter, archived!.rowsDeleted);
    const s3 = createS3Client(worker.config.s3);
    try {
      const objects = (await listAll(s3, prefix)).filter((o) => o.key.endsWith('.jsonl.gz'));
      assert.ok(objects.length > 0, 'data objects in the bucket');
    } finally {
      s3.destroy();
    }

    const list = await cli(['schedule', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const listing = JSON.parse(list.stdout) as ScheduleListing[];
    assert.deepEqual(
      listing.map((s) => s.id).sort(),
      [...ids()].sort(),
      'ours only, not the foreign one',
    );
    const table = listing.find((s) => s.id === id)!;
    assert.equal(table.state, 'in step');
    assert.equal(table.paused, true);
    assert.equal(table.lastRun?.workflowId, action.workflowId);
    assert.equal(table.lastRun?.outcome, 'completed: 1 table, 0 failed');
    const text = await cli(['schedule', 'list']);
    assert.match(
      text.stdout,
      new RegExp(`${names.db} +in step +database ${db.name} +every 6h offset 15m +no`),
    );
  });

  it('shows a schedule in the Web UI with its run, its note and its Pause and Trigger controls (chromium)', async () => {
    const id = `audit-archiver/${names.table}`;
    const [run] = (await describeSchedule(id)).info.recentActions.map(
      (a) => a.action.workflow.workflowId,
    );
    assert.ok(run, 'the triggered run (previous test)');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(
        `${WEB_UI}/namespaces/${TEMPORAL_NAMESPACE}/schedules/${encodeURIComponent(id)}`,
      );
      await page.getByText(id, { exact: true }).first().waitFor();
      await page.getByText(run, { exact: false }).first().waitFor();
      const body = await page.innerText('body');
      assert.match(body, /ArchiveAll/);
      assert.match(body, /Paused/);
      assert.match(body, /paused: runs when triggered/);
      await page.getByRole('button', { name: 'Unpause' }).first().waitFor();
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'schedule.png') });
      await page
        .getByRole('button', { name: /schedule actions|more options/i })
        .first()
        .click();
      await page.getByText('Trigger', { exact: true }).first().waitFor();

      await page.goto(`${WEB_UI}/namespaces/${TEMPORAL_NAMESPACE}/schedules`);
      for (const scheduleId of ids())
        await page.getByText(scheduleId, { exact: true }).first().waitFor();
    } finally {
      await browser.close();
    }
  });

  it('updates a schedule when its config changes and says what changed; keeps a pause made outside the config', async () => {
    const changed = configInput((s) => {
      s[names.db] = { ...s[names.db], every: '4h', paused: true };
    });
    const dry = await cli(['schedule', 'apply', '--dry-run'], changed);
    assert.match(
      dry.stdout,
      new RegExp(
        `^would update +audit-archiver/${names.db}:\n +every: "6h" → "4h"\n +paused: false → true$`,
        'm',
      ),
    );
    assert.equal(
      (await describeSchedule(`audit-archiver/${names.db}`)).state.paused,
      false,
      'a dry run changes nothing',
    );

    const applied = await cli(['schedule', 'apply'], changed);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(
      applied.stdout,
      new RegExp(
        `^updated +audit-archiver/${names.db}:\n +every: "6h" → "4h"\n +paused: false → true$`,
        'm',
      ),
    );
    assert.match(applied.stdout, new RegExp(`^unchanged +audit-archiver/${names.all}$`, 'm'));
    const d = await describeSchedule(`audit-archiver/${names.db}`);
    assert.deepEqual(d.spec.intervals, [{ every: 14_400_000, offset: 900_000 }]);
    assert.equal(d.state.paused, true);

    // Paused by an operator with the CLI: apply keeps it paused and says so.
    await temporal(
      'schedule',
      'toggle',
      '--schedule-id',
      `audit-archiver/${names.all}`,
      '--pause',
      '--reason',
      'incident 42',
    );
    const again = await cli(['schedule', 'apply'], changed);
    assert.match(
      again.stdout,
      new RegExp(
        `^unchanged +audit-archiver/${names.all}\n +paused outside the config \\(note: incident 42\\); kept so`,
        'm',
      ),
    );
    assert.equal((await describeSchedule(`audit-archiver/${names.all}`)).state.paused, true);

    // Edited outside the config (the overlap policy): apply puts it back.
    await client.schedule
      .getHandle(`audit-archiver/${names.table}`)
      .update((prev) => ({ ...prev, policies: { ...prev.policies, overlap: 'ALLOW_ALL' } }));
    const fixed = await cli(['schedule', 'apply'], changed);
    assert.match(
      fixed.stdout,
      new RegExp(
        `^updated +audit-archiver/${names.table}:\n +overlap: "ALLOW_ALL" → "BUFFER_ONE" \\(it was changed outside the config\\)$`,
        'm',
      ),
    );
    assert.equal(
      (await describeSchedule(`audit-archiver/${names.table}`)).policies.overlap,
      'BUFFER_ONE',
    );
  });

  it('reports a schedule removed from the config as stale, and deletes it only with --prune', async () => {
    const without = configInput((s) => delete s[names.db]);
    const stale = await cli(['schedule', 'apply'], without);
    assert.equal(stale.code, 0, stale.stderr);
    assert.match(
      stale.stdout,
      new RegExp(
        `^stale +audit-archiver/${names.db}: no longer in the config; kept \\(apply --prune deletes it\\)$`,
        'm',
      ),
    );
    await describeSchedule(`audit-archiver/${names.db}`);

    const pruned = await cli(['schedule', 'apply', '--prune'], without);
    assert.match(
      pruned.stdout,
      new RegExp(
        `^deleted +audit-archiver/${names.db}: no longer in the config \\(--prune\\)$`,
        'm',
      ),
    );
    assert.match(pruned.stdout, new RegExp(`^left alone +${foreignId}: `, 'm'));
    await assert.rejects(describeSchedule(`audit-archiver/${names.db}`), ScheduleNotFoundError);
    await describeSchedule(foreignId);
  });

  it('refuses to delete a schedule it did not create, and deletes its own', async () => {
    const foreign = await cli(['schedule', 'delete', `${run}-foreign`]);
    assert.equal(foreign.code, 1);
    assert.match(
      foreign.stdout,
      new RegExp(`^left alone +${foreignId}: it was not created by audit-archiver`, 'm'),
    );
    const missing = await cli(['schedule', 'delete', `${run}-no-such`]);
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      new RegExp(`^error: no schedule audit-archiver/${run}-no-such `, 'm'),
    );

    const one = await cli(['schedule', 'delete', names.all]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^deleted +audit-archiver/${names.all}$`, 'm'));
    await assert.rejects(describeSchedule(`audit-archiver/${names.all}`), ScheduleNotFoundError);

    const all = await cli(['schedule', 'delete', '--all']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`^deleted +audit-archiver/${names.table}$`, 'm'));
    for (const id of ids()) await assert.rejects(describeSchedule(id), ScheduleNotFoundError);
    const left = await describeSchedule(foreignId);
    assert.equal(left.state.note, 'not the archiver');
  });

  it("leaves another deployment's schedules (another task queue) to it, and fails a configured schedule whose id someone else holds", async () => {
    // Made by the archiver for another task queue: a second deployment in the namespace.
    const otherId = `audit-archiver/${run}-other`;
    await client.schedule.create({
      scheduleId: otherId,
      spec: { intervals: [{ every: '1d' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'ArchiveAll',
        taskQueue: `${taskQueue}-other`,
        args: [{}],
      },
      state: { paused: true },
      memo: { managedBy: 'audit-archiver', taskQueue: `${taskQueue}-other`, name: `${run}-other` },
    });
    try {
      // The config names a schedule whose id the foreign schedule holds.
      const clash = configInput((s) => {
        s[`${run}-foreign`] = { every: '1d' };
      });
      const applied = await cli(['schedule', 'apply', '--prune'], clash);
      assert.equal(applied.code, 1);
      assert.match(
        applied.stdout,
        new RegExp(
          `^FAILED +${foreignId}: the id is taken and it was not created by audit-archiver \\(its memo has no managedBy marker\\); left alone \\(rename the schedule in the config\\)$`,
          'm',
        ),
      );
      assert.doesNotMatch(
        applied.stdout,
        new RegExp(otherId),
        'another deployment is not reported, nor pruned',
      );
      await describeSchedule(otherId);
      assert.equal((await describeSchedule(foreignId)).action.workflowType, 'SomeoneElses');

      const list = JSON.parse(
        (await cli(['schedule', 'list', '--json'], clash)).stdout,
      ) as ScheduleListing[];
      assert.equal(list.find((l) => l.id === foreignId)?.state, 'id taken');
      assert.equal(
        list.find((l) => l.id === otherId),
        undefined,
      );

      const all = await cli(['schedule', 'delete', '--all']);
      assert.equal(all.code, 0, all.stderr);
      assert.doesNotMatch(all.stdout, new RegExp(otherId));
      await describeSchedule(otherId);
      // Named on purpose, it is deleted: it is the archiver's, and the line says whose.
      const named = await cli(['schedule', 'delete', `${run}-other`]);
      assert.equal(named.code, 0, named.stderr);
      assert.match(
        named.stdout,
        new RegExp(`^deleted +${otherId} \\(it was task queue ${taskQueue}-other's\\)$`, 'm'),
      );
      await assert.rejects(describeSchedule(otherId), ScheduleNotFoundError);
    } finally {
      await client.schedule
        .getHandle(otherId)
        .delete()
        .catch(() => undefined);
    }
  });

  it('answers a namespace the server does not have with one line and exit 1', async () => {
    const result = await runMain(['schedule', 'list', '--config', writeConfigFile(configInput())], {
      TEMPORAL_NAMESPACE: `no-such-namespace-${run}`,
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.equal(
      result.stderr,
      `error: namespace no-such-namespace-${run} does not exist on the Temporal server at ${TEMPORAL_ADDRESS} (temporal.namespace, or TEMPORAL_NAMESPACE)\n`,
    );
  });

  it('answers an unreachable Temporal server with one line and exit 1', async () => {
    const result = await runMain(
      ['schedule', 'apply', '--config', writeConfigFile(configInput())],
      {
        TEMPORAL_ADDRESS: '127.0.0.1:1',
      },
    );
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /^error: cannot reach the Temporal server at 127\.0\.0\.1:1 \(namespace \S+\): .+\n$/,
    );
  });
});
