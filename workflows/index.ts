/** Every workflow the worker hosts; the worker's only workflowsPath. Deterministic code only. */
export { SnapshotSchema } from './snapshot-schema';
