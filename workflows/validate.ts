import {
  ApplicationFailure,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { tableSearchAttributes } from '../src/shared/search-attributes';
import { INVALID_INPUT, type ResolvedTableRef } from '../src/shared/table-ref';
import {
  DEFAULT_SAMPLE_SIZE,
  MAX_PROBLEMS_PER_TABLE,
  validateInputProblem,
  type ValidateInput,
  type ValidateProgress,
  type ValidateResult,
  type ValidateTableResult,
} from '../src/shared/validate-types';
import { SHORT_IO, VALIDATE } from './activity-options';
import { validateProgressQuery } from './messages';
import { recordConfigDigest, withOutcome } from './run-metadata';

const { planRun } = proxyActivities<Activities>(SHORT_IO);
const { validateTable } = proxyActivities<Activities>(VALIDATE);

/**
 * Validates the archives of every configured table (or the chosen ones, optionally over a UTC
 * day range), one validateTable activity per table, a bounded number at a time. Changes nothing but the
 * audit trail.
 * The result lists every problem by key; a table that could not be validated at all (its
 * activity failed after its retries) is listed as a problem too, so the others still finish.
 * One activity per table keeps the history short: no continue-as-new is needed.
 */
export async function Validate(given: ValidateInput = {}): Promise<ValidateResult> {
  // `temporal workflow start` without --input passes null.
  const input = given ?? {};
  return withOutcome(
    () => validate(input),
    (result) => (result.problems > 0 ? 'problems' : 'valid'),
  );
}

async function validate(input: ValidateInput): Promise<ValidateResult> {
  const problem = validateInputProblem(input);
  if (problem) throw ApplicationFailure.nonRetryable(`workflow input: ${problem}`, INVALID_INPUT);
  const progress: ValidateProgress = {
    tablesTotal: 0,
    tablesDone: 0,
    objectsChecked: 0,
    problems: 0,
    running: [],
    finished: [],
  };
  setHandler(validateProgressQuery, () => progress);

  const plan = await planRun({ database: input.database, table: input.table });
  recordConfigDigest(plan.configDigest);
  progress.tablesTotal = plan.tables.length;
  if (plan.tables.length === 1) {
    const [only] = plan.tables as [ResolvedTableRef];
    upsertSearchAttributes(tableSearchAttributes(only));
  }

  const results: ValidateTableResult[] = [];
  const pending = [...plan.tables];
  const runner = async () => {
    for (let ref = pending.shift(); ref; ref = pending.shift()) {
      progress.running.push(ref);
      const result = await validateOne(ref, input);
      progress.running = progress.running.filter((r) => r !== ref);
      results.push(result);
      record(progress, result);
      setCurrentDetails(
        `Validated ${progress.tablesDone} of ${progress.tablesTotal} tables: ${progress.objectsChecked} objects, ${progress.problems} problems so far`,
      );
    }
  };
  const parallel = Math.max(1, Math.min(plan.limits.maxParallelTables, plan.tables.length));
  await Promise.all(Array.from({ length: parallel }, runner));

  // Tables in the order they were planned, whatever order they finished in.
  const order = (r: ResolvedTableRef) =>
    plan.tables.findIndex(
      (t) => t.database === r.database && t.schema === r.schema && t.table === r.table,
    );
  results.sort((a, b) => order(a) - order(b));
  return {
    tables: results,
    problems: results.reduce((sum, r) => sum + r.problemCount, 0),
    truncated: results.some((r) => r.problemCount > r.problems.length),
  };
}

async function validateOne(
  ref: ResolvedTableRef,
  input: ValidateInput,
): Promise<ValidateTableResult> {
  try {
    return await validateTable({
      table: ref,
      startDate: input.startDate,
      endDate: input.endDate,
      sampleSize: input.sampleSize ?? DEFAULT_SAMPLE_SIZE,
      maxProblems: MAX_PROBLEMS_PER_TABLE,
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    const problem = `could not validate this table: ${innermostMessage(err)}`;
    const key = `${ref.database}/${ref.schema}.${ref.table}`;
    return {
      ...ref,
      objects: 0,
      rows: 0,
      sampled: 0,
      problems: [{ key, problem }],
      problemCount: 1,
    };
  }
}

function record(progress: ValidateProgress, result: ValidateTableResult): void {
  progress.tablesDone++;
  progress.objectsChecked += result.objects;
  progress.problems += result.problemCount;
  const { database, schema, table, objects, rows, sampled, problemCount } = result;
  progress.finished.push({ database, schema, table, objects, rows, sampled, problemCount });
}

/** The innermost message of an activity failure: what actually went wrong. */
function innermostMessage(err: unknown): string {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}
