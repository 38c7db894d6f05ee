import { S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from '../config';
import { ArchiveStore } from './archive-store';
import { Bucket } from './bucket';

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
    },
  });
}

/** The archive store of the configured bucket, on a client of its own (`destroy` when done). */
export function openArchiveStore(
  config: S3Config,
  options: S3ClientOptions = {},
): { store: ArchiveStore; destroy: () => void } {
  const s3 = createS3Client(config, options);
  return {
    store: new ArchiveStore(new Bucket(s3, config.bucket), config.prefix, config.storage_class),
    destroy: () => s3.destroy(),
  };
}
