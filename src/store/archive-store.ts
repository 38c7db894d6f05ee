import type { Readable } from 'node:stream';
import type { StorageClass } from '@aws-sdk/client-s3';
import type { z } from 'zod';
import { DocumentError, ObjectConflictError, VerificationError } from '../shared/errors';
import type { TableNames } from '../shared/names';
import { AuditTrail } from './audit-trail';
import type { Bucket, Retention } from './bucket';
import {
  deleteIntentSchema,
  deletionManifestSchema,
  deletionReceiptSchema,
  holdReleaseSchema,
  holdSchema,
  latestSchemaSchema,
  objectManifestSchema,
  restoreReceiptSchema,
  rowVersionsSchema,
  schemaChangeSchema,
  schemaSnapshotSchema,
  watermarkSchema,
  type DeleteIntent,
  type DeletionManifest,
  type DeletionReceipt,
  type Hold,
  type HoldRelease,
  type LatestSchema,
  type ObjectManifest,
  type RestoreReceipt,
  type RowVersionsDocument,
  type SchemaChange,
  type SchemaSnapshot,
  type Watermark,
  parseDocument,
} from './documents';
import {
  dataKeyOfSidecar,
  dataObjectKey,
  dayOfKey,
  deleteIntentKey,
  deleteIntentPrefix,
  deletionManifestKey,
  deletionReceiptKey,
  holdKey,
  holdReleaseKey,
  holdsPrefix,
  isDataKey,
  latestSchemaKey,
  manifestKey,
  restoreReceiptKey,
  rowVersionsKey,
  schemaChangeKey,
  schemaSnapshotKey,
  tablePrefix,
  watermarkKey,
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
  /** A delete transaction got as far as writing its intent (it may or may not have committed). */
  hasDeleteIntent: boolean;
}

/** Inclusive UTC day range, YYYY-MM-DD; either end may be open. */
export interface DaySpan {
  startDate?: string | undefined;
  endDate?: string | undefined;
}

const JSON_TYPE = 'application/json';
const serialise = (doc: unknown) => `${JSON.stringify(doc, null, 1)}\n`;

/**
 * The archive in the bucket, and the only code that knows its layout and its documents. It
 * reads every document through its schema (a damaged one is a DocumentError naming the key),
 * writes archive data and its evidence (manifests, deletion manifests, intents, receipts,
 * schema snapshots, holds) once and never replaces them, and writes in place only the
 * pointers that say so (watermark, latest schema, restore receipts).
 */
export class ArchiveStore {
  /** The archive's audit trail, or null when the config turns it off. */
  readonly audit: AuditTrail | null;
  /** Holds read so far, by key: written once, so never stale (releases are keys of their own). */
  private readonly holdsRead = new Map<string, Hold>();

  constructor(
    readonly bucket: Bucket,
    readonly prefix: string,
    private readonly options: {
      storageClass: StorageClass;
      /** The Object Lock retention each table's archive is written with (null: none). */
      retentionOf?: (names: TableNames) => Retention | null;
      /** Keep an audit trail, its records under this retention (null: none). */
      auditTrail?: { retain: Retention | null } | null;
    },
  ) {
    this.audit = options.auditTrail
      ? new AuditTrail(bucket, prefix, options.auditTrail.retain)
      : null;
  }

  /** The archive of one table. */
  table(names: TableNames): TableArchive {
    return new TableArchive(
      this.bucket,
      { prefix: this.prefix, ...names },
      {
        storageClass: this.options.storageClass,
        retain: this.options.retentionOf?.(names) ?? null,
      },
      this.holdsRead,
    );
  }
}

export class TableArchive {
  readonly prefix: string;

  constructor(
    private readonly bucket: Bucket,
    readonly location: TableLocation,
    private readonly writes: {
      storageClass: StorageClass;
      /** Object Lock retention of every object and document written once. */
      retain: Retention | null;
    },
    private readonly holdsRead = new Map<string, Hold>(),
  ) {
    this.prefix = tablePrefix(location);
  }

  where(key: string): string {
    return this.bucket.where(key);
  }

  // --- data objects -----------------------------------------------------------------------

  dataKey(day: string, run: string, batch: number): string {
    return dataObjectKey(this.location, day, run, batch);
  }

  dataExists(object: string, signal?: AbortSignal): Promise<boolean> {
    return this.bucket.exists(object, signal);
  }

  /** Stores a data object unless its key is taken: `exists` when another attempt stored one. */
  uploadData(object: string, body: Readable, signal: AbortSignal): Promise<'created' | 'exists'> {
    return this.bucket.uploadIfAbsent(object, body, {
      contentType: 'application/gzip',
      storageClass: this.writes.storageClass,
      signal,
      retain: this.writes.retain,
    });
  }

  /**
   * Puts an S3 Object Lock legal hold on a data object and its manifest, or lifts it: while
   * it stands nobody can delete any version of them.
   */
  async setLegalHold(object: string, on: boolean): Promise<void> {
    await this.bucket.setLegalHold(object, on);
    await this.bucket.setLegalHold(manifestKey(object), on);
  }

  /** The stored bytes of a data object; a missing one is a VerificationError. */
  async openData(
    object: string,
    signal: AbortSignal,
  ): Promise<{ body: Readable; length: number; encryption: string | null }> {
    const opened = await this.bucket.open(object, signal);
    if (!opened)
      throw new VerificationError(`${this.where(object)}: the data object is missing`, { object });
    return opened;
  }

  // --- per-object documents ---------------------------------------------------------------

  manifest(object: string): Promise<ObjectManifest | undefined> {
    return this.readOf(object, manifestKey(object), objectManifestSchema);
  }

  async requireManifest(object: string): Promise<ObjectManifest> {
    const manifest = await this.manifest(object);
    if (!manifest) {
      throw new VerificationError(`${this.where(manifestKey(object))}: manifest is missing`, {
        object,
      });
    }
    return manifest;
  }

  /** A concurrent attempt's manifest of the same stored bytes stands; any other is a conflict. */
  saveManifest(doc: ObjectManifest): Promise<ObjectManifest> {
    return this.writeOnce(manifestKey(doc.object), doc, objectManifestSchema, 'sha256');
  }

  rowVersions(object: string): Promise<RowVersionsDocument | undefined> {
    return this.readOf(object, rowVersionsKey(object), rowVersionsSchema);
  }

  /** Written only by the export whose upload stored the object, so only one is ever made. */
  saveRowVersions(doc: RowVersionsDocument): Promise<RowVersionsDocument> {
    return this.writeOnce(rowVersionsKey(doc.object), doc, rowVersionsSchema, 'objectSha256');
  }

  deletionManifest(object: string): Promise<DeletionManifest | undefined> {
    return this.readOf(object, deletionManifestKey(object), deletionManifestSchema);
  }

  saveDeletionManifest(doc: DeletionManifest): Promise<DeletionManifest> {
    return this.writeOnce(
      deletionManifestKey(doc.object),
      doc,
      deletionManifestSchema,
      'objectSha256',
    );
  }

  /** Every delete intent written for the object, one per delete transaction that got that far. */
  async deleteIntents(object: string, signal?: AbortSignal): Promise<DeleteIntent[]> {
    const keys = await this.bucket.listAll(deleteIntentPrefix(object));
    const intents: DeleteIntent[] = [];
    for (const key of [...keys.keys()].sort()) {
      const intent = await this.read(key, deleteIntentSchema, signal);
      if (intent) intents.push(intent);
    }
    return intents;
  }

  saveDeleteIntent(doc: DeleteIntent, signal?: AbortSignal): Promise<DeleteIntent> {
    return this.writeOnce(
      deleteIntentKey(doc.object, doc.txid),
      doc,
      deleteIntentSchema,
      'txid',
      signal,
    );
  }

  receipt(object: string): Promise<DeletionReceipt | undefined> {
    return this.readOf(object, deletionReceiptKey(object), deletionReceiptSchema);
  }

  /** Only the transaction that deleted the rows has a receipt: another one is a conflict. */
  saveReceipt(doc: DeletionReceipt): Promise<DeletionReceipt> {
    return this.writeOnce(deletionReceiptKey(doc.object), doc, deletionReceiptSchema, 'txid');
  }

  // --- table documents --------------------------------------------------------------------

  watermark(): Promise<Watermark | undefined> {
    return this.read(watermarkKey(this.location), watermarkSchema);
  }

  /** A pointer: the run holding the table's lock is its only writer, and moves it forward only. */
  saveWatermark(doc: Watermark): Promise<void> {
    return this.replace(watermarkKey(this.location), doc);
  }

  schemaSnapshotKey(schemaHash: string): string {
    return schemaSnapshotKey(this.location, schemaHash);
  }

  schemaSnapshot(key: string): Promise<SchemaSnapshot | undefined> {
    return this.read(key, schemaSnapshotSchema);
  }

  async requireSchemaSnapshot(key: string): Promise<SchemaSnapshot> {
    const snapshot = await this.schemaSnapshot(key);
    if (!snapshot)
      throw new VerificationError(`${this.where(key)}: schema snapshot is missing`, { key });
    return snapshot;
  }

  schemaSnapshotExists(key: string, signal?: AbortSignal): Promise<boolean> {
    return this.bucket.exists(key, signal);
  }

  /** Content-addressed: the same hash is the same schema, whoever wrote it first. */
  saveSchemaSnapshot(doc: SchemaSnapshot): Promise<SchemaSnapshot> {
    return this.writeOnce(
      schemaSnapshotKey(this.location, doc.schemaHash),
      doc,
      schemaSnapshotSchema,
      'schemaHash',
    );
  }

  latestSchema(): Promise<LatestSchema | undefined> {
    return this.read(latestSchemaKey(this.location), latestSchemaSchema);
  }

  saveLatestSchema(doc: LatestSchema): Promise<void> {
    return this.replace(latestSchemaKey(this.location), doc);
  }

  /** A record of what changed; keyed by time and hash, so records never collide. */
  saveSchemaChange(doc: SchemaChange): Promise<void> {
    return this.replace(schemaChangeKey(this.location, doc.detectedAt, doc.to), doc);
  }

  /** The holds in force: written and not released. */
  async holds(): Promise<Hold[]> {
    const keys = await this.bucket.listAll(holdsPrefix(this.location));
    const holds: Hold[] = [];
    for (const key of [...keys.keys()].sort()) {
      if (key.endsWith('.released.json')) continue;
      let hold = this.holdsRead.get(key);
      if (!hold) {
        hold = await this.read(key, holdSchema);
        if (hold) this.holdsRead.set(key, hold);
      }
      if (hold && !keys.has(holdReleaseKey(this.location, hold.id))) holds.push(hold);
    }
    return holds;
  }

  saveHold(doc: Hold): Promise<Hold> {
    return this.writeOnce(holdKey(this.location, doc.id), doc, holdSchema, 'id');
  }

  saveHoldRelease(doc: HoldRelease): Promise<HoldRelease> {
    return this.writeOnce(holdReleaseKey(this.location, doc.id), doc, holdReleaseSchema, 'id');
  }

  restoreReceipt(target: TableNames, object: string): Promise<RestoreReceipt | undefined> {
    return this.read(restoreReceiptKey(this.location, target, object), restoreReceiptSchema);
  }

  restoreReceiptKey(target: TableNames, object: string): string {
    return restoreReceiptKey(this.location, target, object);
  }

  /** The restore watermark of one object in one target: rewritten by each restore of it. */
  saveRestoreReceipt(doc: RestoreReceipt): Promise<void> {
    return this.replace(restoreReceiptKey(this.location, doc.target, doc.object), doc);
  }

  /**
   * Reads a table document other than an object's manifest, deletion manifest and receipt
   * (delete intents, schema snapshots, the latest-schema pointer, schema changes, the
   * watermark, holds and their releases) through the schema its key says it has: a
   * DocumentError when it is damaged, `false` when the key is none of these.
   */
  async checkDocument(key: string, signal?: AbortSignal): Promise<boolean> {
    if (!key.startsWith(this.prefix)) return false;
    const rest = key.slice(this.prefix.length);
    const schema = TABLE_DOCUMENTS.find(([pattern]) => pattern.test(rest))?.[1];
    if (!schema) return false;
    await this.read(key, schema, signal);
    return true;
  }

  // --- listings ---------------------------------------------------------------------------

  /** Every key of the table's archive with its size. */
  listKeys(): Promise<Map<string, number>> {
    return this.bucket.listAll(this.prefix);
  }

  /**
   * Data objects of the table in key order (day, then run and batch), optionally of a day
   * range, with which sidecar documents exist beside each; at most `limit` after `after`.
   * Memory is bounded by the page, not by the archive.
   */
  async listObjects(
    span: DaySpan = {},
    page: { after?: string; limit?: number } = {},
  ): Promise<{ objects: ArchivedObject[]; more: boolean; orphans: string[] }> {
    const limit = page.limit ?? Number.POSITIVE_INFINITY;
    const objects: ArchivedObject[] = [];
    const sidecars = new Set<string>();
    /** Data objects with at least one delete intent beside them. */
    const withIntent = new Set<string>();
    // Data folders (year=...) sort after the table's _holds/, _restored/, _schema/ and
    // _state/ folders: start listing at the first day wanted, or after the page cursor.
    const floor = `${this.prefix}${span.startDate ? dayFolder(span.startDate) : 'year='}`;
    let startAfter: string | undefined = floor.slice(0, -1);
    if (page.after && page.after > floor) startAfter = page.after;
    let token: string | undefined;
    let more = false;
    listing: do {
      const listed = await this.bucket.listPage(this.prefix, { startAfter, token, maxKeys: 1000 });
      startAfter = undefined;
      token = listed.next;
      for (const { key, size } of listed.keys) {
        // A data object's sidecars sort next to it (receipts and deletion manifests just
        // before, its manifest and row versions just after), so a page ends after its last
        // object's documents.
        const data = isDataKey(key) ? key : dataKeyOfSidecar(key);
        const keyDay = data && dayOfKey(data);
        if (!data || !keyDay) continue;
        if (span.endDate && keyDay > span.endDate) break listing;
        if (objects.length >= limit && data !== objects.at(-1)?.object) {
          more = true;
          break listing;
        }
        if (!isDataKey(key)) {
          sidecars.add(key);
          if (key.startsWith(deleteIntentPrefix(data))) withIntent.add(data);
        } else
          objects.push({
            object: key,
            day: keyDay,
            size,
            hasManifest: false,
            hasDeletionManifest: false,
            hasDeletionReceipt: false,
            hasDeleteIntent: false,
          });
      }
    } while (token);
    for (const o of objects) {
      o.hasManifest = sidecars.has(manifestKey(o.object));
      o.hasDeletionManifest = sidecars.has(deletionManifestKey(o.object));
      o.hasDeletionReceipt = sidecars.has(deletionReceiptKey(o.object));
      o.hasDeleteIntent = withIntent.has(o.object);
    }
    // Documents of a data object that is not there (the previous page's last object's
    // manifest and row versions come first on this page: they are not).
    const listed = new Set(objects.map((o) => o.object));
    const orphans = [...new Set([...sidecars].map((k) => dataKeyOfSidecar(k)!))].filter(
      (data) => data !== page.after && !listed.has(data),
    );
    return { objects, more, orphans };
  }

  // --- documents in general -----------------------------------------------------------------

  private async read<S extends z.ZodType>(
    key: string,
    schema: S,
    signal?: AbortSignal,
  ): Promise<z.infer<S> | undefined> {
    const body = await this.bucket.getText(key, signal);
    if (body === undefined) return undefined;
    return parseDocument(this.where(key), body, schema);
  }

  /**
   * A document beside a data object, which must name that object: one copied or edited to
   * describe another would have a reader check (or restore) the wrong bytes.
   */
  private async readOf<S extends z.ZodType<{ object: string }>>(
    object: string,
    key: string,
    schema: S,
  ): Promise<z.infer<S> | undefined> {
    const doc = await this.read(key, schema);
    if (doc !== undefined && doc.object !== object)
      throw new DocumentError(`${this.where(key)}: describes another object, ${doc.object}`, {
        where: this.where(key),
      });
    return doc;
  }

  /**
   * Writes a document that must never change once written. A retry that finds one there
   * accepts it when its `identity` field has the same value (it describes the same thing),
   * and fails loudly otherwise: never a silent replacement.
   */
  private async writeOnce<S extends z.ZodType<Record<string, unknown>>>(
    key: string,
    doc: z.infer<S>,
    schema: S,
    identity: keyof z.infer<S>,
    signal?: AbortSignal,
  ): Promise<z.infer<S>> {
    const outcome = await this.bucket.putIfAbsent(key, serialise(doc), {
      contentType: JSON_TYPE,
      signal,
      retain: this.writes.retain,
    });
    if (outcome === 'created') return doc;
    const existing = await this.read(key, schema, signal).catch((err: unknown) => {
      if (err instanceof DocumentError) return undefined;
      throw err;
    });
    if (existing === undefined || existing[identity] !== doc[identity]) {
      throw new ObjectConflictError(
        `${this.where(key)} already exists with other content; it was left unchanged`,
        { key },
      );
    }
    return existing;
  }

  private replace(key: string, doc: unknown): Promise<void> {
    return this.bucket.replace(key, serialise(doc), JSON_TYPE);
  }
}

/** Table documents by their key below the table's prefix (the first pattern that matches). */
const TABLE_DOCUMENTS: readonly [RegExp, z.ZodType][] = [
  [/\.deleting-[^/]+\.json$/, deleteIntentSchema],
  [/^_schema\/latest\.json$/, latestSchemaSchema],
  [/^_schema\/changes\/[^/]+\.json$/, schemaChangeSchema],
  [/^_schema\/[0-9a-f]{64}\.json$/, schemaSnapshotSchema],
  [/^_state\/watermark\.json$/, watermarkSchema],
  [/^_holds\/[^/]+\.released\.json$/, holdReleaseSchema],
  [/^_holds\/[^/]+\.json$/, holdSchema],
  [/^_restored\/.+\.json$/, restoreReceiptSchema],
];

/** `year=YYYY/month=MM/day=DD/` of a day. */
function dayFolder(day: string): string {
  const [year, month, date] = day.split('-');
  return `year=${year}/month=${month}/day=${date}/`;
}
