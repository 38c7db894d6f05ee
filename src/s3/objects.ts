import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
  type StorageClass,
} from '@aws-sdk/client-s3';

function hasStatus(err: unknown, status: number): boolean {
  return err instanceof S3ServiceException && err.$metadata.httpStatusCode === status;
}

export interface PutIfAbsentInput {
  bucket: string;
  key: string;
  body: string | Uint8Array;
  contentType: string;
  storageClass?: StorageClass;
  signal?: AbortSignal;
}

/**
 * Writes an object only if the key is free (a conditional `If-None-Match: *` write), so an
 * object the archive depends on is never silently replaced. Returns `exists` when something
 * is already there; the caller decides whether that is its own earlier attempt.
 */
export async function putIfAbsent(
  s3: S3Client,
  input: PutIfAbsentInput,
): Promise<'created' | 'exists'> {
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: input.bucket,
        Key: input.key,
        Body: input.body,
        ContentType: input.contentType,
        StorageClass: input.storageClass,
        IfNoneMatch: '*',
      }),
      { abortSignal: input.signal },
    );
    return 'created';
  } catch (err) {
    // 412: the key exists. (409, a concurrent conditional write still in flight, is thrown:
    // the caller's retry then finds the finished object.)
    if (hasStatus(err, 412)) return 'exists';
    throw err;
  }
}

/** The object's body as text, or undefined when the key does not exist. */
export async function getText(
  s3: S3Client,
  bucket: string,
  key: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), {
      abortSignal: signal,
    });
    return await out.Body?.transformToString('utf8');
  } catch (err) {
    if (hasStatus(err, 404)) return undefined;
    throw err;
  }
}

export async function deleteObject(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

export async function headBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new HeadBucketCommand({ Bucket: bucket }));
}

/** Writes (or replaces) a small JSON document; for pointers and records, never for archive data. */
export async function putObjectJson(
  s3: S3Client,
  bucket: string,
  key: string,
  doc: unknown,
): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: `${JSON.stringify(doc, null, 1)}\n`,
      ContentType: 'application/json',
    }),
  );
}
