import pg from 'pg';
import type { RowModel } from './model';
import type { PrivatePostgres } from './postgres';
import type { Rng } from './rng';
import { errorText, sleep } from './util';

const DAY_MS = 86_400_000;

/** Texts that tend to break escaping: quotes, tabs, newlines, backslashes, non-ASCII. */
const ACTORS = [
  'alice',
  'bob',
  "o'brien",
  'tab\there',
  'line\nbreak',
  'back\\slash',
  'Zoë 🚀',
  '"quoted"',
  '',
];
const ACTIONS = ['login', 'update', 'delete', 'export', 'grant', 'revoke'];

export interface TrafficCounts {
  inserts: number;
  updates: number;
  deletes: number;
  /** UPDATEs and DELETEs that found their row gone (the archiver had taken it). */
  misses: number;
  /** Statements that failed before COMMIT (nothing happened) or whose commit was resolved. */
  failed: number;
  resolvedAfterLostCommit: number;
}

type Slot = 'loop' | 'bulk';

interface Statement {
  sql: string;
  params: unknown[];
  /** Applies the confirmed result to the model. */
  apply: (rows: { id: string; content: string }[]) => void;
}

/**
 * The application writing its audit table while the archiver works on it: inserts with old
 * timestamps (which the archiver takes), a few recent ones, and UPDATEs and DELETEs of old
 * rows, most of them while the archiver is exporting or deleting around them. One statement
 * at a time, so the model applies changes in the order PostgreSQL committed them.
 *
 * Each statement runs in its own transaction that first asks for its transaction id. If the
 * connection dies after COMMIT was sent (a restart, a terminated session), the outcome is
 * read back with pg_xact_status: the model never guesses.
 */
export class AppTraffic {
  readonly counts: TrafficCounts = {
    inserts: 0,
    updates: 0,
    deletes: 0,
    misses: 0,
    failed: 0,
    resolvedAfterLostCommit: 0,
  };
  private running: Promise<void> | undefined;
  private stopRequested = false;
  /** One session for the statement loop and one for bulk inserts: never two transactions on one. */
  private readonly clients = new Map<Slot, pg.Client>();
  private seq = 0;
  /**
   * The day the run in flight is archiving (its progress query), if known: most UPDATEs and
   * DELETEs go to rows of that day, between their export and their delete.
   */
  hotDay: string | undefined;

  constructor(
    private readonly pgServer: PrivatePostgres,
    private readonly database: string,
    private readonly table: string,
    private readonly model: RowModel,
    private readonly rng: Rng,
    private readonly options: { opsPerSecond: number; retentionDays: number },
  ) {}

  /** A timestamp `minDays`..`maxDays` days ago, at microsecond precision. */
  private timestamp(minDays: number, maxDays: number): string {
    const ms = Date.now() - minDays * DAY_MS - this.rng.next() * (maxDays - minDays) * DAY_MS;
    const micros = String(this.rng.int(0, 999)).padStart(3, '0');
    return `${new Date(ms).toISOString().slice(0, 23)}${micros}Z`;
  }

  /** Old enough to archive, with a day's margin either side of the cutoff. */
  private oldTimestamp(): string {
    const r = this.options.retentionDays;
    return this.timestamp(r + 1, r + 30);
  }

  private payload(): string {
    const n = ++this.seq;
    // jsonb keeps numbers exactly; the big one does not fit a JavaScript number.
    return JSON.stringify({ n, note: this.rng.pick(ACTORS), at: Date.now() }).replace(
      /}$/,
      `, "big": ${this.rng.int(1, 9)}${String(n).padStart(24, '0')}.5}`,
    );
  }

  private returning(): string {
    return 'returning t.id::text as id, to_jsonb(t)::text as content';
  }

  /** A multi-row insert of `rows` old rows, recorded in the model once committed. */
  async insertOld(rows: number): Promise<number> {
    const values: string[] = [];
    const params: unknown[] = [];
    for (let i = 0; i < rows; i++) {
      const at = params.length;
      values.push(`($${at + 1}::timestamptz, $${at + 2}, $${at + 3}, $${at + 4}::jsonb)`);
      params.push(
        this.oldTimestamp(),
        this.rng.pick(ACTORS),
        this.rng.pick(ACTIONS),
        this.payload(),
      );
    }
    let inserted = 0;
    await this.execute('bulk', {
      sql: `insert into ${this.table} as t (created_at, actor, action, payload) values ${values.join(', ')} ${this.returning()}`,
      params,
      apply: (returned) => {
        for (const r of returned) this.model.inserted(r.id, r.content, true);
        inserted = returned.length;
      },
    });
    return inserted;
  }

  private nextStatement(): Statement {
    const roll = this.rng.next();
    const hot = this.hotDay !== undefined && this.rng.chance(0.7) ? this.hotDay : undefined;
    const id = this.model.pick((n) => this.rng.int(0, n - 1), hot);
    if (roll < 0.45 || id === undefined) {
      const recent = this.rng.chance(0.1);
      const ts = recent ? this.timestamp(0, this.options.retentionDays - 1) : this.oldTimestamp();
      this.counts.inserts++;
      return {
        sql: `insert into ${this.table} as t (created_at, actor, action, payload) values ($1, $2, $3, $4::jsonb) ${this.returning()}`,
        params: [ts, this.rng.pick(ACTORS), this.rng.pick(ACTIONS), this.payload()],
        apply: (rows) => {
          for (const r of rows) this.model.inserted(r.id, r.content, !recent);
        },
      };
    }
    if (roll < 0.85) {
      this.counts.updates++;
      // Now and then the row moves to another day, or out of the archive's reach.
      const move = this.rng.next();
      const set =
        move < 0.1
          ? {
              sql: 'created_at = $3::timestamptz, payload = $2::jsonb',
              ts: this.oldTimestamp(),
              old: true,
            }
          : move < 0.15
            ? {
                sql: 'created_at = $3::timestamptz, payload = $2::jsonb',
                ts: this.timestamp(0, this.options.retentionDays - 1),
                old: false,
              }
            : {
                sql: 'payload = $2::jsonb, action = $3',
                ts: this.rng.pick(ACTIONS),
                old: undefined,
              };
      const old = set.old ?? this.model.rows.get(id)?.old ?? true;
      return {
        sql: `update ${this.table} as t set ${set.sql} where id = $1::bigint ${this.returning()}`,
        params: [id, this.payload(), set.ts],
        apply: (rows) => {
          if (rows.length === 0) {
            this.counts.misses++;
            this.model.missing(id);
          }
          for (const r of rows) this.model.updated(r.id, r.content, old);
        },
      };
    }
    this.counts.deletes++;
    return {
      sql: `delete from ${this.table} as t where id = $1::bigint ${this.returning()}`,
      params: [id],
      apply: (rows) => {
        if (rows.length === 0) {
          this.counts.misses++;
          this.model.missing(id);
        }
        for (const r of rows) this.model.deleted(r.id);
      },
    };
  }

  private async connect(slot: Slot): Promise<pg.Client> {
    const existing = this.clients.get(slot);
    if (existing) return existing;
    const client = new pg.Client(this.pgServer.connection(this.database, `chaos-app-${slot}`));
    client.on('error', () => undefined);
    await client.connect();
    this.clients.set(slot, client);
    return client;
  }

  private drop(slot: Slot): void {
    void this.clients
      .get(slot)
      ?.end()
      .catch(() => undefined);
    this.clients.delete(slot);
  }

  /**
   * Runs one statement in its own transaction. Returns once its outcome is known: applied to
   * the model if it committed, dropped if it did not. Throws only if the outcome could not be
   * learnt within a minute (then its rows are marked uncertain).
   */
  private async execute(slot: Slot, statement: Statement): Promise<void> {
    let xid: string | undefined;
    let returned: { id: string; content: string }[] | undefined;
    let commitSent = false;
    try {
      const client = await this.connect(slot);
      await client.query('begin');
      const { rows } = await client.query<{ xid: string }>(
        'select pg_current_xact_id()::text as xid',
      );
      xid = rows[0]!.xid;
      returned = (
        await client.query<{ id: string; content: string }>(statement.sql, statement.params)
      ).rows;
      commitSent = true;
      await client.query('commit');
    } catch (err) {
      this.drop(slot);
      this.counts.failed++;
      // COMMIT never sent: the transaction dies with its session; nothing happened.
      if (!commitSent || xid === undefined || returned === undefined) return;
      const status = await this.xactStatus(xid).catch((e: unknown) => {
        for (const r of returned ?? []) this.model.uncertain.add(r.id);
        this.model.uncertainStatements++;
        throw new Error(
          `outcome of transaction ${xid} unknown after ${errorText(err)}: ${errorText(e)}`,
        );
      });
      this.counts.resolvedAfterLostCommit++;
      if (status !== 'committed') return;
    }
    if (returned) statement.apply(returned);
  }

  /** pg_xact_status of a transaction, asked on a fresh session until the server answers. */
  private async xactStatus(xid: string): Promise<string> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const status = await this.pgServer.withClient(this.database, async (c) => {
          const { rows } = await c.query<{ status: string | null }>(
            'select pg_xact_status($1::xid8) as status',
            [xid],
          );
          return rows[0]?.status ?? null;
        });
        if (status === 'committed' || status === 'aborted') return status;
      } catch {
        // the server is restarting: ask again
      }
      if (Date.now() > deadline) throw new Error('pg_xact_status did not answer within 60 s');
      await sleep(250);
    }
  }

  start(): void {
    if (this.running) return;
    this.stopRequested = false;
    this.running = (async () => {
      while (!this.stopRequested) {
        try {
          await this.execute('loop', this.nextStatement());
        } catch (err) {
          process.stdout.write(`app traffic: ${errorText(err)}\n`);
        }
        // Exponential gaps: a Poisson stream of statements at the chosen rate.
        const gap = -Math.log(1 - this.rng.next()) * (1000 / this.options.opsPerSecond);
        await sleep(Math.min(gap, 2_000));
      }
    })();
  }

  /** Stops after the statement in flight, whose outcome is learnt first. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    await this.running;
    this.running = undefined;
    this.drop('loop');
    this.drop('bulk');
  }
}
