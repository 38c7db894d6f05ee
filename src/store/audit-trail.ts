import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DocumentError } from '../shared/errors';
import { mapLimit } from '../util/concurrency';
import { hasStatus, type Bucket, type Retention } from './bucket';
import {
  AUDIT_HEAD_FORMAT,
  AUDIT_RECORD_FORMAT,
  auditHeadSchema,
  auditRecordSchema,
  type AuditHead,
  type AuditRecord,
  parseDocument,
} from './documents';
import type { AuditAction } from '../shared/audit-types';
import { auditHeadKey, auditRecordKey, auditTrailPrefix, seqOfAuditKey } from './layout';

/** What a writer says of an event; the trail adds its place in the chain. */
export type AuditEntry = Omit<AuditRecord, 'format' | 'seq' | 'prev' | 'hash'>;

/** The newest record: its number and hash. */
interface Head {
  seq: number;
  hash: string;
}

/** One thing wrong with the trail, at the record it shows at. */
export interface AuditProblem {
  seq: number;
  key: string;
  problem: string;
}

export interface AuditVerification {
  records: number;
  /** The first problem in chain order, then the rest (at most MAX_PROBLEMS). */
  problems: AuditProblem[];
}

export interface AuditFilter {
  database?: string | undefined;
  /** `schema.table` or a bare table name. */
  table?: string | undefined;
  actions?: readonly AuditAction[] | undefined;
  /** First and last UTC day of `at`, inclusive. */
  startDate?: string | undefined;
  endDate?: string | undefined;
}

const MAX_PROBLEMS = 100;
const READS_IN_FLIGHT = 8;
/** Appends that find their number taken by another writer before giving up (each reads on). */
const MAX_APPEND_ROUNDS = 50;

/**
 * The SHA-256 of a record without its `hash`: compact JSON, fields in the record's order.
 * Verification hashes the record as stored (parsed JSON, not the schema's output, which
 * would drop a field someone added), so any change of content shows.
 */
export function recordHash(record: object): string {
  const body: Record<string, unknown> = { ...record };
  delete body.hash;
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

/**
 * The audit trail of an archive: records of what the archiver did, each a write-once object
 * numbered in order (`_audit-trail/000000000042.json`) and chained by hash to the one before.
 * An append takes the next free number with a conditional write (`If-None-Match: *`), so
 * concurrent writers can neither fork the chain (one object per number) nor lose a record
 * (the loser reads the winner's record and tries the number after it). A head pointer beside
 * the records lets writers find the end without listing the whole trail, and lets `verify`
 * notice records removed from the end.
 */
export class AuditTrail {
  private head: Head | null | undefined;

  constructor(
    private readonly bucket: Bucket,
    private readonly prefix: string,
    /** Object Lock retention of every record, or null. */
    private readonly retain: Retention | null = null,
  ) {}

  /** Appends a record for the entry and returns it. */
  async append(entry: AuditEntry): Promise<AuditRecord> {
    let head = this.head === undefined ? await this.findHead() : this.head;
    for (let round = 0; round < MAX_APPEND_ROUNDS; round++) {
      const body = {
        format: AUDIT_RECORD_FORMAT,
        seq: head ? head.seq + 1 : 0,
        prev: head?.hash ?? null,
        ...entry,
      } as const;
      const record: AuditRecord = { ...body, hash: recordHash(body) };
      const key = auditRecordKey(this.prefix, record.seq);
      const outcome = await this.bucket
        .putIfAbsent(key, `${JSON.stringify(record, null, 1)}\n`, {
          contentType: 'application/json',
          retain: this.retain,
        })
        .catch((err: unknown) => {
          // 409: another writer's conditional write of this number is in flight.
          if (hasStatus(err, 409)) return 'busy' as const;
          throw err;
        });
      if (outcome === 'created') {
        this.head = { seq: record.seq, hash: record.hash };
        await this.bucket
          .replace(
            auditHeadKey(this.prefix),
            `${JSON.stringify({ format: AUDIT_HEAD_FORMAT, ...this.head, at: record.at })}\n`,
            'application/json',
          )
          .catch(() => undefined); // a hint only: the next writer lists past a stale one
        return record;
      }
      if (outcome === 'busy') await sleep(20 + Math.random() * 80);
      head = await this.findHead(record.seq - 1);
    }
    throw new Error(
      `${this.bucket.where(auditTrailPrefix(this.prefix))}: could not append to the audit trail: ${MAX_APPEND_ROUNDS} other writers came first`,
    );
  }

  /**
   * The newest record, found by listing from `after` (or the head pointer, or the start): the
   * pointer may lag behind, never run ahead of what is there.
   */
  private async findHead(after?: number): Promise<Head | null> {
    let from = after;
    if (from === undefined) from = (await this.headPointer().catch(() => undefined))?.seq;
    let last: number | undefined;
    let token: string | undefined;
    const startAfter =
      from !== undefined && from > 0 ? auditRecordKey(this.prefix, from - 1) : undefined;
    do {
      const page = await this.bucket.listPage(auditTrailPrefix(this.prefix), {
        ...(token ? { token } : { startAfter }),
      });
      for (const { key } of page.keys) {
        const seq = seqOfAuditKey(this.prefix, key);
        if (seq !== undefined && (last === undefined || seq > last)) last = seq;
      }
      token = page.next;
    } while (token);
    if (last === undefined) return null;
    const record = await this.record(last);
    return { seq: last, hash: record.hash };
  }

  /** The head pointer, or undefined when there is none; a DocumentError when damaged. */
  private async headPointer(): Promise<AuditHead | undefined> {
    const key = auditHeadKey(this.prefix);
    const text = await this.bucket.getText(key);
    return text === undefined
      ? undefined
      : parseDocument(this.bucket.where(key), text, auditHeadSchema);
  }

  private async record(seq: number): Promise<AuditRecord> {
    const key = auditRecordKey(this.prefix, seq);
    const body = await this.bucket.getText(key);
    if (body === undefined) throw new DocumentError(`${this.bucket.where(key)}: is missing`);
    return parseDocument(this.bucket.where(key), body, auditRecordSchema);
  }

  /** Every record's key and number, in order. */
  private async keys(): Promise<{ key: string; seq: number }[]> {
    const listed = await this.bucket.listAll(auditTrailPrefix(this.prefix));
    return [...listed.keys()]
      .flatMap((key) => {
        const seq = seqOfAuditKey(this.prefix, key);
        return seq === undefined ? [] : [{ key, seq }];
      })
      .sort((a, b) => a.seq - b.seq);
  }

  /** The records that pass the filter, oldest first; damaged ones are left out (see verify). */
  async read(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const keys = await this.keys();
    const texts = await mapLimit(keys, READS_IN_FLIGHT, ({ key }) => this.bucket.getText(key));
    const records: AuditRecord[] = [];
    texts.forEach((text, i) => {
      if (text === undefined) return;
      try {
        records.push(parseDocument(keys[i]!.key, text, auditRecordSchema));
      } catch {
        // verify names it
      }
    });
    return records.filter((r) => matches(r, filter));
  }

  /**
   * Walks the chain from the first record: every number present, each record where its key
   * says, its hash true to its content, its `prev` the hash of the record before, and nothing
   * missing after the last (the head pointer). Reports the first problem, and the others.
   */
  async verify(): Promise<AuditVerification> {
    const keys = await this.keys();
    const problems: AuditProblem[] = [];
    const add = (seq: number, problem: string) => {
      if (problems.length < MAX_PROBLEMS)
        problems.push({ seq, key: auditRecordKey(this.prefix, seq), problem });
    };
    const texts = await mapLimit(keys, READS_IN_FLIGHT, ({ key }) => this.bucket.getText(key));
    let expected = 0;
    let previous: AuditRecord | undefined;
    keys.forEach(({ key, seq }, i) => {
      if (seq > expected)
        add(
          expected,
          seq - expected === 1
            ? `record ${expected} is missing`
            : `records ${expected} to ${seq - 1} are missing`,
        );
      expected = seq + 1;
      const text = texts[i];
      let record: AuditRecord;
      try {
        if (text === undefined) throw new Error('vanished while the trail was read');
        record = parseDocument(this.bucket.where(key), text, auditRecordSchema);
      } catch (err) {
        add(seq, `record ${seq} is damaged: ${(err as Error).message}`);
        previous = undefined;
        return;
      }
      if (record.seq !== seq) {
        add(seq, `record ${seq} holds record ${record.seq}: moved or reordered`);
      } else if (recordHash(JSON.parse(text) as object) !== record.hash) {
        add(seq, `record ${seq} was edited: its content does not match its hash`);
      } else if (seq > 0 && previous?.seq === seq - 1 && record.prev !== previous.hash) {
        add(
          seq,
          `record ${seq} does not follow record ${seq - 1}: its prev is not that record's hash (record ${seq - 1} replaced, or the records reordered)`,
        );
      } else if (seq === 0 && record.prev !== null) {
        add(seq, 'record 0 names a record before it: the start of the trail is missing');
      }
      previous = record;
    });
    const head = await this.headPointer().catch((err: unknown) => {
      if (!(err instanceof DocumentError)) throw err;
      add(expected, `the head pointer is damaged: ${err.message}`);
      return undefined;
    });
    if (head && head.seq >= expected)
      add(
        expected,
        `records ${expected} to ${head.seq} are missing: the head pointer names record ${head.seq}`,
      );
    return { records: keys.length, problems };
  }
}

function matches(record: AuditRecord, filter: AuditFilter): boolean {
  if (filter.actions && !filter.actions.includes(record.action)) return false;
  const day = record.at.slice(0, 10);
  if (filter.startDate && day < filter.startDate) return false;
  if (filter.endDate && day > filter.endDate) return false;
  const table = record.table;
  if (filter.database && table?.database !== filter.database) return false;
  if (filter.table) {
    if (!table) return false;
    if (table.table !== filter.table && `${table.schema}.${table.table}` !== filter.table)
      return false;
  }
  return true;
}
