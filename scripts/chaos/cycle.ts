import type { S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import { archiveTableWorkflowId } from '../../src/shared/archive-types';
import { restoreWorkflowId } from '../../src/shared/restore-types';
import { besides, readArchive, type ArchiveContents } from './bucket';
import { holdAndHeal, injectFault } from './faults';
import { compare, type Finding, type RowModel, type TableRow } from './model';
import type { ChaosOptions } from './options';
import type { Report } from './report';
import { Rng } from './rng';
import type { Orchestrator, RunOutcome } from './runs';
import { SCENARIO, type ChaosStack } from './stack';
import type { AppTraffic } from './traffic';
import { DeadlineError, errorText, say, secs, sleep, withDeadline } from './util';
import type { Workers } from './workers';

/** What the harness reads of an ArchiveTable result; the rest may change freely. */
interface ArchiveOutcome {
  outcome: string;
  heldBy?: string;
  batches?: number;
  rowsArchived?: number;
  rowsDeleted?: number;
  rowsChanged?: number;
}

/** What the harness reads of a Validate result. */
interface ValidateOutcome {
  problems: number;
  tables: { objects?: number; problems: { key: string; problem: string }[] }[];
}

/** What the harness reads of a Restore result. */
interface RestoreOutcome {
  outcome: string;
  rows?: number;
  inserted?: number;
  identical?: number;
}

export interface CycleEnv {
  stack: ChaosStack;
  workers: Workers;
  traffic: AppTraffic;
  model: RowModel;
  orchestrator: Orchestrator;
  /** The harness's own S3 client, straight to MinIO. */
  s3: S3Client;
  options: ChaosOptions;
  report: Report;
}

const TABLE_REF = { database: SCENARIO.database, schema: 'public', table: SCENARIO.table };
const EXAMPLES = 5;

/**
 * Starts archive runs of the table back to back for as long as the fault phase lasts, so
 * that faults land while a run is in flight, and follows each to its end.
 */
class RunLoop {
  inFlight = false;
  /** Set when the loop itself broke (Temporal refused every start, say). */
  error: unknown;
  /** What the run in flight was doing at the last poll (its pending activities). */
  doing = '';
  runs = 0;
  readonly totals = { archived: 0, rowsArchived: 0, rowsDeleted: 0, rowsChanged: 0, batches: 0 };
  private stopping = false;
  private stoppedAt = 0;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly env: CycleEnv,
    private readonly cycle: number,
  ) {}

  start(): void {
    this.loop = this.run().catch((err: unknown) => {
      this.error = err;
    });
  }

  /** No new run after the one in flight; that one gets settleTimeoutMs from now to finish. */
  async finish(): Promise<void> {
    this.stopping = true;
    this.stoppedAt = Date.now();
    await this.loop;
    if (this.error !== undefined)
      this.env.report.failure(
        `cycle ${this.cycle}: archive runs could not go on: ${errorText(this.error)}`,
      );
  }

  private deadline(startedAt: number): number {
    const { runTimeoutMs, settleTimeoutMs } = this.env.options;
    return this.stopping
      ? Math.max(startedAt + runTimeoutMs, this.stoppedAt + settleTimeoutMs)
      : startedAt + runTimeoutMs;
  }

  private async run(): Promise<void> {
    const { orchestrator, traffic, options } = this.env;
    let failedInARow = 0;
    while (!this.stopping) {
      // Old rows on days the run walks through, so that it has work while faults happen.
      await traffic
        .insertOld(options.topUpRows)
        .catch((err: unknown) => say(`  top-up insert failed: ${errorText(err)}`));
      const id = archiveTableWorkflowId(TABLE_REF);
      const handle = await orchestrator.start('ArchiveTable', id, [TABLE_REF]);
      const n = ++this.runs;
      this.inFlight = true;
      const startedAt = Date.now();
      const watching = this.watchDay(handle);
      const outcome = await orchestrator.follow<ArchiveOutcome>(
        handle,
        () => this.deadline(startedAt),
        (pending) => (this.doing = pending),
      );
      this.inFlight = false;
      await watching;
      traffic.hotDay = undefined;
      this.doing = '';
      const ok = this.record(n, outcome);
      failedInARow = ok ? 0 : failedInARow + 1;
      // A run that fails at once would otherwise be started again in a tight loop.
      if (!ok) await sleep(Math.min(30_000, 2_000 * failedInARow));
    }
  }

  /** Tells the application which day the run is archiving, every 2 s while it is in flight. */
  private async watchDay(handle: WorkflowHandle): Promise<void> {
    while (this.inFlight) {
      const progress = await this.env.orchestrator.query<{ currentDay?: string | null }>(
        handle,
        'progress',
      );
      if (progress?.currentDay) this.env.traffic.hotDay = progress.currentDay;
      await sleep(2_000);
    }
  }

  private record(n: number, outcome: RunOutcome<ArchiveOutcome>): boolean {
    const { report } = this.env;
    const label = `cycle ${this.cycle} run ${n} (${outcome.workflowId})`;
    const result = outcome.result;
    if (outcome.status === 'COMPLETED' && result?.outcome === 'archived') {
      this.totals.archived++;
      this.totals.rowsArchived += result.rowsArchived ?? 0;
      this.totals.rowsDeleted += result.rowsDeleted ?? 0;
      this.totals.rowsChanged += result.rowsChanged ?? 0;
      this.totals.batches += result.batches ?? 0;
      say(
        `  run ${n} archived in ${secs(outcome.ms)}: ${result.rowsArchived ?? '?'} rows archived, ${result.rowsDeleted ?? '?'} deleted, ${result.rowsChanged ?? '?'} changed since export, ${result.batches ?? '?'} batches`,
      );
      return true;
    }
    if (outcome.status === 'COMPLETED' && result?.outcome === 'locked') {
      report.failure(
        `${label} found the table locked by ${result.heldBy ?? '?'} while no other run of it was open: a lock outlived its run`,
      );
    } else if (outcome.status === 'COMPLETED') {
      report.failure(`${label} ended with outcome ${result?.outcome ?? '?'}`);
    } else if (outcome.status === 'STUCK') {
      report.failure(
        `${label} was still open ${secs(outcome.ms)} after it started (deadline passed); it was waiting for: ${outcome.failure ?? '?'}; terminated`,
      );
    } else {
      report.failure(
        `${label} ${outcome.status} after ${secs(outcome.ms)}: ${outcome.failure ?? '?'}`,
      );
    }
    return false;
  }
}

/** Waits for a run to be in flight; the run loop's own failure ends the wait at once. */
async function untilRunInFlight(runs: RunLoop, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!runs.inFlight) {
    if (runs.error !== undefined) throw new Error(`archive runs stopped: ${errorText(runs.error)}`);
    if (Date.now() > deadline)
      throw new DeadlineError(`no archive run was in flight for ${secs(timeoutMs)}`);
    await sleep(200);
  }
}

/** One cycle: archive runs under faults with the application writing, then validate, restore, compare. */
export async function runCycle(env: CycleEnv, cycle: number): Promise<void> {
  const { options, report, traffic, workers, stack } = env;
  say(
    `cycle ${cycle}: archive runs with ${options.faultsPerCycle} faults and the application writing`,
  );
  const runs = new RunLoop(env, cycle);
  traffic.start();
  runs.start();
  try {
    for (let i = 1; i <= options.faultsPerCycle; i++) {
      // Each fault draws from a stream of its own (by its number in the whole run), so the
      // plan of fault n does not shift when an earlier one took another branch or a wait
      // took longer: `--seed` replays the same faults with the same parameters.
      const rng = Rng.stream(options.seed, `fault ${report.faults + 1}`);
      const delayMs = rng.int(300, 4_000);
      // A random moment while a run is in flight (the same delay again if the run ended).
      do {
        await untilRunInFlight(runs, options.runTimeoutMs);
        await sleep(delayMs);
      } while (!runs.inFlight);
      const doing = runs.doing;
      const { kind, fault } = await injectFault({ stack, workers, rng }, options.only);
      report.fault(kind);
      say(
        `  fault ${report.faults} [${kind}] ${fault.description}${doing ? `; the run was at: ${doing}` : ''}`,
      );
      await withDeadline(`healing fault ${report.faults} (${kind})`, 180_000, () =>
        holdAndHeal(fault),
      );
    }
  } finally {
    // Whatever happened, nothing stays broken for the rest of the cycle.
    await stack
      .healNetwork()
      .catch((err: unknown) => report.failure(`could not heal the network: ${errorText(err)}`));
    await workers.ensureHealthy();
  }
  await traffic.stop();
  for (const line of workers.unexpectedExits.splice(0)) report.note(line);
  say(
    `  fault phase over; waiting for the run in flight to finish (at most ${secs(options.settleTimeoutMs)})`,
  );
  await runs.finish();
  const t = runs.totals;
  say(
    `  runs: ${runs.runs} started, ${t.archived} archived; ${t.rowsArchived} rows archived, ${t.rowsDeleted} deleted, ${t.rowsChanged} changed since export, in ${t.batches} batches`,
  );
  const c = traffic.counts;
  say(
    `  application so far: ${c.inserts} inserts, ${c.updates} updates, ${c.deletes} deletes (${c.misses} found the row archived), ${c.failed} statements failed, ${c.resolvedAfterLostCommit} commits resolved with pg_xact_status; model ${env.model.size} rows, ${env.model.live} live`,
  );

  await validate(env, cycle);
  const restored = await restore(env, cycle);
  await judge(env, cycle, restored);
  report.cycles++;
}

async function validate(env: CycleEnv, cycle: number): Promise<void> {
  const { orchestrator, report, options } = env;
  const handle = await orchestrator.start(
    'Validate',
    `chaos-validate/cycle-${cycle}/${Date.now()}`,
    [{ database: SCENARIO.database, table: `public.${SCENARIO.table}`, sampleSize: 200 }],
  );
  const startedAt = Date.now();
  const outcome = await orchestrator.follow<ValidateOutcome>(
    handle,
    () => startedAt + options.validateTimeoutMs,
  );
  if (outcome.status !== 'COMPLETED' || !outcome.result) {
    report.failure(
      `cycle ${cycle} validate ${outcome.status} after ${secs(outcome.ms)}: ${outcome.failure ?? '?'}`,
    );
    return;
  }
  const result = outcome.result;
  const listed = result.tables.flatMap((t) => t.problems);
  report.validated(
    listed.map((p) => `${p.key}: ${p.problem}`),
    result.problems,
  );
  const objects = result.tables.reduce((n, t) => n + (t.objects ?? 0), 0);
  say(`  validate: ${result.problems} problems in ${objects} objects (${secs(outcome.ms)})`);
  for (const p of listed.slice(0, EXAMPLES)) say(`    ${p.key}: ${p.problem}`);
}

/** Restores the whole archive into a fresh side table; its name, or undefined if the restore failed. */
async function restore(
  env: CycleEnv,
  cycle: number,
): Promise<{ table: string; complete: boolean }> {
  const { orchestrator, report, options, stack } = env;
  const table = `chaos_restored_${cycle}`;
  await stack.pg.withClient(SCENARIO.database, (c) =>
    c.query(`create table public.${table} (like public.${SCENARIO.table} including all)`),
  );
  const target = { database: SCENARIO.database, schema: 'public', table };
  const handle = await orchestrator.start('Restore', restoreWorkflowId(target), [
    { ...TABLE_REF, targetTable: `public.${table}`, conflict: 'fail' },
  ]);
  const startedAt = Date.now();
  const outcome = await orchestrator.follow<RestoreOutcome>(
    handle,
    () => startedAt + options.restoreTimeoutMs,
  );
  if (outcome.status !== 'COMPLETED' || outcome.result?.outcome !== 'restored') {
    report.failure(
      `cycle ${cycle} restore into ${table} ${outcome.status} after ${secs(outcome.ms)}: ${outcome.failure ?? outcome.result?.outcome ?? '?'}`,
    );
    return { table, complete: false };
  }
  const r = outcome.result;
  say(
    `  restore into ${table}: ${r.rows ?? '?'} rows, ${r.inserted ?? '?'} inserted, ${r.identical ?? 0} identical (${secs(outcome.ms)})`,
  );
  return { table, complete: true };
}

async function readRows(env: CycleEnv, table: string): Promise<TableRow[]> {
  return env.stack.pg.withClient(SCENARIO.database, async (c) => {
    const { rows } = await c.query<TableRow>(
      `select t.id::text as id, to_jsonb(t)::text as content from public.${table} as t`,
    );
    return rows;
  });
}

/** Where a row is in the bucket, for the examples: each archived version and what lies beside it. */
function whereInBucket(archive: ArchiveContents, id: string, latest: string | undefined): string {
  const versions = archive.versions.get(id) ?? [];
  if (versions.length === 0) return 'in no archived object';
  const strip = `${SCENARIO.prefix}${SCENARIO.database}/`;
  return versions
    .map((v) => {
      const same =
        latest === undefined
          ? ''
          : v.content === latest
            ? ' (latest version)'
            : ' (an older version)';
      return `${v.object.replace(strip, '')}${same} [beside it: ${besides(archive, v.object).join(' ') || 'nothing'}]`;
    })
    .join('; ');
}

async function judge(
  env: CycleEnv,
  cycle: number,
  restored: { table: string; complete: boolean },
): Promise<void> {
  const { report, model, stack } = env;
  const [source, side, archive] = await Promise.all([
    readRows(env, SCENARIO.table),
    readRows(env, restored.table),
    readArchive(env.s3, SCENARIO.bucket, SCENARIO.prefix, stack.pg, SCENARIO.database),
  ]);
  const result = compare(model, source, side);
  // Rows in neither table: lost, unless the restore failed before their object and the
  // bucket has their latest version (then the failed restore, already a failure, explains it).
  let notRestored: Finding[] = [];
  let lost = result.lost;
  if (!restored.complete) {
    const inBucket = (f: Finding) =>
      (archive.versions.get(f.id) ?? []).some((v) => v.content === model.rows.get(f.id)?.content);
    notRestored = lost.filter(inBucket);
    lost = lost.filter((f) => !inBucket(f));
  }
  for (const f of lost) report.lostIds.add(f.id);
  for (const f of result.duplicated) report.duplicatedIds.add(f.id);
  for (const f of result.stale) report.staleIds.add(f.id);
  say(
    `  compare: source ${result.inSource} rows, restored ${result.inRestored}, bucket ${archive.lines} lines in ${archive.objects.length} objects; lost ${lost.length}, duplicated ${result.duplicated.length}, stale ${result.stale.length}${notRestored.length ? `, ${notRestored.length} not restored because the restore failed (their latest version is in the bucket)` : ''}${result.skippedUncertain ? `, ${result.skippedUncertain} rows not judged (outcome unknown)` : ''}`,
  );
  const show = (what: string, findings: Finding[], examples = EXAMPLES) => {
    for (const f of findings.slice(0, examples))
      say(
        `    ${what} id ${f.id}: ${f.detail}; bucket: ${whereInBucket(archive, f.id, model.rows.get(f.id)?.content)}`,
      );
    if (findings.length > examples)
      say(`    ... and ${findings.length - examples} more ${what} rows`);
  };
  show('lost', lost);
  show('duplicated', result.duplicated);
  show('stale', result.stale);
  // The restore's failure is reported already; two of these say enough.
  show('not restored', notRestored, 2);
  if (result.modelMismatch.length > 0) {
    show('model mismatch', result.modelMismatch);
    report.failure(
      `cycle ${cycle}: ${result.modelMismatch.length} source rows disagree with the harness's model (the harness is wrong, or something else wrote the table); e.g. id ${result.modelMismatch[0]!.id}: ${result.modelMismatch[0]!.detail}`,
    );
  }
  if (result.unknownRestored.length > 0) {
    show('unknown restored', result.unknownRestored);
    report.failure(
      `cycle ${cycle}: the restore wrote ${result.unknownRestored.length} rows the application never wrote; e.g. id ${result.unknownRestored[0]!.id}`,
    );
  }
  if (model.uncertainStatements > 0)
    report.note(
      `${model.uncertainStatements} application statements had an outcome that could not be learnt; their rows were not judged`,
    );
}
