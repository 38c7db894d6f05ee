import type { S3Client } from '@aws-sdk/client-s3';
import type { archiveActivities } from '../../activities/archive';
import type { Config } from '../../src/config';
import type {
  BatchWatermark,
  Cursor,
  DayRange,
  ExportBatchInput,
  ExportedBatch,
} from '../../src/shared/archive-types';
import type { ArchiveStore } from '../../src/store/archive-store';
import { archiveStoreOn } from '../../src/store/client';
import type { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';

type AsyncFunction = (...args: never[]) => Promise<unknown>;

/**
 * Runs one activity of an activity set in a mock activity context, keeping its argument and
 * result types (the SDK's `run` loses them).
 */
export function runActivity<T extends Record<K, AsyncFunction>, K extends keyof T>(
  env: MockActivityEnvironment,
  activities: T,
  name: K,
  ...args: Parameters<T[K]>
): ReturnType<T[K]> {
  const fn = (...a: Parameters<T[K]>) => activities[name](...a);
  return env.run(fn, ...args) as ReturnType<T[K]>;
}

/** Activity failures are the point of many tests; only errors of the test itself are printed. */
export const quietLogger = new DefaultLogger('ERROR');

/** The archive store of a test config, on the test's own S3 client. */
export function storeOf(config: Config, s3: S3Client): ArchiveStore {
  return archiveStoreOn(s3, config);
}

type ArchiveActs = Pick<ReturnType<typeof archiveActivities>, 'findBatch' | 'exportBatch'>;

/**
 * Finds where the next batch starts from `cursor` and exports it, as the workflow does:
 * undefined when no eligible row is left.
 */
export async function exportFrom(
  env: MockActivityEnvironment,
  acts: ArchiveActs,
  input: Omit<ExportBatchInput, 'start' | 'holds'> & { cursor: Cursor; holds?: DayRange[] },
): Promise<ExportedBatch | undefined> {
  const { cursor, holds = [], ...rest } = input;
  const start = await runActivity(env, acts, 'findBatch', {
    table: input.table,
    cutoff: input.cutoff,
    cursor,
    holds,
  });
  if (!start) return undefined;
  const exported = await runActivity(env, acts, 'exportBatch', { ...rest, start, holds });
  if (exported.kind !== 'batch') throw new Error(`batch ${input.batch} found no rows to export`);
  return exported;
}

/** The watermark deleteBatch records for a batch of a test run (`run` names the run). */
export function watermarkOf(
  batch: Pick<ExportedBatch, 'maxTimestamp' | 'maxTimestampMicros'>,
  run = 'test-run',
): BatchWatermark {
  return {
    run,
    cutoff: new Date().toISOString(),
    maxTimestamp: batch.maxTimestamp,
    maxTimestampMicros: batch.maxTimestampMicros,
  };
}
