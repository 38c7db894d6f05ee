import type { ClientBase, Pool } from 'pg';
import { quoteIdent } from '../identifiers';

/**
 * The statements of the table lock (one writer per table). Two advisory locks per table,
 * both keyed by the archiver's class id and the table's oid, which PostgreSQL computes from
 * the qualified name, so every process, host and cluster agrees on the keys:
 *
 * - the table lock ('AARC'), a session lock held by the run's dedicated lock session for the
 *   whole run. It goes with the session: a holder that dies, freezes or loses its host loses
 *   it when its session ends (the session's idle_session_timeout is the lease).
 * - the delete gate ('AADG'), taken by each delete transaction (transaction-level). A new
 *   holder of the table lock waits once on the gate, so no delete of an earlier holder is
 *   still in flight when it starts; and deletes of one table never overlap.
 *
 * `$1` is always the table's qualified, quoted name (src/postgres/identifiers.ts).
 */
export const LOCK_CLASS_ID = 0x41415243;
export const DELETE_GATE_CLASS_ID = 0x41414447;

const tableKey = `to_regclass($1::text)::oid::int4`;

/** The session(s) `a` holding the table lock of table $1 (at most one), with its lock `l`. */
const LOCK_HOLDERS = `pg_catalog.pg_locks l
       join pg_catalog.pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.objsubid = 2
        and l.classid = ${LOCK_CLASS_ID}::oid
        and l.objid = to_regclass($1::text)::oid
        and l.database = (select oid from pg_catalog.pg_database where datname = current_database())`;

export interface DbLockAttemptRow {
  /** null when the table does not exist. */
  acquired: boolean | null;
  pid: number;
  backend_start: string;
}

/** Tries to take the table lock on this session; says which session this is. */
export async function tryTableLock(client: ClientBase, table: string): Promise<DbLockAttemptRow> {
  const { rows } = await client.query<DbLockAttemptRow>(
    `select pg_try_advisory_lock(${LOCK_CLASS_ID}, ${tableKey}) as acquired,
            pg_backend_pid() as pid,
            (select backend_start::text from pg_catalog.pg_stat_activity
              where pid = pg_backend_pid()) as backend_start`,
    [table],
  );
  return rows[0]!;
}

export async function unlockTable(client: ClientBase, table: string): Promise<void> {
  await client.query(`select pg_advisory_unlock(${LOCK_CLASS_ID}, ${tableKey})`, [table]);
}

/**
 * Waits until no delete transaction of the table is open (takes the delete gate and lets go
 * of it at once), bounded by the session's lock_timeout.
 */
export async function awaitOpenDeletes(client: ClientBase, table: string): Promise<void> {
  await client.query(`select pg_advisory_lock(${DELETE_GATE_CLASS_ID}, ${tableKey})`, [table]);
  await client.query(`select pg_advisory_unlock(${DELETE_GATE_CLASS_ID}, ${tableKey})`, [table]);
}

export interface DbLockHolderRow {
  pid: number;
  backend_start: string;
  application_name: string;
  usename: string | null;
  client_addr: string | null;
}

/** The session holding the table lock, if any. */
export async function tableLockHolder(
  client: ClientBase,
  table: string,
): Promise<DbLockHolderRow | undefined> {
  const { rows } = await client.query<DbLockHolderRow>(
    `select a.pid, a.backend_start::text as backend_start,
            coalesce(a.application_name, '') as application_name,
            a.usename::text as usename, host(a.client_addr) as client_addr
       from ${LOCK_HOLDERS}
      limit 1`,
    [table],
  );
  return rows[0];
}

/**
 * Ends the given session if it still holds the table lock: used only on a session of the
 * run's own that an abandoned attempt left behind. The role may end its own sessions.
 */
export async function endStaleHolder(
  client: ClientBase,
  table: string,
  holder: { pid: number; backendStart: string },
): Promise<boolean> {
  const { rows } = await client.query<{ ended: boolean }>(
    `select coalesce(bool_or(pg_terminate_backend(a.pid)), false) as ended
       from ${LOCK_HOLDERS}
        and a.pid = $2::int
        and a.backend_start = $3::timestamptz`,
    [table, holder.pid, holder.backendStart],
  );
  return rows[0]?.ended ?? false;
}

/**
 * Inside a delete transaction: takes the table's delete gate (false when another delete of
 * the table is open) and says whether the given session holds the table lock, in that order,
 * so a new holder's wait on the gate covers every delete that saw the old holder.
 */
export async function enterDeleteGate(
  client: ClientBase,
  table: string,
  holder: { pid: number; backendStart: string },
): Promise<{ gate: boolean; holdsLock: boolean }> {
  const { rows: gate } = await client.query<{ gate: boolean }>(
    `select pg_try_advisory_xact_lock(${DELETE_GATE_CLASS_ID}, ${tableKey}) as gate`,
    [table],
  );
  if (!gate[0]?.gate) return { gate: false, holdsLock: false };
  const { rows } = await client.query<{ held: boolean }>(
    `select exists (
       select 1 from ${LOCK_HOLDERS}
          and a.pid = $2::int
          and a.backend_start = $3::timestamptz
     ) as held`,
    [table, holder.pid, holder.backendStart],
  );
  return { gate: true, holdsLock: rows[0]?.held ?? false };
}

/** Whether a transaction committed: 'committed', 'aborted', 'in progress', or null when too old to tell. */
export async function transactionStatus(
  client: ClientBase,
  txid: string,
): Promise<'committed' | 'aborted' | 'in progress' | null> {
  const { rows } = await client.query<{ status: 'committed' | 'aborted' | 'in progress' | null }>(
    'select txid_status($1::bigint) as status',
    [txid],
  );
  return rows[0]?.status ?? null;
}

/** The current transaction's id, as text (a 64-bit value with its epoch). */
export async function currentTransactionId(client: ClientBase): Promise<string> {
  const { rows } = await client.query<{ txid: string }>('select txid_current()::text as txid');
  return rows[0]!.txid;
}

/**
 * Gives the lock session its lease: PostgreSQL ends the session (and so the lock) once it has
 * been idle this long. idle_session_timeout exists from PostgreSQL 14; before, only TCP
 * keepalives notice a vanished host, and a frozen one keeps the lock until it is killed.
 * Returns whether the lease is in force.
 */
export async function setLockLease(client: ClientBase, seconds: number): Promise<boolean> {
  const { rows } = await client.query<{ version: number }>(
    "select current_setting('server_version_num')::int as version",
  );
  if ((rows[0]?.version ?? 0) < 140_000) return false;
  await client.query(`select set_config('idle_session_timeout', $1::text, false)`, [
    String(Math.round(seconds * 1000)),
  ]);
  return true;
}

/** The channel on which a lock holder session waits to be told to release the lock. */
function releaseChannel(pid: number): string {
  return `audit_archiver_release_${pid}`;
}

/** The holder session listens on its release channel (see notifyRelease). */
export async function listenForRelease(client: ClientBase, pid: number): Promise<string> {
  const channel = releaseChannel(pid);
  await client.query(`listen ${quoteIdent(channel)}`);
  return channel;
}

/** Tells the holder session to release the lock; it does only if `token` is its own. */
export async function notifyRelease(
  client: ClientBase | Pool,
  pid: number,
  token: string,
): Promise<void> {
  await client.query('select pg_notify($1::text, $2::text)', [releaseChannel(pid), token]);
}

/** Proves the session (and so the lock it holds) is still there. */
export async function ping(client: ClientBase): Promise<void> {
  await client.query('select 1');
}
