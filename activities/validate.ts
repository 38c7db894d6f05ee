import { randomInt } from 'node:crypto';
import { cancellationSignal, heartbeat } from '@temporalio/activity';
import { HeadObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import {
  listArchive,
  listKeys,
  manifestsWithoutData,
  type ArchivedObject,
} from '../src/archive/catalog';
import {
  dayOfKey,
  deletionManifestKey,
  deletionReceiptKey,
  manifestKey,
  restoreReceiptKey,
  tablePrefix,
  type TableLocation,
} from '../src/archive/layout';
import {
  OBJECT_MANIFEST_FORMAT,
  type DeletionManifest,
  type ObjectManifest,
} from '../src/archive/manifests';
import { lineFingerprint, readBackVerified } from '../src/archive/read-back';
import type { TableSql } from '../src/archive/table-sql';
import { findTable } from '../src/config';
import { getText } from '../src/s3/objects';
import { TableNotFoundError, TableShapeError, VerificationError } from '../src/shared/errors';
import type {
  ValidateTableInput,
  ValidateTableResult,
  ValidationProblem,
} from '../src/shared/validate-types';
import type { ActivityDeps } from './deps';
import { loadTableContext, withClient } from './table-context';

/** Objects read back at once within one table: the store's latency, not its bandwidth, bounds a validation. */
const OBJECTS_IN_FLIGHT = 4;

/** Problems of one table: all counted, the first `max` kept. */
class Problems {
  private readonly kept: ValidationProblem[] = [];
  count = 0;

  constructor(private readonly max: number) {}

  add(key: string, problem: string): void {
    this.count++;
    if (this.kept.length < this.max) this.kept.push({ key, problem });
  }

  list(): ValidationProblem[] {
    return [...this.kept].sort(
      (a, b) => a.key.localeCompare(b.key) || a.problem.localeCompare(b.problem),
    );
  }
}

/** An archived row the sample check may look up in the source table. */
interface SampleRow {
  object: string;
  key: string;
  fingerprint: string;
}

/**
 * A uniform random sample of at most `size` rows from a stream of unknown length: each row
 * gets a random priority and the lowest priorities are kept. Unlike a reservoir, two samples
 * merge into a sample of their union, so an object's rows join the table's sample only once
 * the object has passed its checks.
 */
class BottomK {
  private readonly items: { priority: number; row: SampleRow }[] = [];

  constructor(private readonly size: number) {}

  offer(row: () => SampleRow, priority = randomInt(2 ** 47)): void {
    if (this.size === 0) return;
    if (this.items.length < this.size) {
      this.items.push({ priority, row: row() });
      return;
    }
    let worst = 0;
    for (let i = 1; i < this.items.length; i++) {
      if (this.items[i]!.priority > this.items[worst]!.priority) worst = i;
    }
    if (priority < this.items[worst]!.priority) this.items[worst] = { priority, row: row() };
  }

  mergeFrom(other: BottomK): void {
    for (const item of other.items) this.offer(() => item.row, item.priority);
  }

  rows(): SampleRow[] {
    return this.items.map((i) => i.row);
  }
}

/** The SQL of the sample check: each listed key's row fingerprint, as the delete step computes it. */
interface DbSampleRow {
  key: string;
  fingerprint: string;
}
function sampleLookupSql(sql: TableSql): string {
  return `select t.${sql.pk}::text as key, md5(${sql.rowJson('t')}) as fingerprint
            from ${sql.table} as t
           where t.${sql.pk} = any($1::text[]::${sql.pkType}[])`;
}

/** A VerificationError's message without its `s3://bucket/key: ` prefix: the problem names the key. */
function withoutWhere(message: string, key: string): string {
  const at = message.indexOf(`${key}: `);
  return at < 0 ? message : message.slice(at + key.length + 2);
}

function inRange(day: string | undefined, input: ValidateTableInput): boolean {
  if (!day) return false;
  return (!input.startDate || day >= input.startDate) && (!input.endDate || day <= input.endDate);
}

function isMissingDatabase(err: unknown): boolean {
  return (err as { code?: unknown }).code === '3D000'; // invalid_catalog_name
}

/** Runs `fn` over the items, at most `limit` at once; stops taking new items after a failure. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const runner = async () => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, runner));
}

/** What a manifest must say about the object beside it, or the first thing it gets wrong. */
function manifestProblem(manifest: ObjectManifest, object: ArchivedObject): string | undefined {
  if (manifest.format !== OBJECT_MANIFEST_FORMAT)
    return `unknown format ${JSON.stringify(manifest.format)}`;
  if (manifest.object !== object.object) return `describes another object, ${manifest.object}`;
  if (manifest.day !== object.day)
    return `says day ${manifest.day}, the key's partition is ${object.day}`;
  if (!manifest.primaryKey?.column || !manifest.sha256)
    return 'has no primary key column or no SHA-256';
  return undefined;
}

/**
 * Whether the deletion manifest lists exactly rows of the object as stored: same object
 * digest, and each key's fingerprint equal to that key's stored line.
 */
function deletionProblems(
  deletion: DeletionManifest,
  manifest: ObjectManifest,
  lines: Map<string, string>,
): string[] {
  if (deletion.objectSha256 !== manifest.sha256) {
    return [`names object SHA-256 ${deletion.objectSha256}, the manifest says ${manifest.sha256}`];
  }
  if (!Array.isArray(deletion.keys) || deletion.keys.length !== deletion.fingerprints?.length) {
    return ['its keys and fingerprints do not pair up'];
  }
  const missing = deletion.keys.filter((k) => !lines.has(k));
  const differ = deletion.keys.filter(
    (k, i) => lines.has(k) && lines.get(k) !== deletion.fingerprints[i],
  );
  const problems: string[] = [];
  if (missing.length > 0) {
    problems.push(
      `${missing.length} of its ${deletion.keys.length} keys are not in the object (first: ${missing[0]})`,
    );
  }
  if (differ.length > 0) {
    problems.push(
      `${differ.length} fingerprints differ from the object's lines (first key: ${differ[0]})`,
    );
  }
  return problems;
}

export function validateActivities(deps: ActivityDeps) {
  const { config, s3 } = deps;
  const bucket = config.s3.bucket;

  /** A JSON document, or what is wrong with it; a store that does not answer is thrown (retried). */
  async function readDocument<T>(key: string): Promise<{ doc: T } | { problem: string }> {
    const text = await getText(s3, bucket, key, cancellationSignal());
    if (text === undefined) return { problem: 'is missing' };
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return { problem: 'is not valid JSON' };
    }
    // Checked so that a damaged document is a problem, not a TypeError retried ten times.
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      return { problem: 'is not a JSON object' };
    return { doc: doc as T };
  }

  /** Whether an object exists (a HEAD); a store that does not answer is thrown (retried). */
  async function exists(key: string): Promise<boolean> {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), {
        abortSignal: cancellationSignal(),
      });
      return true;
    } catch (err) {
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return false;
      throw err;
    }
  }

  /** Everything the bucket knows about one table's archive, checked against itself. */
  class TableCheck {
    readonly problems: Problems;
    readonly sample: BottomK;
    objects = 0;
    rows = 0;
    private readonly missingSchemas = new Map<string, string[]>();
    /** Snapshots outside the table's listing, asked once per key and run. */
    private readonly snapshots = new Map<string, Promise<boolean>>();

    constructor(
      readonly input: ValidateTableInput,
      readonly location: TableLocation,
      readonly keys: Map<string, number>,
    ) {
      this.problems = new Problems(input.maxProblems);
      this.sample = new BottomK(input.sampleSize);
    }

    /** Manifests and deletion documents whose data object is gone: rows may have no archive. */
    orphans(): void {
      const reported = new Set<string>();
      for (const key of manifestsWithoutData(this.keys)) {
        const data = key.replace(/\.manifest\.json$/, '.jsonl.gz');
        if (!inRange(dayOfKey(data), this.input)) continue;
        reported.add(data);
        this.problems.add(data, `the data object is missing; its manifest ${key} is there`);
      }
      for (const key of this.keys.keys()) {
        const m = /\.(deletion|deleted)\.json$/.exec(key);
        if (!m) continue;
        const data = key.slice(0, m.index) + '.jsonl.gz';
        if (this.keys.has(data) || reported.has(data) || !inRange(dayOfKey(data), this.input))
          continue;
        reported.add(data);
        this.problems.add(data, `the data object and its manifest are missing; ${key} is there`);
      }
    }

    async object(obj: ArchivedObject): Promise<void> {
      this.objects++;
      if (!obj.hasManifest) {
        this.problems.add(obj.object, `has no manifest (${manifestKey(obj.object)} is missing)`);
        return;
      }
      const read = await readDocument<ObjectManifest>(manifestKey(obj.object));
      if ('problem' in read) {
        this.problems.add(manifestKey(obj.object), read.problem);
        return;
      }
      const manifest = read.doc;
      const wrong = manifestProblem(manifest, obj);
      if (wrong) {
        this.problems.add(manifestKey(obj.object), wrong);
        return;
      }
      await this.schema(manifest);
      const deletion = await this.deletionManifest(obj);
      await this.readBack(obj, manifest, deletion);
      heartbeat({ objects: this.objects, problems: this.problems.count });
    }

    private async schema(manifest: ObjectManifest): Promise<void> {
      const key = manifest.schemaKey;
      if (this.keys.has(key)) return;
      let known = this.snapshots.get(key);
      if (!known) {
        known = exists(key);
        this.snapshots.set(key, known);
      }
      if (await known) return;
      const objects = this.missingSchemas.get(manifest.schemaKey) ?? [];
      objects.push(manifest.object);
      this.missingSchemas.set(manifest.schemaKey, objects);
    }

    /** One problem per missing snapshot, not one per object that names it. */
    reportMissingSchemas(): void {
      for (const [key, objects] of this.missingSchemas) {
        this.problems.add(
          key,
          `schema snapshot is missing; ${objects.length} manifests name it (first: ${objects.sort()[0]})`,
        );
      }
    }

    private async deletionManifest(obj: ArchivedObject): Promise<DeletionManifest | undefined> {
      const key = deletionManifestKey(obj.object);
      if (!obj.hasDeletionManifest) {
        if (obj.hasDeletionReceipt) {
          this.problems.add(
            key,
            `is missing, but ${deletionReceiptKey(obj.object)} says the batch was deleted`,
          );
        }
        return undefined;
      }
      const read = await readDocument<DeletionManifest>(key);
      if ('problem' in read) {
        this.problems.add(key, read.problem);
        return undefined;
      }
      return read.doc;
    }

    /**
     * Reads the object back (SHA-256, decompression, every line, row count, key range), taking
     * each line's fingerprint when a deletion manifest needs them, and sample candidates when
     * the batch was deleted from the source and not restored into it since.
     */
    private async readBack(
      obj: ArchivedObject,
      manifest: ObjectManifest,
      deletion: DeletionManifest | undefined,
    ): Promise<void> {
      const lines = deletion ? new Map<string, string>() : undefined;
      const restored = this.keys.has(restoreReceiptKey(this.location, this.location, obj.object));
      const sample =
        obj.hasDeletionReceipt && !restored ? new BottomK(this.input.sampleSize) : undefined;
      let rows = 0;
      try {
        await readBackVerified(s3, bucket, manifest, {
          signal: cancellationSignal(),
          onRow: (row) => {
            const fingerprint = lines || sample ? lineFingerprint(row.line) : '';
            lines?.set(row.key, fingerprint);
            sample?.offer(() => ({ object: obj.object, key: row.key, fingerprint }));
            if (++rows % 10_000 === 0)
              heartbeat({ objects: this.objects, object: obj.object, rows });
          },
        });
      } catch (err) {
        if (!(err instanceof VerificationError)) throw err;
        this.problems.add(obj.object, withoutWhere(err.message, obj.object));
        return;
      }
      this.rows += rows;
      if (sample) this.sample.mergeFrom(sample);
      if (deletion && lines) {
        for (const p of deletionProblems(deletion, manifest, lines))
          this.problems.add(deletionManifestKey(obj.object), p);
      }
    }
  }

  /**
   * Looks the sampled archived rows up in the source table. A row whose batch was deleted
   * must be gone, or changed since (a changed row is archived again by a later run); the
   * identical row still there means the delete did not happen as its receipt says.
   */
  async function sampleCheck(check: TableCheck): Promise<number> {
    const rows = check.sample.rows();
    if (rows.length === 0) return 0;
    const ref = check.input.table;
    try {
      return await withClient(deps, ref.database, async (client) => {
        const ctx = await loadTableContext(deps, ref, client);
        const { rows: found } = await client.query<DbSampleRow>(sampleLookupSql(ctx.sql), [
          rows.map((r) => r.key),
        ]);
        const current = new Map(found.map((r) => [r.key, r.fingerprint]));
        for (const r of rows) {
          if (current.get(r.key) !== r.fingerprint) continue;
          check.problems.add(
            r.object,
            `row ${ctx.table.primaryKey} = ${r.key} is still in the source table, identical, though the deletion receipt says its batch was deleted`,
          );
        }
        return rows.length;
      });
    } catch (err) {
      const gone =
        err instanceof TableNotFoundError ||
        err instanceof TableShapeError ||
        isMissingDatabase(err);
      if (!gone) throw err;
      check.problems.add(
        tablePrefix(check.location),
        `sample check not possible: ${(err as Error).message}`,
      );
      return 0;
    }
  }

  return {
    /**
     * Validates one table's archive from the bucket alone, then looks a random sample of its
     * archived rows up in the source database. Every problem is returned, never thrown; only
     * a store or database that does not answer fails the activity, so Temporal retries it.
     * Reads only: safe to run at any time, any number of times.
     */
    async validateTable(input: ValidateTableInput): Promise<ValidateTableResult> {
      const ref = input.table;
      findTable(config, ref); // an unconfigured table is bad input, not an empty archive
      const location: TableLocation = { prefix: config.s3.prefix, ...ref };
      const range = { startDate: input.startDate, endDate: input.endDate };
      const objects = await listArchive(s3, bucket, location, range);
      // A second listing: listArchive keeps only data objects, this one also shows sidecar
      // documents that lost their data object and the restore receipts.
      const keys = await listKeys(s3, bucket, tablePrefix(location));
      const check = new TableCheck(input, location, keys);
      check.orphans();
      await forEachLimit(objects, OBJECTS_IN_FLIGHT, (obj) => check.object(obj));
      check.reportMissingSchemas();
      const sampled = await sampleCheck(check);
      return {
        ...ref,
        objects: check.objects,
        rows: check.rows,
        sampled,
        problems: check.problems.list(),
        problemCount: check.problems.count,
      };
    },
  };
}
