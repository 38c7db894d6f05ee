import type { DbColumnRow } from '../postgres/sql/table-columns';
import { qualifiedName, quoteIdent } from '../postgres/identifiers';
import { quoteLiteral } from '../postgres/literals';
import { CopyLineReader } from './copy-lines';

/** What the archiver needs to know of a table to write its SQL. */
export interface TableShapeForSql {
  schema: string;
  name: string;
  timestampColumn: string;
  primaryKey: string;
  columns: readonly Pick<DbColumnRow, 'name' | 'type' | 'base_type'>[];
}

/**
 * The oldest instant the archive takes. The day layout (year=YYYY) and the day search have no
 * place for `-infinity` or years BC: such rows stay in the table, counted in each run's result
 * (rowsSkipped), instead of stopping the table.
 */
export const ARCHIVABLE_FROM = '0001-01-01T00:00:00Z';

/**
 * The SQL of one archived table, with every identifier quoted once, here. Values are bind
 * parameters except in COPY, where they are literals from quoteLiteral().
 *
 * The timestamp column may be timestamptz, timestamp (read as UTC) or date. Instants are
 * passed as ISO-8601 UTC strings and cast to the column's own type, so comparisons use the
 * column's index.
 */
export class TableSql {
  readonly table: string;
  readonly ts: string;
  readonly pk: string;
  readonly pkType: string;
  /** The timestamp column's type as format_type() prints it. */
  readonly tsType: string;
  private readonly tsBase: string;

  constructor(private readonly shape: TableShapeForSql) {
    const find = (name: string) => {
      const column = shape.columns.find((c) => c.name === name);
      if (!column) throw new Error(`column "${name}" is not in the table's schema`);
      return column;
    };
    this.table = qualifiedName(shape.schema, shape.name);
    this.ts = quoteIdent(shape.timestampColumn);
    this.pk = quoteIdent(shape.primaryKey);
    // format_type() output is already a valid, quoted type name.
    this.pkType = find(shape.primaryKey).type;
    this.tsType = find(shape.timestampColumn).type;
    this.tsBase = find(shape.timestampColumn).base_type;
  }

  /** An ISO-8601 UTC instant (a literal or a parameter) as a value of the timestamp column's type. */
  instant(sql: string): string {
    switch (this.tsBase) {
      case 'timestamptz':
        return `${sql}::timestamptz`;
      case 'timestamp':
        return `(${sql}::timestamptz at time zone 'UTC')`;
      default:
        return `(${sql}::timestamptz at time zone 'UTC')::date`;
    }
  }

  /**
   * The row as one JSON object of PostgreSQL text forms, keyed by column name: the archived
   * line itself, and the input of each row's fingerprint. json_object() takes any number of
   * columns (json_build_object stops at 50).
   */
  rowJson(alias: string): string {
    const names = this.shape.columns.map((c) => quoteLiteral(c.name)).join(', ');
    const values = this.shape.columns.map((c) => `${alias}.${quoteIdent(c.name)}::text`).join(', ');
    return `json_object(array[${names}]::text[], array[${values}]::text[])::text`;
  }

  /**
   * Rows of `alias` the archive may take: older than the cutoff (`cutoff`, a parameter or
   * literal), not before ARCHIVABLE_FROM, and with a key (a unique key may allow NULL; such a
   * row cannot be named in a deletion manifest, so it stays).
   */
  private eligible(alias: string, cutoff: string): string {
    return `${alias}.${this.ts} < ${this.instant(cutoff)}
            and ${alias}.${this.ts} >= ${this.instant(quoteLiteral(ARCHIVABLE_FROM))}
            and ${alias}.${this.pk} is not null`;
  }

  /** The UTC day of the oldest eligible row ($1 cutoff) on or after `from` ($2, optional), as YYYY-MM-DD. */
  nextDay(): string {
    return `select min(t.${this.ts})::date::text as day
              from ${this.table} as t
             where ${this.eligible('t', '$1')}
               and ($2::text is null or t.${this.ts} >= ${this.instant('$2')})`;
  }

  /** Whether an eligible row ($3 cutoff) is in the day [$1, $2) after the key $4 (null: any key). */
  rowsInDay(): string {
    return `select exists (
              select 1 from ${this.table} as t
               where ${this.eligible('t', '$3')}
                 and t.${this.ts} >= ${this.instant('$1')}
                 and t.${this.ts} < ${this.instant('$2')}
                 and ($4::text is null or t.${this.pk} > $4::text::${this.pkType})
            ) as found`;
  }

  /** How many eligible rows ($2 cutoff) are dated at or after $1 and, unless $3 is null, before $3. */
  eligibleRowsBetween(): string {
    return `select count(*)::int as rows from ${this.table} as t
             where ${this.eligible('t', '$2')}
               and t.${this.ts} >= ${this.instant('$1')}
               and ($3::text is null or t.${this.ts} < ${this.instant('$3')})`;
  }

  /**
   * Rows older than the cutoff ($1) that the archive leaves where they are: with a NULL key,
   * or dated before ARCHIVABLE_FROM (-infinity, BC). Both counts come from index probes.
   */
  skippedRows(): string {
    const floor = this.instant(quoteLiteral(ARCHIVABLE_FROM));
    return `select (select count(*) from ${this.table} as t
                     where t.${this.pk} is null and t.${this.ts} < ${this.instant('$1')})::int as null_key,
                   (select count(*) from ${this.table} as t
                     where t.${this.ts} < ${floor})::int as out_of_range`;
  }

  /**
   * The oldest row the archive may take, whatever its age, in unix seconds (sessions run in
   * UTC, so a timestamp or date column reads as UTC): the backlog metrics' (src/archive/backlog.ts).
   */
  oldestRowEpoch(): string {
    return `select extract(epoch from min(t.${this.ts}))::float8 as oldest_epoch
              from ${this.table} as t
             where t.${this.ts} >= ${this.instant(quoteLiteral(ARCHIVABLE_FROM))}
               and t.${this.pk} is not null`;
  }

  /** How many eligible rows are older than the cutoff ($1), and the oldest row's time (oldestRowEpoch). */
  backlog(): string {
    return `select (select count(*) from ${this.table} as t
                     where ${this.eligible('t', '$1')})::bigint::text as rows_past_retention,
                   (${this.oldestRowEpoch()}) as oldest_epoch`;
  }

  /** The epoch microseconds of a timestamp-column value given as text ($1), as the export computes them. */
  micros(): string {
    return `select (extract(epoch from $1::text::${this.tsType}) * 1000000)::bigint::text as micros`;
  }

  /**
   * COPY of one batch: rows of one UTC day, older than the cutoff, after the key cursor, in
   * key order, in COPY's text format. Each line holds the timestamp as epoch microseconds,
   * the row version (ctid and xmin, which the delete matches: deleteVersions), then every
   * column's text form (`::text`, as rowJson takes it), in column order: the worker builds
   * the archived line from them (copyLineReader), so PostgreSQL does no JSON work for an
   * export. The batch is chosen in a subquery and only its rows are turned into text: in one
   * query, PostgreSQL rendered every remaining row of the day before its sort and limit (a
   * day of 33,000 rows cost 2.2 renderings per row archived).
   */
  exportCopy(batch: {
    cutoff: string;
    dayStart: string;
    dayEnd: string;
    afterKey: string | null;
    limit: number;
  }): string {
    const after =
      batch.afterKey === null
        ? ''
        : `and t.${this.pk} > ${quoteLiteral(batch.afterKey)}::${this.pkType}`;
    // The subquery's columns are renamed by position (v0 the ctid, v1 the xmin, then the
    // table's columns in order), so no column name of the table can clash with them.
    const names = this.shape.columns.map((c) => c.name);
    const v = (column: string) => `b.v${names.indexOf(column) + 2}`;
    const aliases = ['v0', 'v1', ...names.map((_, i) => `v${i + 2}`)].join(', ');
    const selected = names.map((name) => `t.${quoteIdent(name)}`).join(', ');
    const texts = names.map((name) => `${v(name)}::text`).join(', ');
    return `copy (
      select (extract(epoch from ${v(this.shape.timestampColumn)}) * 1000000)::bigint, b.v0, b.v1, ${texts}
        from (
          select t.ctid, t.xmin, ${selected}
            from ${this.table} as t
           where ${this.eligible('t', quoteLiteral(batch.cutoff))}
             and t.${this.ts} >= ${this.instant(quoteLiteral(batch.dayStart))}
             and t.${this.ts} < ${this.instant(quoteLiteral(batch.dayEnd))}
             ${after}
           order by t.${this.pk}
           limit ${Math.trunc(batch.limit)}
        ) as b(${aliases})
       order by ${v(this.shape.primaryKey)}
    ) to stdout`;
  }

  /** Reads exportCopy's lines into archived lines, identical to rowJson's. */
  copyLineReader(): CopyLineReader {
    const names = this.shape.columns.map((c) => c.name);
    return new CopyLineReader(
      names,
      names.indexOf(this.shape.primaryKey),
      names.indexOf(this.shape.timestampColumn),
    );
  }

  /**
   * Deletes the listed rows ($1 keys as text) that are still the row version the export
   * read ($2 ctids, $3 xmins as text), and returns the key of each row it deleted, with
   * `differs` true where a spot-checked row ($4: the archived line's fingerprint, or null
   * for a row not checked) no longer matches its archived line although its version does.
   *
   * A version is the pair PostgreSQL gives each tuple it writes: an UPDATE writes a new tuple
   * (new ctid, new xmin), so a row that changed since the export no longer matches and stays
   * (deleteListed then compares its content). Only a table rewrite (VACUUM FULL, CLUSTER)
   * moves a version to another ctid; those rows, too, fall through to deleteListed. Matching
   * the key as well means a ctid reused by another row never deletes it.
   */
  deleteVersions(): string {
    return `with listed as (
              select k, c, x, f
                from unnest($1::text[], $2::text[]::tid[], $3::text[]::xid[], $4::text[]) as m(k, c, x, f)
            )
            delete from ${this.table} as t
             using listed
             where t.${this.pk} = any($1::text[]::${this.pkType}[])
               and t.${this.pk} = listed.k::${this.pkType}
               and t.ctid = listed.c
               and t.xmin = listed.x
            returning t.${this.pk}::text as key,
                      case when listed.f is null then false
                           else md5(${this.rowJson('t')}) <> listed.f end as differs`;
  }

  /**
   * Deletes the listed rows ($1 keys as text, $2 fingerprints) whose current content still
   * has the archived fingerprint, and returns the key of each row it deleted. The `= any`
   * bounds the table's side to the listed keys: without it, an EXPLAIN of a batch of 8,000
   * keys chose to merge-join along the key index from its start, reading every row (live and
   * dead) before the batch's own.
   */
  deleteListed(): string {
    return `with listed as (
              select k, f from unnest($1::text[], $2::text[]) as m(k, f)
            )
            delete from ${this.table} as t
             using listed
             where t.${this.pk} = any($1::text[]::${this.pkType}[])
               and t.${this.pk} = listed.k::${this.pkType}
               and md5(${this.rowJson('t')}) = listed.f
            returning t.${this.pk}::text as key`;
  }

  /** The key and fingerprint (md5 of its archived line) of each listed key's row ($1) in the table. */
  fingerprintsOf(): string {
    return `select t.${this.pk}::text as key, md5(${this.rowJson('t')}) as fingerprint
              from ${this.table} as t
             where t.${this.pk} = any($1::text[]::${this.pkType}[])`;
  }

  /** How many of the listed keys ($1) are still in the table. */
  countListed(): string {
    return `select count(*)::int as present
              from ${this.table} as t
             where t.${this.pk} = any($1::text[]::${this.pkType}[])`;
  }

  /** Rows older than the cutoff ($1) per UTC day, for dry runs. */
  eligibleByDay(): string {
    return `select t.${this.ts}::date::text as day, count(*)::bigint::text as rows,
                   min(t.${this.ts})::text as first, max(t.${this.ts})::text as last
              from ${this.table} as t
             where ${this.eligible('t', '$1')}
             group by 1
             order by 1`;
  }

  /** Average text size of a sample of eligible rows ($1 cutoff, $2 sample size), for estimates. */
  sampleRows(): string {
    return `select ${this.rowJson('t')} as line
              from ${this.table} as t
             where ${this.eligible('t', '$1')}
             limit $2::int`;
  }
}
