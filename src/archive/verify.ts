import { DELETION_MANIFEST_FORMAT } from '../store/documents';
import type { TableArchive } from '../store/archive-store';
import { lineFingerprint, readBackVerified } from './read-back';

/**
 * Reads a batch's object back from the store and checks it against its manifest (SHA-256,
 * sizes, decompression, every line, row count, key range), and writes, from that same
 * read-back, the deletion manifest: the exact keys, and a fingerprint of each archived line,
 * the delete may remove. Never from the exporter's memory. Beside each key goes the row
 * version the export recorded for that line, when the export that stored these bytes
 * recorded them (a version names where a row is, never what it holds). Idempotent: the
 * deletion manifest is written once, after a complete verification; a retry finds it and is
 * done.
 */
export async function verifyBatch(
  archive: TableArchive,
  object: string,
  io: { signal: AbortSignal; progress: (rows: number) => void },
): Promise<{ rowCount: number; sha256: string }> {
  const manifest = await archive.requireManifest(object);
  const done = { rowCount: manifest.rowCount, sha256: manifest.sha256 };
  const [existing, recorded] = await Promise.all([
    archive.deletionManifest(object),
    archive.rowVersions(object),
  ]);
  if (existing && existing.objectSha256 === manifest.sha256) return done;
  const keys: string[] = [];
  const fingerprints: string[] = [];
  await readBackVerified(archive, manifest, {
    signal: io.signal,
    onRow: (row) => {
      keys.push(row.key);
      fingerprints.push(lineFingerprint(row.line));
      if (keys.length % 10_000 === 0) io.progress(keys.length);
    },
  });
  await archive.saveDeletionManifest({
    format: DELETION_MANIFEST_FORMAT,
    object,
    objectSha256: manifest.sha256,
    rowCount: keys.length,
    keyColumn: manifest.primaryKey.column,
    fingerprint: 'md5(line)',
    keys,
    fingerprints,
    ...(recorded?.objectSha256 === manifest.sha256 && recorded.rowCount === keys.length
      ? { versions: { ctids: recorded.ctids, xmins: recorded.xmins } }
      : {}),
    createdAt: new Date().toISOString(),
  });
  return done;
}
