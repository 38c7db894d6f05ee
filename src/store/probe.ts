import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Bucket } from './bucket';
import { probeKey } from './layout';

/** Bigger than one upload part (8 MiB), so the multipart path is probed too. */
const MULTIPART_PROBE_BYTES = 9 * 1024 * 1024;

/**
 * Proves the store can hold the archive: a probe object is written, read back, and written
 * again with `If-None-Match: *` (single and multipart), which the store must refuse, since
 * every never-overwrite guarantee of the archive rests on that refusal. The probes are
 * removed afterwards. Throws naming the step that failed.
 */
export async function probeStore(bucket: Bucket, prefix: string): Promise<void> {
  const stamp = randomUUID();
  const key = probeKey(prefix, stamp);
  const large = probeKey(prefix, `${stamp}-multipart`);
  const body = `audit-archiver doctor probe ${new Date().toISOString()}\n`;
  let step = 'reach the bucket';
  const written: string[] = [];
  try {
    await bucket.headBucket();
    step = 'write a probe object';
    await bucket.putIfAbsent(key, body, { contentType: 'text/plain' });
    written.push(key);
    step = 'read the probe object back';
    if ((await bucket.getText(key)) !== body)
      throw new Error('the probe object read back differs from what was written');
    step = 'refuse to overwrite the probe object (If-None-Match)';
    const again = await bucket.putIfAbsent(key, 'replaced', { contentType: 'text/plain' });
    if (again !== 'exists' || (await bucket.getText(key)) !== body)
      throw new Error('the store replaced an object despite If-None-Match: *');
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
    step = 'refuse to overwrite the multipart probe object (If-None-Match on completion)';
    if ((await bucket.uploadIfAbsent(large, parts(), options)) !== 'exists')
      throw new Error(
        'the store completed a multipart upload over an object despite If-None-Match: *',
      );
  } catch (err) {
    throw new Error(`cannot ${step}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  } finally {
    for (const k of written) await bucket.removeProbe(k).catch(() => undefined);
  }
}
