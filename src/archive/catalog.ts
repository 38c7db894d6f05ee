import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import {
  dayOfKey,
  deletionManifestKey,
  deletionReceiptKey,
  isDataKey,
  manifestKey,
  tablePrefix,
  type TableLocation,
} from './layout';

/** One data object of a table's archive, as the bucket lists it. */
export interface ArchivedObject {
  object: string;
  day: string;
  size: number;
  hasManifest: boolean;
  hasDeletionManifest: boolean;
  hasDeletionReceipt: boolean;
}

export interface DayRange {
  /** Inclusive, YYYY-MM-DD. */
  startDate?: string | undefined;
  endDate?: string | undefined;
}

/** Every key under a prefix, listed page by page. */
export async function listKeys(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<Map<string, number>> {
  const keys = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.set(o.Key, o.Size ?? 0);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/**
 * The data objects of a table's archive, optionally of a UTC day range, in key order (day,
 * then run and batch), with which sidecar documents exist beside each. One listing of the
 * table's prefix; nothing is read.
 */
export async function listArchive(
  s3: S3Client,
  bucket: string,
  at: TableLocation,
  range: DayRange = {},
): Promise<ArchivedObject[]> {
  const keys = await listKeys(s3, bucket, tablePrefix(at));
  const objects: ArchivedObject[] = [];
  for (const [key, size] of keys) {
    if (!isDataKey(key)) continue;
    const day = dayOfKey(key);
    if (!day) continue;
    if (range.startDate && day < range.startDate) continue;
    if (range.endDate && day > range.endDate) continue;
    objects.push({
      object: key,
      day,
      size,
      hasManifest: keys.has(manifestKey(key)),
      hasDeletionManifest: keys.has(deletionManifestKey(key)),
      hasDeletionReceipt: keys.has(deletionReceiptKey(key)),
    });
  }
  return objects.sort((a, b) => a.object.localeCompare(b.object));
}

/** Manifests whose data object is gone: listed so validation can report them. */
export function manifestsWithoutData(keys: Map<string, number>): string[] {
  return [...keys.keys()].filter(
    (k) => k.endsWith('.manifest.json') && !keys.has(k.replace(/\.manifest\.json$/, '.jsonl.gz')),
  );
}
