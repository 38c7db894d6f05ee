import { Connection } from '@temporalio/client';
import pg from 'pg';
import {
  selectTables,
  type Config,
  type Env,
  type ResolvedTable,
  type TableFilter,
} from '../config';
import { connectionConfig } from '../postgres/pool';
import { inspectTable } from '../postgres/inspect';
import { openArchiveStore } from '../store/client';
import { NotEncryptedError } from '../shared/errors';
import type { Bucket } from '../store/bucket';
import { probeStore, proveEncryption, StoreUnsafeError } from '../store/probe';
import { serverVersion } from '../postgres/sql/server-version';
import { temporalConnectOptions } from '../temporal-client/connection';
import {
  createSearchAttributeCommand,
  missingSearchAttributes,
} from '../temporal-client/search-attributes';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes';

/** One line of the doctor's report. */
export interface CheckResult {
  ok: boolean;
  subject: string;
  /** What was found when ok; what is wrong otherwise. */
  detail: string;
}

export interface DoctorOptions {
  config: Config;
  env: Env;
  filter?: TableFilter;
  /** Called as each check finishes, so a slow check does not hide the ones before it. */
  onResult?: (result: CheckResult) => void;
  timeoutMs?: number;
}

/**
 * Checks everything the archiver needs, the way it will use it: each configured database
 * and table, the bucket (a probe object is written, read back and removed under the
 * prefix), and the Temporal namespace. Changes nothing else.
 */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const report = (ok: boolean, subject: string, detail: string) => {
    const result = { ok, subject, detail };
    results.push(result);
    options.onResult?.(result);
  };
  const timeoutMs = options.timeoutMs ?? 5_000;
  const tables = selectTables(options.config, options.filter);

  const byDatabase = new Map<string, ResolvedTable[]>();
  for (const t of tables)
    byDatabase.set(t.database.name, [...(byDatabase.get(t.database.name) ?? []), t]);
  for (const group of byDatabase.values())
    await checkDatabase(group, options.env, timeoutMs, report);

  await checkBucket(options.config, timeoutMs, report);
  await checkTemporal(options.config, options.env, timeoutMs, report);
  return results;
}

type Report = (ok: boolean, subject: string, detail: string) => void;

async function checkDatabase(
  tables: ResolvedTable[],
  env: Env,
  timeoutMs: number,
  report: Report,
): Promise<void> {
  const db = tables[0]!.database;
  const subject = `database ${db.name} (${db.user}@${db.host}:${db.port}/${db.dbname ?? db.name})`;
  let client: pg.Client;
  try {
    client = new pg.Client({ ...connectionConfig(db, env), connectionTimeoutMillis: timeoutMs });
    await client.connect();
  } catch (err) {
    report(false, subject, describePgError(err));
    return;
  }
  try {
    report(true, subject, `connected, PostgreSQL ${await serverVersion(client)}`);
    for (const table of tables) {
      const name = `table ${db.name} ${table.schema}.${table.name}`;
      const inspection = await inspectTable(client, table);
      if (!inspection.found) {
        report(false, name, 'does not exist (or the role cannot see it)');
        continue;
      }
      report(
        inspection.timestampColumn.ok,
        `${name} timestamp_column`,
        checkText(inspection.timestampColumn),
      );
      report(inspection.keyColumn.ok, `${name} primary_key`, checkText(inspection.keyColumn));
      report(inspection.privileges.ok, `${name} privileges`, checkText(inspection.privileges));
    }
  } catch (err) {
    report(false, subject, describePgError(err));
  } finally {
    await client.end().catch(() => undefined);
  }
}

function checkText(check: { ok: true; detail: string } | { ok: false; problem: string }): string {
  return check.ok ? check.detail : check.problem;
}

async function checkBucket(config: Config, timeoutMs: number, report: Report): Promise<void> {
  const { bucket, prefix, endpoint } = config.s3;
  const subject = `bucket s3://${bucket}/${prefix} (${endpoint ?? `AWS ${config.s3.region}`})`;
  const opened = openArchiveStore(config, { maxAttempts: 2, connectTimeoutMs: timeoutMs });
  try {
    await probeStore(opened.store.bucket, prefix);
    report(
      true,
      subject,
      'reachable; wrote and read back a probe object, and the store refused to overwrite it (single and multipart)',
    );
    await checkCompliance(config, opened.store.bucket, report);
  } catch (err) {
    if (err instanceof StoreUnsafeError || err instanceof NotEncryptedError) {
      report(false, subject, err.message);
      return;
    }
    const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
    const step = err instanceof Error ? err.message.split(': ')[0] : 'reach the bucket';
    report(false, subject, `${step}: ${describeS3Error(cause)}`);
  } finally {
    opened.destroy();
  }
}

/**
 * The bucket settings each configured control needs (docs/compliance.md): a store that
 * encrypts when s3.encryption asks for it, Object Lock where a classification sets the
 * archive's retention (required) or a table is under a legal hold (without it only the
 * rows are held).
 */
async function checkCompliance(config: Config, bucket: Bucket, report: Report): Promise<void> {
  const { mode, kms_key_id: key } = config.s3.encryption;
  if (mode !== 'none') {
    await proveEncryption(bucket, config.s3.prefix);
    report(
      true,
      'encryption',
      `${mode}${key ? ` with key ${key}` : ''}: a probe object written with it reads back encrypted`,
    );
  }
  const tables = selectTables(config);
  const retained = tables.filter((t) => t.objectLock !== null);
  const held = tables.filter((t) => t.legalHold !== null);
  if (retained.length === 0 && held.length === 0) return;
  const lock = await bucket.objectLockEnabled();
  const names = (list: typeof tables) => list.map((t) => `${t.schema}.${t.name}`).join(', ');
  if (retained.length > 0) {
    const modes = [
      ...new Set(retained.map((t) => `${t.objectLock!.mode} ${t.objectLock!.days} days`)),
    ];
    report(
      lock,
      'object lock (retention)',
      lock
        ? `the bucket has Object Lock (versioning ${(await bucket.versioning()) ?? 'off'}): ${names(retained)} archived under ${modes.join(', ')} retention`
        : `the bucket has no Object Lock, but ${names(retained)} ask for archive retention (archive_retention_days): create the bucket with Object Lock on (docs/compliance.md)`,
    );
  }
  if (held.length > 0) {
    report(
      true,
      'object lock (legal holds)',
      lock
        ? `${names(held)} under a legal hold: their archived objects are locked on each run`
        : `${names(held)} under a legal hold: their rows are held, but the bucket has no Object Lock, so their archived objects cannot be locked`,
    );
  }
}

async function checkTemporal(
  config: Config,
  env: Env,
  timeoutMs: number,
  report: Report,
): Promise<void> {
  const { address, namespace } = config.temporal;
  const subject = `temporal ${address} namespace ${namespace}`;
  let connection: Connection;
  try {
    connection = await Connection.connect({
      ...temporalConnectOptions(config.temporal, env),
      connectTimeout: timeoutMs,
    });
  } catch (err) {
    report(false, subject, `cannot connect: ${firstLine(err)}`);
    return;
  }
  try {
    await connection.withDeadline(Date.now() + timeoutMs, () =>
      connection.workflowService.describeNamespace({ namespace }),
    );
    report(true, subject, 'server and namespace answer');
    const missing = await missingSearchAttributes(connection, namespace);
    report(
      missing.length === 0,
      `temporal search attributes`,
      missing.length === 0
        ? `${SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).join(', ')} registered`
        : `missing ${missing.join(', ')} (the worker registers them at start, or run: ${createSearchAttributeCommand(missing[0]!, namespace)})`,
    );
  } catch (err) {
    report(false, subject, firstLine(err).replace(/^\d+ [A-Z_]+: /, ''));
  } finally {
    await connection.close();
  }
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}

/** A PostgreSQL connection or query failure in words an operator can act on. */
export function describePgError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused (is PostgreSQL running on that host and port?)';
    case 'ENOTFOUND':
      return 'host name not found';
    case '28P01':
      return 'password authentication failed';
    case '28000':
      // Both a role that does not exist and a pg_hba.conf rule that refuses it: the server says which.
      return `the server refused the connection: ${firstLine(err)}`;
    case '3D000':
      return 'database does not exist';
    case 'SECRET_MISSING':
      return firstLine(err);
    default:
      return /timeout/i.test(e.message ?? '') ? 'connection timed out' : firstLine(err);
  }
}

/** An S3 failure in words an operator can act on. */
export function describeS3Error(err: unknown): string {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (
    e.name === 'NotFound' ||
    e.name === 'NoSuchBucket' ||
    (status === 404 && e.name !== 'NoSuchKey')
  ) {
    return 'the bucket does not exist';
  }
  if (e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch') {
    return 'credentials rejected (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)';
  }
  if (e.name === 'AccessDenied' || status === 403) {
    // A HEAD request's 403 has no body to tell wrong credentials from a missing permission.
    return 'access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy)';
  }
  if (e.name === 'CredentialsProviderError')
    return 'no credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)';
  if (e.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(firstLine(err))) {
    return 'connection refused (is the endpoint right and the server running?)';
  }
  return firstLine(err);
}
