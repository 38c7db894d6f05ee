/**
 * Every error the archiver raises on purpose. The class name is the contract: Temporal turns
 * a thrown error's class name into the failure type that retry policies match on, and
 * NON_RETRYABLE_ERROR_TYPES is derived from the classes' `retryable` flags below. Pure code:
 * workflows import this file.
 */

export type ErrorContext = Record<string, string | number | boolean | null | undefined>;

export abstract class ArchiverError extends Error {
  /** Stable, machine-readable code, printed by the CLI and logged. */
  abstract readonly code: string;
  /** False when retrying cannot help: the input or the environment must change first. */
  abstract readonly retryable: boolean;

  constructor(
    message: string,
    readonly context: ErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The configuration file is missing, unreadable or invalid. */
export class ConfigError extends ArchiverError {
  readonly code = 'CONFIG_INVALID';
  readonly retryable = false;
}

/** A secret named in the config (an environment variable or a file) is not there. */
export class SecretMissingError extends ArchiverError {
  readonly code = 'SECRET_MISSING';
  readonly retryable = false;
}

/** A workflow or command named a database or table that the config does not list. */
export class TableNotConfiguredError extends ArchiverError {
  readonly code = 'TABLE_NOT_CONFIGURED';
  readonly retryable = false;
}

/** The configured table does not exist in the database, or the archiver cannot see it. */
export class TableNotFoundError extends ArchiverError {
  readonly code = 'TABLE_NOT_FOUND';
  readonly retryable = false;
}

/** The table exists but does not have the shape the config describes (columns, keys). */
export class TableShapeError extends ArchiverError {
  readonly code = 'TABLE_SHAPE';
  readonly retryable = false;
}

/**
 * An object in the bucket already holds different content under a key the archiver
 * writes deterministically. Never resolved by overwriting (docs/architecture.md, the bucket).
 */
export class ObjectConflictError extends ArchiverError {
  readonly code = 'OBJECT_CONFLICT';
  readonly retryable = false;
}

/** The environment around the archiver is not set up as it needs (server, namespace, bucket). */
export class SetupError extends ArchiverError {
  readonly code = 'SETUP';
  readonly retryable = false;
}

/**
 * A stored object does not match its manifest (checksum, row count, keys) or cannot be read
 * as an archive. Nothing that depends on it is deleted.
 */
export class VerificationError extends ArchiverError {
  readonly code = 'VERIFICATION_FAILED';
  readonly retryable = false;
}

/** The table's schema changed during a run; the next run snapshots the new schema. */
export class SchemaChangedError extends ArchiverError {
  readonly code = 'SCHEMA_CHANGED';
  readonly retryable = false;
}

/** The session that held the table's lock is gone; nothing may be deleted until it is retaken. */
export class LockLostError extends ArchiverError {
  readonly code = 'LOCK_LOST';
  readonly retryable = false;
}

/** A delete removed other rows than its manifest allows; it was rolled back. */
export class DeleteMismatchError extends ArchiverError {
  readonly code = 'DELETE_MISMATCH';
  readonly retryable = false;
}

/** A restore cannot go ahead as asked: conflicting rows under `fail`, or columns it would lose. */
export class RestoreRefusedError extends ArchiverError {
  readonly code = 'RESTORE_REFUSED';
  readonly retryable = false;
}

/**
 * A document in the bucket (manifest, deletion manifest, receipt, hold, ...) cannot be read
 * as what its key says it is: truncated, not JSON, or missing a field. No retry can fix it.
 */
export class DocumentError extends ArchiverError {
  readonly code = 'DOCUMENT_INVALID';
  readonly retryable = false;
}

/**
 * The database refused a statement for a reason no retry can fix (wrong password, missing
 * database or table, no privilege, a value it cannot represent): classified by SQLSTATE in
 * activities/wiring.ts.
 */
export class DatabaseRefusedError extends ArchiverError {
  readonly code = 'DATABASE_REFUSED';
  readonly retryable = false;
}

/** The store refused a request for a reason no retry can fix (access denied, no such bucket). */
export class StoreRefusedError extends ArchiverError {
  readonly code = 'STORE_REFUSED';
  readonly retryable = false;
}

/**
 * The table's schema changed since its last snapshot and its schema_drift policy is block:
 * nothing is archived until the change is accepted (SnapshotSchema).
 */
export class SchemaDriftError extends ArchiverError {
  readonly code = 'SCHEMA_DRIFT';
  readonly retryable = false;
}

/**
 * The store did not encrypt a write the config asks it to encrypt (its answer names no
 * server-side encryption, or another kind or key). No retry can fix the store's settings.
 */
export class NotEncryptedError extends ArchiverError {
  readonly code = 'NOT_ENCRYPTED';
  readonly retryable = false;
}

/**
 * Something the step needs is held by an earlier attempt of the same step that has not ended
 * yet (an open delete transaction, the run's own lock session): retried until it ends.
 */
export class StillBusyError extends ArchiverError {
  readonly code = 'STILL_BUSY';
  readonly retryable = true;
}

type ArchiverErrorClass = new (message: string) => ArchiverError;

const ERROR_CLASSES: readonly ArchiverErrorClass[] = [
  ConfigError,
  SecretMissingError,
  TableNotConfiguredError,
  TableNotFoundError,
  TableShapeError,
  ObjectConflictError,
  SetupError,
  VerificationError,
  SchemaChangedError,
  LockLostError,
  DeleteMismatchError,
  RestoreRefusedError,
  DocumentError,
  DatabaseRefusedError,
  StoreRefusedError,
  NotEncryptedError,
  SchemaDriftError,
  StillBusyError,
];

/** Failure types that activity retry policies give up on at once: every class not retryable. */
export const NON_RETRYABLE_ERROR_TYPES: readonly string[] = ERROR_CLASSES.filter(
  (C) => !new C('').retryable,
).map((C) => C.name);
