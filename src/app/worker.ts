import {
  DefaultLogger,
  makeTelemetryFilterString,
  NativeConnection,
  Runtime,
  Worker,
  type LogLevel as SdkLogLevel,
} from '@temporalio/worker';
import { createActivities } from '../../activities';
import { selectTables, type Config, type Env } from '../config';
import type { Logger, LogLevel } from '../logging';
import {
  ArchiveMetrics,
  archiverSinks,
  createMetricsRegistry,
  splitHostPort,
  startHttpEndpoint,
} from '../metrics';
import { PoolRegistry } from '../postgres/pool';
import { openArchiveStore } from '../store/client';
import { temporalConnectOptions } from '../temporal-client/connection';
import {
  createSearchAttributeCommand,
  ensureSearchAttributes,
  missingSearchAttributes,
} from '../temporal-client/search-attributes';
import { SetupError } from '../shared/errors';

export interface RunWorkerOptions {
  config: Config;
  env: Env;
  logger: Logger;
  logLevel: LogLevel;
}

/** Routes the SDK's logs (and Core's, at WARN and above) into the one pino sink. */
function installRuntime(config: Config, logger: Logger, level: LogLevel): void {
  const sdkLogger = logger.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger(level.toUpperCase() as SdkLogLevel, (entry) => {
      const method = entry.level.toLowerCase() as Lowercase<SdkLogLevel>;
      sdkLogger[method](entry.meta ?? {}, entry.message);
    }),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN' }) },
      ...(config.worker.sdk_metrics_address !== null && {
        // Prometheus' conventions (_total, _seconds), as on /metrics; see docs/monitoring.md.
        metrics: {
          prometheus: {
            bindAddress: config.worker.sdk_metrics_address,
            countersTotalSuffix: true,
            unitSuffix: true,
            useSecondsForDurations: true,
          },
        },
      }),
    },
    // The SDK drains the worker on these, then worker.run() resolves and we clean up.
    shutdownSignals: ['SIGINT', 'SIGTERM'],
  });
}

/**
 * Workflows upsert the archiver's search attributes, and a workflow task that names an
 * unregistered one fails over and over; so the worker registers them before it polls, and
 * refuses to start when it may not.
 */
async function checkSearchAttributes(
  connection: NativeConnection,
  namespace: string,
  logger: Logger,
): Promise<void> {
  let missing: string[];
  try {
    missing = await missingSearchAttributes(connection, namespace);
  } catch (err) {
    // Some hosted namespaces do not let workers list attributes; doctor checks them there.
    logger.warn({ err, namespace }, 'could not list search attributes; assuming they exist');
    return;
  }
  if (missing.length === 0) return;
  try {
    await ensureSearchAttributes(connection, namespace);
    logger.info({ namespace, added: missing }, 'registered search attributes');
  } catch (err) {
    throw new SetupError(
      `namespace "${namespace}" lacks the search attributes ${missing.join(', ')} and the worker may not add them; run: ${missing.map((name) => createSearchAttributeCommand(name, namespace)).join(' && ')}`,
      { namespace },
      { cause: err },
    );
  }
}

/**
 * Runs a worker for the configured task queue until SIGINT or SIGTERM: every workflow of
 * workflows/ and every activity of activities/, plus /metrics and /healthz. Builds the only
 * pools and clients the activities use, and closes them on the way out.
 */
export async function runWorker({
  config,
  env,
  logger,
  logLevel,
}: RunWorkerOptions): Promise<void> {
  const { namespace, task_queue: taskQueue } = config.temporal;

  // The HTTP endpoint comes first, before the SDK's runtime exists: a taken port is reported
  // plainly and the process exits, instead of an installed runtime keeping it alive (and
  // swallowing SIGTERM) with no worker to stop.
  let worker: Worker | undefined;
  const metrics = new ArchiveMetrics(createMetricsRegistry());
  metrics.configured(
    selectTables(config).map((t) => ({ ...t, database: t.database.name, table: t.name })),
  );
  const http = await startHttpEndpoint({
    ...splitHostPort(config.worker.http_address),
    registry: metrics.registry,
    health: () => ({
      healthy: worker?.getState() === 'RUNNING',
      details: { worker: worker?.getState() ?? 'STARTING', namespace, taskQueue },
    }),
  }).catch((err: unknown) => {
    throw new SetupError(
      `worker.http_address ${config.worker.http_address}: ${(err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'address already in use (another worker?)' : String(err)}`,
    );
  });
  try {
    installRuntime(config, logger, logLevel);
  } catch (err) {
    http.close();
    throw err;
  }
  const connection = await NativeConnection.connect(
    temporalConnectOptions(config.temporal, env),
  ).catch((err: unknown) => {
    http.close();
    throw err;
  });
  const pools = new PoolRegistry(config.databases, env);
  const bucket = openArchiveStore(config);
  try {
    await checkSearchAttributes(connection, namespace, logger);
    worker = await Worker.create({
      connection,
      namespace,
      taskQueue,
      workflowsPath: require.resolve('../../workflows'),
      activities: createActivities({ config, env, pools, store: bucket.store, metrics }),
      sinks: archiverSinks(metrics),
      maxConcurrentActivityTaskExecutions: config.worker.max_concurrent_activities,
      shutdownGraceTime: `${config.worker.shutdown_grace_seconds}s`,
    });
    logger.info(
      { namespace, taskQueue, address: config.temporal.address, http: config.worker.http_address },
      'worker started',
    );
    await worker.run();
    logger.info({ taskQueue }, 'worker stopped');
  } finally {
    http.close();
    await pools.close();
    bucket.destroy();
    await connection.close();
  }
}
