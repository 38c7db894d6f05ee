import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import {
  bundleWorkflowCode,
  NativeConnection,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createActivities, type Activities } from '../../activities';
import type { Config } from '../../src/config';
import { ArchiveMetrics, archiverSinks } from '../../src/metrics';
import { PoolRegistry } from '../../src/postgres/pool';
import { createS3Client } from '../../src/store/client';
import { storeOf } from './activity';
import { TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from './stack';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflow bundle, built once per test process. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  return bundle;
}

/**
 * The sinks the workflows record metrics into, as the real worker registers them (a worker
 * without them logs an error at each run end and throttle wait); into a registry of their own.
 */
export const testSinks = () => archiverSinks(new ArchiveMetrics());

export interface TestWorker {
  client: Client;
  taskQueue: string;
  config: Config;
  stop(): Promise<void>;
}

/**
 * A real worker, in this process, on a task queue of its own, with the project's real
 * activities against the real PostgreSQL and MinIO, on the real Temporal server.
 */
export async function startTestWorker(
  config: Config,
  address = TEMPORAL_ADDRESS,
): Promise<TestWorker> {
  const taskQueue = config.temporal.task_queue;
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  const pools = new PoolRegistry(config.databases, {});
  const s3 = createS3Client(config.s3);
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: TEMPORAL_NAMESPACE,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities({ config, env: {}, pools, store: storeOf(config, s3) }),
    sinks: testSinks(),
  });
  const running = worker.run();
  return {
    client: new Client({ connection, namespace: TEMPORAL_NAMESPACE }),
    taskQueue,
    config,
    async stop() {
      worker.shutdown();
      await running;
      await pools.close();
      s3.destroy();
      await connection.close();
      await nativeConnection.close();
    },
  };
}

export const uniqueTaskQueue = () => `test-${randomUUID()}`;

/**
 * For a mocha suite of workflow tests: connects to the running Temporal server (the stack's)
 * before the suite and lets go after it. Returns the connected environment's getter.
 */
export function existingServerForSuite(): () => TestWorkflowEnvironment {
  let env: TestWorkflowEnvironment | undefined;
  before(async () => {
    env = await TestWorkflowEnvironment.createFromExistingServer({
      address: TEMPORAL_ADDRESS,
      namespace: TEMPORAL_NAMESPACE,
    });
  });
  after(async () => {
    await env?.teardown();
  });
  return () => {
    if (!env) throw new Error('the Temporal test environment is not connected yet');
    return env;
  };
}

/**
 * Runs `fn` while a worker polls a task queue of its own (passed to `fn`) with the real
 * workflows and the given activities, in memory: a workflow's own logic, without PostgreSQL
 * or MinIO.
 */
export async function withInMemoryActivities<R>(
  env: TestWorkflowEnvironment,
  activities: Partial<Activities>,
  fn: (taskQueue: string) => Promise<R>,
): Promise<R> {
  const taskQueue = uniqueTaskQueue();
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: TEMPORAL_NAMESPACE,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    sinks: testSinks(),
  });
  return worker.runUntil(fn(taskQueue));
}
