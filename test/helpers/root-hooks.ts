import { DefaultLogger, Runtime } from '@temporalio/worker';
import { removeConfigFiles } from './config';

// The SDK Runtime is a process-wide singleton that must be configured before the first
// worker or connection exists, so it is installed once here for every test file.
Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

// The local stack's MinIO speaks with MinIO's dev credentials unless the caller set others.
process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
// The AWS SDK warns on every process that Node 20 support ends in 2027 (see README); the
// warning is true but would bury the test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Mocha root hooks: run once around the whole test run. */
export const mochaHooks = {
  afterAll(): void {
    removeConfigFiles();
  },
};
