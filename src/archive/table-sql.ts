import type { DbColumnRow } from '../postgres/sql/table-columns';
import { qualifiedName, quoteIdent } from '../postgres/identifiers';
import { quoteLiteral } from '../postgres/literals';

/** What the archiver needs to know of a table to write its SQL. */
export interface TableShapeForSql {
  schema: string;
  name: string;
  timestampColumn: string;
  primaryKey: string;
  columns: readonly Pick<DbColumnRow, 'name' | 'type' | 'base_type'>[];
}

/** Separates the fields of one exported line; never appears raw in any field (see exportSql). */
export const FIELD_SEPARATOR = 0x02;

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

  /** The UTC day of the oldest eligible row on or after `from` ($2, optional), as YYYY-MM-DD. */
  nextDay(): string {
    return `select min(${this.ts})::date::text as day
              from ${this.table}
             where ${this.ts} < ${this.instant('$1')}
               and ($2::text is null or ${this.ts} >= ${this.instant('$2')})`;
  }

  /**
   * COPY of one batch: rows of one UTC day, older than the cutoff, after the key cursor, in
   * key order. Each line holds four fields separated by 0x02: the key (JSON string), the
   * timestamp as epoch microseconds, the timestamp's text (JSON string) and the row's JSON.
   * CSV format with 0x01 as quote and 0x02 as delimiter writes them unescaped: JSON escapes
   * every control character, so neither byte (nor a newline) occurs inside a field.
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
    return `copy (
      select to_json(t.${this.pk}::text)::text,
             (extract(epoch from t.${this.ts}) * 1000000)::bigint::text,
             to_json(t.${this.ts}::text)::text,
             ${this.rowJson('t')}
        from ${this.table} as t
       where t.${this.ts} >= ${this.instant(quoteLiteral(batch.dayStart))}
         and t.${this.ts} < ${this.instant(quoteLiteral(batch.dayEnd))}
         and t.${this.ts} < ${this.instant(quoteLiteral(batch.cutoff))}
         ${after}
       order by t.${this.pk}
       limit ${Math.trunc(batch.limit)}
    ) to stdout with (format csv, delimiter e'\\x02', quote e'\\x01')`;
  }

  /**
   * Deletes the listed rows ($1 keys as text, $2 fingerprints) whose current content still
   * has the archived fingerprint; returns how many it deleted.
   */
  deleteListed(): string {
    return `with listed as (
              select k, f from unnest($1::text[], $2::text[]) as m(k, f)
            ), deleted as (
              delete from ${this.table} as t
               using listed
               where t.${this.pk} = listed.k::${this.pkType}
                 and md5(${this.rowJson('t')}) = listed.f
              returning 1
            )
            select count(*)::int as deleted from deleted`;
  }

  /** How many of the listed keys ($1) are still in the table. */
  countListed(): string {
    return `select count(*)::int as present
              from ${this.table} as t
             where t.${this.pk} = any($1::text[]::${this.pkType}[])`;
  }

  /** Rows older than the cutoff ($1) per UTC day, for dry runs. */
  eligibleByDay(): string {
    return `select ${this.ts}::date::text as day, count(*)::bigint::text as rows,
                   min(${this.ts})::text as first, max(${this.ts})::text as last
              from ${this.table}
             where ${this.ts} < ${this.instant('$1')}
             group by 1
             order by 1`;
  }

  /** Average text size of a sample of eligible rows ($1 cutoff, $2 sample size), for estimates. */
  sampleRows(): string {
    return `select ${this.rowJson('t')} as line
              from ${this.table} as t
             where t.${this.ts} < ${this.instant('$1')}
             limit $2::int`;
  }
}
