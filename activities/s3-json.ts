import type { S3Client } from '@aws-sdk/client-s3';
import { getText, putIfAbsent } from '../src/s3/objects';
import { ObjectConflictError } from '../src/shared/errors';

export async function readJson<T>(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<T | undefined> {
  const text = await getText(s3, bucket, key);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

/**
 * Writes a JSON document that must never change once written. A retry that finds a document
 * there accepts it when `sameAs` says it describes the same thing, and fails loudly
 * otherwise: never a silent replacement (CONTRACT §4).
 */
export async function writeOnce<T>(
  s3: S3Client,
  bucket: string,
  key: string,
  doc: T,
  sameAs: (existing: T) => boolean,
): Promise<T> {
  const outcome = await putIfAbsent(s3, {
    bucket,
    key,
    body: `${JSON.stringify(doc, null, 1)}\n`,
    contentType: 'application/json',
  });
  if (outcome === 'created') return doc;
  const existing = await readJson<T>(s3, bucket, key);
  if (existing === undefined || !sameAs(existing)) {
    throw new ObjectConflictError(
      `s3://${bucket}/${key} already exists with other content; it was left unchanged`,
      {
        bucket,
        key,
      },
    );
  }
  return existing;
}
