import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { NotEncryptedError } from '../shared/errors';
import { encryptionProblem, hasStatus, type Bucket } from './bucket';
import { probeKey } from './layout';

/** The store took a probe write it must refuse: its message is the doctor's whole report. */
export class StoreUnsafeError extends Error {
  override name = 'StoreUnsafeError';
}

/** Bigger than one upload part (8 MiB), so the multipart path is probed too. */
const MULTIPART_PROBE_BYTES = 9 * 1024 * 1024;

/**
 * Proves the store can hold the archive: a probe object is written, read back, and written
 * again with `If-None-Match: *` (single and multipart), which the store must refuse, since
 * every never-overwrite guarantee of the archive rests on that refusal. The probes are
 * removed afterwards. Throws StoreUnsafeError when the store takes a write it must refuse,
 * or an error `cannot <step>: ...` (with the store's error as its cause) when a step fails.
 */
export async function probeStore(bucket: Bucket, prefix: string): Promise<void> {
  const stamp = randomUUID();
  const key = probeKey(prefix, stamp);
  const large = probeKey(prefix, `${stamp}-multipart`);
  const body = `audit-archiver doctor probe ${new Date().toISOString()}\n`;
  let step = 'reach the bucket';
  const written: string[] = [];
  try {
    // A listing under the prefix, not HeadBucket: AWS authorises HeadBucket as a listing of
    // the whole bucket, which a policy scoped to the prefix (deploy/s3) rightly refuses.
    await bucket.listPage(prefix, { maxKeys: 1 });
    step = 'write a probe object';
    await bucket.putIfAbsent(key, body, { contentType: 'text/plain' });
    written.push(key);
    step = 'read the probe object back';
    if ((await bucket.getText(key)) !== body)
      throw new Error('the probe object read back differs from what was written');
    step = 'write the probe object again, conditionally';
    const again = await bucket.putIfAbsent(key, 'replaced', { contentType: 'text/plain' });
    if (again !== 'exists' || (await bucket.getText(key)) !== body)
      throw new StoreUnsafeError(
        'the store does not honour If-None-Match: it replaced the probe object on a conditional write; the archive relies on that refusal never to overwrite an object',
      );
    step = 'write a multipart probe object';
    const signal = new AbortController().signal;
    const options = {
      contentType: 'application/octet-stream',
      storageClass: 'STANDARD',
      signal,
    } as const;
    const parts = () => Readable.from([Buffer.alloc(MULTIPART_PROBE_BYTES, 0x61)]);
    await bucket.uploadIfAbsent(large, parts(), options);
    written.push(large);
    step = 'upload the multipart probe object again, conditionally';
    if ((await bucket.uploadIfAbsent(large, parts(), options)) !== 'exists')
      throw new StoreUnsafeError(
        'the store does not honour If-None-Match on multipart uploads: it completed one over the probe object; the archive relies on that refusal never to overwrite an object',
      );
  } catch (err) {
    if (err instanceof StoreUnsafeError) throw err;
    throw new Error(`cannot ${step}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  } finally {
    for (const k of written) await bucket.removeProbe(k).catch(() => undefined);
  }
}

/**
 * Proves the store encrypts what the archiver writes, before the first write that matters:
 * a probe object is written (its answer must report the configured encryption) and read
 * back with a HEAD (which must report it too), then removed. Throws NotEncryptedError
 * naming what the store answered; does nothing when the config asks for no encryption.
 */
export async function proveEncryption(bucket: Bucket, prefix: string): Promise<void> {
  const wanted = bucket.encryption;
  if (!wanted) return;
  const key = probeKey(prefix, `${randomUUID()}-encryption`);
  try {
    await bucket
      .putIfAbsent(key, 'audit-archiver encryption probe\n', { contentType: 'text/plain' })
      .catch((err: unknown) => {
        // 400 or 501: the store cannot encrypt as asked (no KMS, an unknown key).
        if (!hasStatus(err, 400) && !hasStatus(err, 501)) throw err;
        throw new NotEncryptedError(
          `${bucket.where(key)}: the store refused to encrypt a probe object with ${wanted.kind}: ${(err as Error).message}; nothing was archived`,
          { key },
          { cause: err },
        );
      });
    const { encryption } = await bucket.protectionOf(key);
    const problem = encryptionProblem(wanted, { ServerSideEncryption: encryption ?? undefined });
    if (problem)
      throw new NotEncryptedError(
        `${bucket.where(key)}: the store does not encrypt: a probe object written with ${wanted.kind} reads back unencrypted (${problem}); nothing was archived`,
        { key },
      );
  } finally {
    await bucket.removeProbe(key).catch(() => undefined);
  }
}
