import { DefaultLogger } from '@temporalio/worker';
import type { MockActivityEnvironment } from '@temporalio/testing';

/** Runs an activity in a mock activity context, keeping its result type (the SDK's loses it). */
export function runActivity<A extends unknown[], R>(
  env: MockActivityEnvironment,
  fn: (...args: A) => Promise<R>,
  ...args: A
): Promise<R> {
  return env.run<A, R, (...args: A) => Promise<R>>(fn, ...args);
}

/** Activity failures are the point of many tests; only errors of the test itself are printed. */
export const quietLogger = new DefaultLogger('ERROR');
