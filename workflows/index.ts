/** Every workflow the worker hosts; the worker's only workflowsPath. Deterministic code only. */
export { SnapshotSchema } from './snapshot-schema';
export { ArchiveTable } from './archive-table';
export { ArchiveAll } from './archive-all';
export { Restore } from './restore';
export { Validate } from './validate';
export { ReleaseHolds } from './release-holds';
export { PlaceHold } from './place-hold';
export { AuditTrail } from './audit-trail';
