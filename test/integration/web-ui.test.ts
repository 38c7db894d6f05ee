import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowExecutionDescription, WorkflowExecutionInfo } from '@temporalio/client';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ArchiveAll, ArchiveTable } from '../../workflows';
import { configDigest, type Config } from '../../src/config';
import { archiveTableWorkflowId } from '../../src/shared/archive-types';
import {
  ArchiveDatabase,
  ArchiveOutcome,
  ArchiveTable as ArchiveTableAttribute,
} from '../../src/shared/search-attributes';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { runMain } from '../helpers/in-process-cli';
import { PROJECT_DIR, TEMPORAL_NAMESPACE } from '../helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

/** The stack's Temporal Web UI (temporal/stack.sh: the dev server's UI port). */
const WEB_UI = process.env.STACK_TEMPORAL_UI ?? 'http://127.0.0.1:8233';
/**
 * With DOCS_SCREENSHOTS=1 (`npm run docs:screenshots`) the screenshots replace the ones in
 * docs/images/; otherwise they go to a temporary folder, so every run still takes them.
 */
const SCREENSHOTS =
  process.env.DOCS_SCREENSHOTS === '1'
    ? path.join(PROJECT_DIR, 'docs', 'images')
    : mkdtempSync(path.join(tmpdir(), 'aa-web-ui-'));

/** Debian's chromium, which temporal/system-packages.sh installs (playwright-core brings none). */
function chromiumPath(): string {
  try {
    return execFileSync('bash', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      "chromium is not installed: the Web UI test drives Debian's chromium; run temporal/system-packages.sh (apt-get install chromium) and try again",
    );
  }
}

/** Polls `fn` until it returns a value, as visibility is eventually consistent. */
async function eventually<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt < 120; attempt++) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`gave up waiting for ${what}`);
}

// An operator finds a table's runs in the Temporal Web UI by its search attributes and reads
// what each did from its summary, details, memo and outcome, with no access to the worker's
// logs. A real archive run, started by the CLI, through a real worker and the real server.
describe('Web UI: a run tells its story (real stack, chromium)', function () {
  this.timeout(300_000);
  const table = `audit_webui_${randomBytes(4).toString('hex')}`;
  let db: TestDatabase;
  let config: Config;
  let worker: TestWorker;
  let ref: { database: string; schema: string; table: string };
  /** The ArchiveTable run the CLI's archive started (a child of its ArchiveAll run). */
  let archived: WorkflowExecutionInfo;
  /** The ArchiveAll run the CLI started. */
  let parent: WorkflowExecutionDescription;

  /** The runs of this test's table, by a visibility query, once `count` of them are closed. */
  const runsOfTable = (extra = '', count = 1) =>
    eventually(`${count} closed run(s) of ${table}${extra}`, async () => {
      const runs: WorkflowExecutionInfo[] = [];
      const query = `ArchiveDatabase = '${ref.database}' AND ArchiveTable = 'public.${table}' AND WorkflowType = 'ArchiveTable' AND ExecutionStatus != 'Running'${extra}`;
      for await (const run of worker.client.workflow.list({ query })) runs.push(run);
      return runs.length >= count ? runs : undefined;
    });

  before(async () => {
    db = await TestDatabase.create();
    await createAuditTable(db, { table, rows: 300 });
    ref = { database: db.name, schema: 'public', table };
    const options = {
      database: db.name,
      tables: [{ name: table }],
      prefix: `web-ui-${randomBytes(6).toString('hex')}/`,
      taskQueue: uniqueTaskQueue(),
    };
    config = testConfig(options);
    worker = await startTestWorker(config);
    const file = writeConfigFile(testConfigInput(options));
    const run = await runMain(['archive', '--config', file, '--table', table]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const runId = /archive run (archive-run\/\S+) started/.exec(run.stdout)?.[1];
    assert.ok(runId, run.stdout);
    parent = await worker.client.workflow.getHandle(runId).describe();
    [archived] = (await runsOfTable()) as [WorkflowExecutionInfo];
  });

  after(async () => {
    await worker?.stop();
    await db?.drop();
  });

  it('gives the runs the CLI starts a summary, details, the config digest and who started them', async () => {
    const child = await worker.client.workflow
      .getHandle(archived.workflowId, archived.runId)
      .describe();
    assert.equal(child.workflowId, archiveTableWorkflowId(ref));
    assert.equal(await child.staticSummary(), `Archive ${db.name} public.${table}`);
    const details = await child.staticDetails();
    assert.match(details ?? '', new RegExp(`Scope:\\*\\* ${db.name} public\\.${table}\\n`));
    assert.match(details ?? '', new RegExp(`Started with:\\*\\* ArchiveAll ${parent.workflowId}`));
    const digest = configDigest(config);
    assert.deepEqual(child.memo, { configDigest: digest, startedBy: parent.memo?.startedBy });
    assert.match(String(parent.memo?.startedBy), /^audit-archiver CLI \(.+@.+\)$/);
    assert.equal(parent.memo?.configDigest, digest);
    assert.equal(await parent.staticSummary(), `Archive run ${table}`);
    assert.match(
      (await parent.staticDetails()) ?? '',
      new RegExp(`Started with:\\*\\* audit-archiver archive --table ${table}\\n`),
    );
    assert.match((await parent.staticDetails()) ?? '', /Rows:\*\* older than 7 days/);
  });

  it('sets the search attributes an operator filters on, the outcome as the run ends', async () => {
    const child = await worker.client.workflow
      .getHandle(archived.workflowId, archived.runId)
      .describe();
    const attributes = child.typedSearchAttributes;
    assert.equal(attributes.get(ArchiveDatabase), db.name);
    assert.equal(attributes.get(ArchiveTableAttribute), `public.${table}`);
    assert.equal(attributes.get(ArchiveOutcome), 'archived');
    // The whole run (ArchiveAll) has an outcome too: archived, since its one table moved rows.
    const whole = await worker.client.workflow.getHandle(parent.workflowId).describe();
    assert.equal(whole.typedSearchAttributes.get(ArchiveOutcome), 'archived');
    // A run of one table is found by its table too: the CLI sets it at start.
    assert.equal(whole.typedSearchAttributes.get(ArchiveTableAttribute), `public.${table}`);
    const byOutcome = await runsOfTable(` AND ArchiveOutcome = 'archived'`);
    assert.deepEqual(
      byOutcome.map((r) => r.runId),
      [archived.runId],
    );
  });

  it('completes the memo of a run started without the CLI from the worker, and says there was nothing left', async () => {
    const handle = await worker.client.workflow.start<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: worker.taskQueue,
      workflowId: archiveTableWorkflowId(ref),
      args: [ref],
    });
    const result = await handle.result();
    assert.equal(result.outcome, 'archived');
    const run = await handle.describe();
    assert.deepEqual(run.memo, {
      configDigest: configDigest(config),
      startedBy:
        'a Temporal client other than the CLI (temporal workflow start, the Web UI, an SDK)',
    });
    assert.equal(run.typedSearchAttributes.get(ArchiveOutcome), 'nothing-to-archive');
    const listed = await runsOfTable(` AND ArchiveOutcome = 'nothing-to-archive'`);
    assert.deepEqual(
      listed.map((r) => r.runId),
      [handle.firstExecutionRunId],
    );
  });

  it("records the worker's digest beside the starter's when their configs differ", async () => {
    // A dry run writes nothing: the table's archive stays as the CLI's run left it.
    const handle = await worker.client.workflow.start<typeof ArchiveAll>('ArchiveAll', {
      taskQueue: worker.taskQueue,
      workflowId: `archive-dry-run/web-ui-${randomBytes(4).toString('hex')}`,
      args: [{ database: db.name, table, dryRun: true }],
      memo: { configDigest: 'sha256:another-config', startedBy: 'a test' },
    });
    const result = await handle.result();
    assert.deepEqual(
      result.tables.map((t) => t.outcome),
      ['dry-run'],
    );
    const run = await handle.describe();
    assert.deepEqual(run.memo, {
      configDigest: 'sha256:another-config',
      startedBy: 'a test',
      workerConfigDigest: configDigest(config),
    });
    assert.equal(run.typedSearchAttributes.get(ArchiveOutcome), 'dry-run');
  });

  it('marks a run that failed ArchiveOutcome = failed', async () => {
    // A table the worker's config does not name: planning fails at once, no retry can fix it.
    const missing = { ...ref, table: `${table}_not_configured` };
    const handle = await worker.client.workflow.start<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: worker.taskQueue,
      workflowId: archiveTableWorkflowId(missing),
      args: [missing],
    });
    await assert.rejects(handle.result(), /workflow execution failed/i);
    const run = await handle.describe();
    assert.equal(run.status.name, 'FAILED');
    assert.equal(run.typedSearchAttributes.get(ArchiveOutcome), 'failed');
  });

  describe('in the browser', () => {
    let browser: Browser;
    let page: Page;

    before(async () => {
      browser = await chromium.launch({
        executablePath: chromiumPath(),
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
      if (process.env.DOCS_SCREENSHOTS === '1') mkdirSync(SCREENSHOTS, { recursive: true });
    });

    after(async () => {
      await browser?.close();
    });

    it('finds the run by ArchiveTable, opens it, and shows its summary and outcome', async () => {
      const query = `ArchiveTable = 'public.${table}'`;
      const list = `${WEB_UI}/namespaces/${TEMPORAL_NAMESPACE}/workflows?query=${encodeURIComponent(query)}`;
      await page.goto(list);
      const runLink = page.locator(`a[href*="${archived.runId}"]`).first();
      await runLink.waitFor({ timeout: 30_000 });
      // The outcome as a column of the list: the operator's one-time choice in the table's settings.
      await page.getByTestId('workflows-summary-table-configuration-button').click();
      await page.getByRole('button', { name: 'Add ArchiveOutcome column' }).click();
      await page.getByRole('button', { name: 'Remove Run ID column' }).click();
      for (let i = 0; i < 3; i++) {
        await page.getByRole('button', { name: 'Move ArchiveOutcome column up' }).click();
      }
      await page.keyboard.press('Escape');
      await page.getByRole('button', { name: 'Collapse saved views' }).click();
      const row = page
        .getByRole('row')
        .filter({ has: page.locator(`a[href*="${archived.runId}"]`) });
      await row.getByText('archived', { exact: true }).waitFor();
      // The whole run (ArchiveAll) of this one table is listed beside the table's runs.
      await page.locator(`a[href*="${parent.runId}"]`).first().waitFor();
      await page.screenshot({
        path: path.join(SCREENSHOTS, 'web-ui-list.png'),
        clip: { x: 0, y: 0, width: 1600, height: 440 },
      });

      await runLink.click();
      await page.getByText(archived.workflowId, { exact: true }).first().waitFor();
      // The run's result names its outcome on the run's first page.
      await page.getByText('"archived"').first().waitFor();
      await page.getByRole('tab', { name: 'User Metadata' }).click();
      // Summary, details and current details are markdown, each rendered in a frame of its own.
      const shown = (text: string | RegExp) =>
        eventually(`${String(text)} on the run's User Metadata tab`, async () => {
          for (const frame of page.frames()) {
            // A frame the page renders again (current details) is gone when asked: look again.
            const found = await frame
              .getByText(text)
              .count()
              .catch(() => 0);
            if (found > 0) return true;
          }
          return undefined;
        });
      await shown(`Archive ${db.name} public.${table}`);
      await shown(`ArchiveAll ${parent.workflowId}`);
      // Current details come from the worker, which still runs: the run's last words.
      await shown(/^Outcome: archived\. \d+ rows archived in \d+ objects/);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'web-ui-run.png') });
      await page.getByRole('tab', { name: 'Search Attributes' }).click();
      await page.getByText('"ArchiveOutcome": "archived"').waitFor();
    });
  });
});
