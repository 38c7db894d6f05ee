import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  S3ServiceException,
  type S3Client,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NotEncryptedError } from '../shared/errors';
import { isProbeKey } from './layout';

/** Server-side encryption every write asks for, and every write's answer must report. */
export interface Encryption {
  /** AES256 (SSE-S3) or aws:kms (SSE-KMS). */
  kind: 'AES256' | 'aws:kms';
  /** The KMS key of aws:kms. */
  kmsKeyId?: string | undefined;
}

/** S3 Object Lock retention given to an object when it is written. */
export interface Retention {
  mode: 'GOVERNANCE' | 'COMPLIANCE';
  days: number;
}

/** What the store says of an object's protection. */
export interface ObjectProtection {
  /** The server-side encryption it reports, or null for none. */
  encryption: string | null;
  retention: { mode: string; until: Date } | null;
  legalHold: boolean;
}

/** The encryption fields of a store's answer to a write or a read. */
interface EncryptionAnswer {
  ServerSideEncryption?: string | undefined;
  SSEKMSKeyId?: string | undefined;
}

/**
 * The only code that sends S3 commands. Everything above it (ArchiveStore) speaks in
 * documents and data objects; this speaks in keys and bytes, and turns the store's answers
 * that are outcomes, not failures (404: no such key, 412: the key is taken), into values.
 * It has no way to overwrite or delete an archive object: writes are conditional
 * (`If-None-Match: *`) except for the few pointer documents that say so, and the only
 * delete is of the doctor's own probe objects. When the config asks for encryption, every
 * write asks for it and every write's answer must report it (NotEncryptedError otherwise).
 */
export class Bucket {
  constructor(
    readonly s3: S3Client,
    readonly name: string,
    readonly encryption: Encryption | null = null,
  ) {}

  /** `s3://bucket/key`, the way every message names an object. */
  where(key: string): string {
    return `s3://${this.name}/${key}`;
  }

  /** Writes only if the key is free; `exists` when anything is there already. */
  async putIfAbsent(
    key: string,
    body: string | Uint8Array,
    options: { contentType: string; signal?: AbortSignal; retain?: Retention | null },
  ): Promise<'created' | 'exists'> {
    try {
      const answer = await this.s3.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: body,
          ContentType: options.contentType,
          IfNoneMatch: '*',
          ...this.protection(options.retain),
        }),
        { abortSignal: options.signal },
      );
      this.requireEncrypted(key, answer);
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
    const answer = await this.s3.send(
      new PutObjectCommand({
        Bucket: this.name,
        Key: key,
        Body: body,
        ContentType: contentType,
        ...this.protection(null),
      }),
    );
    this.requireEncrypted(key, answer);
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
    options: {
      contentType: string;
      storageClass: StorageClass;
      signal: AbortSignal;
      retain?: Retention | null;
    },
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
        ...this.protection(options.retain),
      },
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
      leavePartsOnError: false,
    });
    const abort = () => void upload.abort().catch(() => undefined);
    options.signal.addEventListener('abort', abort, { once: true });
    try {
      const answer = await upload.done();
      // Some stores (MinIO) leave the encryption out of CompleteMultipartUpload's answer:
      // then the object's own HEAD says it.
      const reported =
        this.encryption && answer.ServerSideEncryption === undefined
          ? await this.s3.send(new HeadObjectCommand({ Bucket: this.name, Key: key }))
          : answer;
      this.requireEncrypted(key, reported);
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
  ): Promise<{ body: Readable; length: number; encryption: string | null } | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.name, Key: key }), {
        abortSignal: signal,
      });
      if (!out.Body) throw new Error(`${this.where(key)}: the store returned no body`);
      return {
        body: out.Body as Readable,
        length: out.ContentLength ?? 0,
        encryption: out.ServerSideEncryption ?? null,
      };
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

  /** The object's encryption, retention and legal hold as the store reports them. */
  async protectionOf(key: string): Promise<ObjectProtection> {
    const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.name, Key: key }));
    return {
      encryption: head.ServerSideEncryption ?? null,
      retention:
        head.ObjectLockMode && head.ObjectLockRetainUntilDate
          ? { mode: head.ObjectLockMode, until: head.ObjectLockRetainUntilDate }
          : null,
      legalHold: head.ObjectLockLegalHoldStatus === 'ON',
    };
  }

  /**
   * Puts an S3 Object Lock legal hold on the object's current version, or lifts it: while it
   * stands, no version of the object can be deleted, by anyone.
   */
  async setLegalHold(key: string, on: boolean): Promise<void> {
    await this.s3.send(
      new PutObjectLegalHoldCommand({
        Bucket: this.name,
        Key: key,
        LegalHold: { Status: on ? 'ON' : 'OFF' },
      }),
    );
  }

  /** Whether the bucket has S3 Object Lock on (which also means versioning is on). */
  async objectLockEnabled(): Promise<boolean> {
    try {
      const out = await this.s3.send(new GetObjectLockConfigurationCommand({ Bucket: this.name }));
      return out.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      if (err instanceof S3ServiceException && err.name === 'ObjectLockConfigurationNotFoundError')
        return false;
      if (hasStatus(err, 404)) return false;
      throw err;
    }
  }

  /** The bucket's versioning status: Enabled, Suspended, or null when never turned on. */
  async versioning(): Promise<string | null> {
    const out = await this.s3.send(new GetBucketVersioningCommand({ Bucket: this.name }));
    return out.Status ?? null;
  }

  /** The encryption and Object Lock fields of a write. */
  private protection(retain: Retention | null | undefined) {
    return {
      ...(this.encryption && {
        ServerSideEncryption: this.encryption.kind,
        ...(this.encryption.kmsKeyId !== undefined && { SSEKMSKeyId: this.encryption.kmsKeyId }),
      }),
      ...(retain && {
        ObjectLockMode: retain.mode,
        ObjectLockRetainUntilDate: new Date(Date.now() + retain.days * 86_400_000),
      }),
    };
  }

  /** Fails a write whose answer does not report the encryption the config asks for. */
  private requireEncrypted(key: string, answer: EncryptionAnswer): void {
    const wanted = this.encryption;
    if (!wanted) return;
    const problem = encryptionProblem(wanted, answer);
    if (problem)
      throw new NotEncryptedError(
        `${this.where(key)}: the store did not encrypt this write: ${problem}; s3.encryption asks for ${wanted.kind}, so the step stops before anything is deleted`,
        { key },
      );
  }

  /** Removes a probe object the doctor wrote; nothing else is ever deleted. */
  async removeProbe(key: string): Promise<void> {
    if (!isProbeKey(key))
      throw new Error(`${this.where(key)}: not a probe object; refused to delete`);
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.name, Key: key }));
  }
}

/** What is wrong with an answer's encryption, or undefined when it is as wanted. */
export function encryptionProblem(
  wanted: Encryption,
  answer: EncryptionAnswer,
): string | undefined {
  const got = answer.ServerSideEncryption;
  if (got === undefined) return 'its answer reports no server-side encryption';
  if (got !== wanted.kind) return `its answer reports ${got}, not ${wanted.kind}`;
  const key = answer.SSEKMSKeyId;
  // Stores name the key by id or by ARN (arn:aws:kms:...:key/ID); either ends with the id.
  if (wanted.kmsKeyId !== undefined && key !== undefined && !key.endsWith(wanted.kmsKeyId))
    return `its answer names KMS key ${key}, not ${wanted.kmsKeyId}`;
  return undefined;
}

export function hasStatus(err: unknown, status: number): boolean {
  return err instanceof S3ServiceException && err.$metadata.httpStatusCode === status;
}
