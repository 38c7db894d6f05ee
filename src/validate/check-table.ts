import { randomInt } from 'node:crypto';
import { lineFingerprint, readBackVerified } from '../archive/read-back';
import { schemaHash } from '../archive/schema-snapshot';
import { DocumentError, VerificationError } from '../shared/errors';
import type { ValidateTableInput, ValidationProblem } from '../shared/validate-types';
import type { ArchivedObject, TableArchive } from '../store/archive-store';
import type {
  DeletionManifest,
  DeletionReceipt,
  ObjectManifest,
  SchemaSnapshot,
} from '../store/documents';
import { OBJECT_MANIFEST_FORMAT } from '../store/documents';
import {
  dataKeyOfSidecar,
  dayOfKey,
  deleteIntentPrefix,
  deletionManifestKey,
  deletionReceiptKey,
  isDataKey,
  latestSchemaKey,
  manifestKey,
} from '../store/layout';
import { mapLimit } from '../util/concurrency';

/** Problems of one table: all counted, the first `max` kept. */
export class Problems {
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
export interface SampleRow {
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
export class BottomK {
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

/** A problem's message without its `s3://bucket/key: ` prefix: the problem names the key. */
function withoutWhere(message: string, key: string): string {
  const at = message.indexOf(`${key}: `);
  return at < 0 ? message : message.slice(at + key.length + 2);
}

function inRange(day: string | undefined, input: ValidateTableInput): boolean {
  if (!day) return false;
  return (!input.startDate || day >= input.startDate) && (!input.endDate || day <= input.endDate);
}

/** What a manifest must say about the object beside it, or the first thing it gets wrong. */
function manifestProblem(
  manifest: ObjectManifest,
  object: ArchivedObject,
  archive: TableArchive,
): string | undefined {
  if (manifest.format !== OBJECT_MANIFEST_FORMAT)
    return `unknown format ${JSON.stringify(manifest.format)}`;
  if (manifest.object !== object.object) return `describes another object, ${manifest.object}`;
  if (manifest.day !== object.day)
    return `says day ${manifest.day}, the key's partition is ${object.day}`;
  if (manifest.schemaKey !== archive.schemaSnapshotKey(manifest.schemaHash))
    return `names schema snapshot ${manifest.schemaKey}, not the one of its schema hash ${manifest.schemaHash}`;
  return undefined;
}

/** What is wrong with a schema snapshot stored under `key`: its hash must be its content's. */
function snapshotProblem(key: string, snapshot: SchemaSnapshot): string | undefined {
  const named = /([0-9a-f]{64})\.json$/.exec(key)?.[1];
  if (snapshot.schemaHash !== named)
    return `says schema hash ${snapshot.schemaHash}, its key ${named ?? 'none'}`;
  const computed = schemaHash(snapshot);
  if (computed !== snapshot.schemaHash)
    return `its columns and primary key hash to ${computed}, not to the schema hash it states`;
  return undefined;
}

/**
 * Whether the deletion manifest lists exactly rows of the object as stored (same object
 * digest, each key's fingerprint equal to that key's stored line), and the receipt only
 * keys the deletion manifest lists.
 */
function deletionProblems(
  deletion: DeletionManifest | undefined,
  receipt: DeletionReceipt | undefined,
  manifest: ObjectManifest,
  lines: Map<string, string>,
): { key: string; problem: string }[] {
  const problems: { key: string; problem: string }[] = [];
  if (deletion) {
    const key = deletionManifestKey(manifest.object);
    if (deletion.objectSha256 !== manifest.sha256) {
      problems.push({
        key,
        problem: `names object SHA-256 ${deletion.objectSha256}, the manifest says ${manifest.sha256}`,
      });
    } else {
      const missing = deletion.keys.filter((k) => !lines.has(k));
      const differ = deletion.keys.filter(
        (k, i) => lines.has(k) && lines.get(k) !== deletion.fingerprints[i],
      );
      if (missing.length > 0)
        problems.push({
          key,
          problem: `${missing.length} of its ${deletion.keys.length} keys are not in the object (first: ${missing[0]})`,
        });
      if (differ.length > 0)
        problems.push({
          key,
          problem: `${differ.length} fingerprints differ from the object's lines (first key: ${differ[0]})`,
        });
    }
  }
  if (receipt && deletion) {
    const listed = new Set(deletion.keys);
    const stray = receipt.deletedKeys.filter((k) => !listed.has(k));
    if (stray.length > 0)
      problems.push({
        key: deletionReceiptKey(manifest.object),
        problem: `${stray.length} deleted keys are not in the deletion manifest (first: ${stray[0]})`,
      });
  }
  return problems;
}

/**
 * Everything the bucket knows about one table's archive, checked against itself: each
 * object read back against its manifest, deletion manifests and receipts against the object,
 * schema snapshots present, no sidecar without its object. Collects a sample of deleted rows
 * for the source check. A damaged document is a problem, never a thrown error; only a store
 * that does not answer is thrown (and retried).
 */
export class TableCheck {
  readonly problems: Problems;
  readonly sample: BottomK;
  objects = 0;
  rows = 0;
  private readonly missingSchemas = new Map<string, string[]>();
  private readonly snapshots = new Map<string, Promise<boolean>>();
  /**
   * Objects with delete intents but no receipt: whether one of those transactions
   * committed is for the source database to say (see unrecordedDeletes).
   */
  readonly intentsWithoutReceipt: string[] = [];

  constructor(
    readonly input: ValidateTableInput,
    readonly archive: TableArchive,
    readonly keys: Map<string, number>,
    private readonly signal: AbortSignal,
    private readonly progress: (details: Record<string, unknown>) => void,
    /** The table's config requires its archive encrypted: an unencrypted object is a problem. */
    private readonly requireEncryption = false,
  ) {
    this.problems = new Problems(input.maxProblems);
    this.sample = new BottomK(input.sampleSize);
  }

  /** Sidecar documents whose data object is gone: rows may have no archive. */
  orphans(): void {
    const reported = new Set<string>();
    for (const key of [...this.keys.keys()].sort()) {
      if (isDataKey(key)) continue;
      const data = dataKeyOfSidecar(key);
      if (
        !data ||
        this.keys.has(data) ||
        reported.has(data) ||
        !inRange(dayOfKey(data), this.input)
      )
        continue;
      reported.add(data);
      this.problems.add(
        data,
        this.keys.has(manifestKey(data))
          ? `the data object is missing; its manifest ${manifestKey(data)} is there`
          : `the data object and its manifest are missing; ${key} is there`,
      );
    }
  }

  async object(obj: ArchivedObject): Promise<void> {
    this.objects++;
    if (!obj.hasManifest) {
      this.problems.add(obj.object, `has no manifest (${manifestKey(obj.object)} is missing)`);
      return;
    }
    const manifest = await this.document(manifestKey(obj.object), () =>
      this.archive.manifest(obj.object),
    );
    if (!manifest) return;
    const wrong = manifestProblem(manifest, obj, this.archive);
    if (wrong) {
      this.problems.add(manifestKey(obj.object), wrong);
      return;
    }
    await this.schema(manifest);
    let deletion: DeletionManifest | undefined;
    if (obj.hasDeletionManifest) {
      deletion = await this.document(deletionManifestKey(obj.object), () =>
        this.archive.deletionManifest(obj.object),
      );
    } else if (obj.hasDeletionReceipt) {
      this.problems.add(
        deletionManifestKey(obj.object),
        `is missing, but ${deletionReceiptKey(obj.object)} says the batch was deleted`,
      );
    }
    const receipt = obj.hasDeletionReceipt
      ? await this.document(deletionReceiptKey(obj.object), () => this.archive.receipt(obj.object))
      : undefined;
    const intentPrefix = deleteIntentPrefix(obj.object);
    if (!obj.hasDeletionReceipt && [...this.keys.keys()].some((k) => k.startsWith(intentPrefix)))
      this.intentsWithoutReceipt.push(obj.object);
    await this.readBack(obj, manifest, deletion, receipt);
    this.progress({ objects: this.objects, problems: this.problems.count });
  }

  /** A document, or undefined with the problem recorded when it is missing or damaged. */
  private async document<T>(
    key: string,
    read: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    try {
      const doc = await read();
      if (doc === undefined) this.problems.add(key, 'is missing');
      return doc;
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      this.problems.add(key, withoutWhere(err.message, key));
      return undefined;
    }
  }

  private async schema(manifest: ObjectManifest): Promise<void> {
    const key = manifest.schemaKey;
    if (await this.snapshot(key)) return;
    const objects = this.missingSchemas.get(key) ?? [];
    objects.push(manifest.object);
    this.missingSchemas.set(key, objects);
  }

  /**
   * Whether a schema snapshot is there; read once per key, checked against its own hash, a
   * damaged one reported (and counted as there: its manifests are not blamed for it).
   */
  private snapshot(key: string): Promise<boolean> {
    let known = this.snapshots.get(key);
    if (!known) {
      known = this.archive.schemaSnapshot(key).then(
        (snapshot) => {
          if (!snapshot) return false;
          const problem = snapshotProblem(key, snapshot);
          if (problem) this.problems.add(key, problem);
          return true;
        },
        (err: unknown) => {
          if (!(err instanceof DocumentError)) throw err;
          this.problems.add(key, withoutWhere(err.message, key));
          return true;
        },
      );
      this.snapshots.set(key, known);
    }
    return known;
  }

  /**
   * The table's other documents, each read through its schema: delete intents of the objects
   * in range, schema snapshots no manifest names, the latest-schema pointer (and that its
   * snapshot is there), schema changes, the watermark and holds.
   */
  async documents(): Promise<void> {
    const keys = [...this.keys.keys()].sort().filter((key) => {
      if (isDataKey(key)) return false;
      const data = dataKeyOfSidecar(key);
      // Manifests, deletion manifests and receipts are read with their object.
      if (data && !/\.deleting-[^/]+\.json$/.test(key)) return false;
      return !data || inRange(dayOfKey(data), this.input);
    });
    await mapLimit(keys, 8, async (key) => {
      if (/\/_schema\/[0-9a-f]{64}\.json$/.test(key)) {
        await this.snapshot(key);
        return;
      }
      try {
        await this.archive.checkDocument(key, this.signal);
      } catch (err) {
        if (!(err instanceof DocumentError)) throw err;
        this.problems.add(key, withoutWhere(err.message, key));
        return;
      }
      if (key === latestSchemaKey(this.archive.location)) {
        const latest = await this.archive.latestSchema();
        if (latest && latest.key !== this.archive.schemaSnapshotKey(latest.schemaHash))
          this.problems.add(
            key,
            `points at ${latest.key}, not at the snapshot of ${latest.schemaHash}`,
          );
        else if (
          latest &&
          !(await this.snapshot(latest.key)) &&
          !this.missingSchemas.has(latest.key) // reported once, as the snapshot itself
        )
          this.problems.add(key, `points at ${latest.key}, which is missing`);
      }
    });
  }

  /**
   * Reports every delete that committed (the source database says so of its transaction)
   * but has no receipt: restore takes the rows to bring back from receipts, so it would leave
   * those out. `status` asks PostgreSQL about a transaction id.
   */
  async unrecordedDeletes(
    status: (txid: string) => Promise<'committed' | 'aborted' | 'in progress' | null>,
  ): Promise<void> {
    for (const object of this.intentsWithoutReceipt) {
      for (const intent of await this.archive.deleteIntents(object, this.signal)) {
        if ((await status(intent.txid)) !== 'committed') continue;
        this.problems.add(
          deletionReceiptKey(object),
          `is missing, but delete transaction ${intent.txid} committed: ${intent.deleted} rows were deleted (their keys are in ${deleteIntentPrefix(object)}${intent.txid}.json), and a restore would leave them out`,
        );
      }
    }
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

  /**
   * Reads the object back (SHA-256, decompression within the manifest's sizes, every line,
   * row count, key range), taking each line's fingerprint when a deletion manifest needs
   * them, and sample candidates among the rows its delete removed, unless restored since.
   */
  private async readBack(
    obj: ArchivedObject,
    manifest: ObjectManifest,
    deletion: DeletionManifest | undefined,
    receipt: DeletionReceipt | undefined,
  ): Promise<void> {
    const lines = new Map<string, string>();
    const restored = this.keys.has(
      this.archive.restoreReceiptKey(this.archive.location, obj.object),
    );
    const deleted = receipt && !restored ? new Set(receipt.deletedKeys) : undefined;
    const sample = deleted ? new BottomK(this.input.sampleSize) : undefined;
    let rows = 0;
    try {
      const stored = await readBackVerified(this.archive, manifest, {
        signal: this.signal,
        onRow: (row) => {
          if (deletion || deleted) {
            const fingerprint = lineFingerprint(row.line);
            if (deletion) lines.set(row.key, fingerprint);
            if (deleted?.has(row.key))
              sample?.offer(() => ({ object: obj.object, key: row.key, fingerprint }));
          }
          if (++rows % 10_000 === 0)
            this.progress({ objects: this.objects, object: obj.object, rows });
        },
      });
      if (this.requireEncryption && stored.encryption === null)
        this.problems.add(
          obj.object,
          'is not encrypted (the store reports no server-side encryption), but the table requires encryption',
        );
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
      this.problems.add(obj.object, withoutWhere(err.message, obj.object));
      return;
    }
    this.rows += rows;
    if (sample) this.sample.mergeFrom(sample);
    for (const p of deletionProblems(deletion, receipt, manifest, lines))
      this.problems.add(p.key, p.problem);
  }
}
