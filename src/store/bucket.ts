import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { isProbeKey } from './layout';

/**
 * The only code that sends S3 commands. Everything above it (ArchiveStore) speaks in
 * documents and data objects; this speaks in keys and bytes, and turns the store's answers
 * that are outcomes, not failures (404: no such key, 412: the key is taken), into values.
 * It has no way to overwrite or delete an archive object: writes are conditional
 * (`If-None-Match: *`) except for the few pointer documents that say so, and the only
 * delete is of the doctor's own probe objects.
 */
export class Bucket {
  constructor(
    readonly s3: S3Client,
    readonly name: string,
  ) {}

  /** `s3://bucket/key`, the way every message names an object. */
  where(key: string): string {
    return `s3://${this.name}/${key}`;
  }

  async headBucket(): Promise<void> {
    await this.s3.send(new HeadBucketCommand({ Bucket: this.name }));
  }

  /** Writes only if the key is free; `exists` when anything is there already. */
  async putIfAbsent(
    key: string,
    body: string | Uint8Array,
    options: { contentType: string; signal?: AbortSignal },
  ): Promise<'created' | 'exists'> {
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: body,
          ContentType: options.contentType,
          IfNoneMatch: '*',
        }),
        { abortSignal: options.signal },
      );
      return 'created';
    } catch (err) {
      // 412: the key exists. (409, a concurrent conditional write still in flight, is thrown:
      // the caller's retry then finds the finished object.)
      if (hasStatus(err, 412)) return 'exists';
      throw err;
    }
  }

  /** Writes or replaces a small document; only for pointers and records that say they may change. */
  async replace(key: string, body: string, contentType: string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.name, Key: key, Body: body, ContentType: contentType }),
    );
  }

  /**
   * Streams a data object into the key if the key is free, as a multipart upload when large
   * (8 MiB parts, two in flight: about 20 MiB of memory whatever the size). The condition
   * holds for multipart uploads too (If-None-Match on CompleteMultipartUpload), so a late
   * attempt can never replace an object another attempt wrote.
   */
  async uploadIfAbsent(
    key: string,
    body: Readable,
    options: { contentType: string; storageClass: StorageClass; signal: AbortSignal },
  ): Promise<'created' | 'exists'> {
    const upload = new Upload({
      client: this.s3,
      params: {
        Bucket: this.name,
        Key: key,
        Body: body,
        ContentType: options.contentType,
        StorageClass: options.storageClass,
        IfNoneMatch: '*',
      },
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
      leavePartsOnError: false,
    });
    const abort = () => void upload.abort().catch(() => undefined);
    options.signal.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
      return 'created';
    } catch (err) {
      if (hasStatus(err, 412)) return 'exists';
      await upload.abort().catch(() => undefined);
      throw err;
    } finally {
      options.signal.removeEventListener('abort', abort);
    }
  }

  /** The object's body as text, or undefined when the key does not exist. */
  async getText(key: string, signal?: AbortSignal): Promise<string | undefined> {
    const opened = await this.open(key, signal);
    if (!opened) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of opened.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  /** A stream of the object's stored bytes and its length, or undefined when it does not exist. */
  async open(
    key: string,
    signal?: AbortSignal,
  ): Promise<{ body: Readable; length: number } | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.name, Key: key }), {
        abortSignal: signal,
      });
      if (!out.Body) throw new Error(`${this.where(key)}: the store returned no body`);
      return { body: out.Body as Readable, length: out.ContentLength ?? 0 };
    } catch (err) {
      if (hasStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /** Whether something is stored under the key. */
  async exists(key: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.name, Key: key }), {
        abortSignal: signal,
      });
      return true;
    } catch (err) {
      if (hasStatus(err, 404)) return false;
      throw err;
    }
  }

  /** One page of keys under a prefix, in key order, after `startAfter`. */
  async listPage(
    prefix: string,
    options: { startAfter?: string; maxKeys?: number; token?: string } = {},
  ): Promise<{ keys: { key: string; size: number }[]; next: string | undefined }> {
    const page = await this.s3.send(
      new ListObjectsV2Command({
        Bucket: this.name,
        Prefix: prefix,
        StartAfter: options.startAfter,
        MaxKeys: options.maxKeys,
        ContinuationToken: options.token,
      }),
    );
    return {
      keys: (page.Contents ?? []).flatMap((o) =>
        o.Key ? [{ key: o.Key, size: o.Size ?? 0 }] : [],
      ),
      next: page.IsTruncated ? page.NextContinuationToken : undefined,
    };
  }

  /** Every key under a prefix with its size, listed page by page. */
  async listAll(prefix: string): Promise<Map<string, number>> {
    const keys = new Map<string, number>();
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, { token });
      for (const { key, size } of page.keys) keys.set(key, size);
      token = page.next;
    } while (token);
    return keys;
  }

  /** Removes a probe object the doctor wrote; nothing else is ever deleted. */
  async removeProbe(key: string): Promise<void> {
    if (!isProbeKey(key))
      throw new Error(`${this.where(key)}: not a probe object; refused to delete`);
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.name, Key: key }));
  }
}

export function hasStatus(err: unknown, status: number): boolean {
  return err instanceof S3ServiceException && err.$metadata.httpStatusCode === status;
}
