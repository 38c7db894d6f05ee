import { S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from '../config';

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
