import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { BUCKET } from './stack';

export interface Listed {
  key: string;
  etag: string;
  size: number;
}

/** Every object under the prefix, sorted by key. */
export async function listAll(s3: S3Client, prefix: string): Promise<Listed[]> {
  const out: Listed[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, etag: o.ETag!, size: o.Size! });
    token = page.NextContinuationToken;
  } while (token);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

export async function readBytes(s3: S3Client, key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

export async function readJsonObject<T>(s3: S3Client, key: string): Promise<T> {
  return JSON.parse((await readBytes(s3, key)).toString('utf8')) as T;
}

/** The rows of a data object, each as its stored line parsed. */
export async function readRows(
  s3: S3Client,
  key: string,
): Promise<Record<string, string | null>[]> {
  const text = gunzipSync(await readBytes(s3, key)).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, string | null>);
}

/** An object's body as text, or undefined when the key does not exist. */
export async function getText(s3: S3Client, key: string): Promise<string | undefined> {
  try {
    return (await readBytes(s3, key)).toString('utf8');
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}
