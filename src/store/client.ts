import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { objectLockOf, type Config, type S3Config } from '../config';
import { ConfigError } from '../shared/errors';
import { ArchiveStore } from './archive-store';
import { Bucket, type Encryption, type Retention } from './bucket';

export interface S3ClientOptions {
  /** Attempts per request, including the first; the SDK backs off between them. */
  maxAttempts?: number;
  connectTimeoutMs?: number;
}

/**
 * An S3 client for the configured store. Credentials come from the standard AWS chain
 * (environment, shared files, instance or pod roles); a custom endpoint such as MinIO gets
 * path-style addressing unless the config says otherwise.
 */
export function createS3Client(config: S3Config, options: S3ClientOptions = {}): S3Client {
  return new S3Client({
    region: config.region,
    ...(config.endpoint !== null && { endpoint: config.endpoint }),
    forcePathStyle: config.force_path_style ?? config.endpoint !== null,
    maxAttempts: options.maxAttempts ?? 5,
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? 5_000,
      requestTimeout: 120_000,
      ...(config.ca_file !== null && {
        httpsAgent: new Agent({ keepAlive: true, ca: readCaBundle(config.ca_file) }),
      }),
    },
  });
}

/** The PEM bundle s3.ca_file names; a file that cannot be read is bad input, named. */
function readCaBundle(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      `s3.ca_file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
}

/** The server-side encryption the config asks of every write, or null for none. */
export function encryptionOf(config: S3Config): Encryption | null {
  switch (config.encryption.mode) {
    case 'none':
      return null;
    case 'SSE-S3':
      return { kind: 'AES256' };
    case 'SSE-KMS':
      return { kind: 'aws:kms', kmsKeyId: config.encryption.kms_key_id ?? undefined };
  }
}

/** Whether the config keeps an audit trail, and the Object Lock retention of its records. */
function auditTrailOf(config: Config): { retain: Retention | null } | null {
  const { audit_trail: trail, object_lock_mode: mode } = config.compliance;
  if (!trail.enabled) return null;
  return { retain: trail.retention_days === null ? null : { mode, days: trail.retention_days } };
}

/** The configured archive store on a given client: encryption and Object Lock as configured. */
export function archiveStoreOn(s3: S3Client, config: Config): ArchiveStore {
  return new ArchiveStore(
    new Bucket(s3, config.s3.bucket, encryptionOf(config.s3)),
    config.s3.prefix,
    {
      storageClass: config.s3.storage_class,
      retentionOf: (names) => objectLockOf(config, names),
      auditTrail: auditTrailOf(config),
    },
  );
}

/** The archive store of the configured bucket, on a client of its own (`destroy` when done). */
export function openArchiveStore(
  config: Config,
  options: S3ClientOptions = {},
): { store: ArchiveStore; destroy: () => void } {
  const s3 = createS3Client(config.s3, options);
  return { store: archiveStoreOn(s3, config), destroy: () => s3.destroy() };
}
