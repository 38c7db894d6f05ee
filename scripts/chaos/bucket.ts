import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { PrivatePostgres } from './postgres';

/** One archived line, in the same canonical form as the harness reads table rows. */
export interface ArchivedVersion {
  object: string;
  content: string;
}

export interface ArchiveContents {
  /** Every key under the prefix. */
  keys: Set<string>;
  /** Data objects (`*.jsonl.gz`), sorted. */
  objects: string[];
  /** Every archived version of each row, by id, in object order. */
  versions: Map<string, ArchivedVersion[]>;
  lines: number;
}

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}

/**
 * Reads the whole archive straight from MinIO (not through the product): every data object,
 * every line. It tells, for a row the comparison flags, whether some version of it is in the
 * bucket at all, and which: the difference between "the archive lost it" and "the restore
 * did not bring it back". Lines are put in the same canonical form as table rows by
 * PostgreSQL itself (each text form cast to its column's type, then to_jsonb), so that an
 * archived version and a row compare as plain strings.
 */
export async function readArchive(
  s3: S3Client,
  bucket: string,
  prefix: string,
  pgServer: PrivatePostgres,
  database: string,
): Promise<ArchiveContents> {
  const keys = await listKeys(s3, bucket, prefix);
  const objects = keys.filter((k) => k.endsWith('.jsonl.gz'));
  const columns = {
    object: [] as string[],
    id: [] as (string | null)[],
    created_at: [] as (string | null)[],
    actor: [] as (string | null)[],
    action: [] as (string | null)[],
    payload: [] as (string | null)[],
  };
  for (const object of objects) {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: object }));
    const text = gunzipSync(Buffer.from(await out.Body!.transformToByteArray())).toString('utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const row = JSON.parse(line) as Record<string, string | null>;
      columns.object.push(object);
      columns.id.push(row.id ?? null);
      columns.created_at.push(row.created_at ?? null);
      columns.actor.push(row.actor ?? null);
      columns.action.push(row.action ?? null);
      columns.payload.push(row.payload ?? null);
    }
  }
  const versions = new Map<string, ArchivedVersion[]>();
  if (columns.object.length > 0) {
    const rows = await pgServer.withClient(database, async (client) => {
      const { rows } = await client.query<{ object: string; id: string; content: string }>(
        `select u.object, x.id::text as id, to_jsonb(x)::text as content
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                with ordinality as u(object, id, created_at, actor, action, payload, n),
                lateral (select u.id::bigint as id, u.created_at::timestamptz as created_at,
                                u.actor as actor, u.action as action, u.payload::jsonb as payload) as x
          order by u.n`,
        [
          columns.object,
          columns.id,
          columns.created_at,
          columns.actor,
          columns.action,
          columns.payload,
        ],
      );
      return rows;
    });
    for (const r of rows) {
      const list = versions.get(r.id);
      if (list) list.push({ object: r.object, content: r.content });
      else versions.set(r.id, [{ object: r.object, content: r.content }]);
    }
  }
  return { keys: new Set(keys), objects, versions, lines: columns.object.length };
}

/** The documents beside a data object (manifest, deletion manifest, receipt, ...), by suffix. */
export function besides(archive: ArchiveContents, object: string): string[] {
  const stem = object.replace(/\.jsonl\.gz$/, '');
  return [...archive.keys]
    .filter((k) => k !== object && k.startsWith(`${stem}.`))
    .map((k) => k.slice(stem.length));
}
