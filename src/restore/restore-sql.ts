import { qualifiedName, quoteIdent } from '../postgres/identifiers';
import type { ColumnPlan, ConflictStrategy } from '../shared/restore-types';

/** The staging table one object's rows are copied into, inside the restore transaction. */
export const STAGING = 'audit_archiver_restore';
/** Staging column holding md5 of each archived line, to recognise rows already restored. */
const LINE_MD5 = 'audit_archiver_line_md5';

export interface RestoreSqlInput {
  schema: string;
  table: string;
  keyColumn: string;
  plan: ColumnPlan;
  /** JSON text of a target row as the archive would hold it, to recognise identical rows. */
  rowJson: (alias: string) => string;
  /** True when the target has the archived schema, so identical rows can be recognised. */
  sameSchema: boolean;
}

/**
 * One COPY text-format line for the staging table: the archived text forms, escaped as COPY
 * expects, in the plan's column order, then the line's md5. PostgreSQL itself parses every
 * value into the target column's type; nothing passes through JavaScript numbers or dates.
 */
export function copyLine(
  row: Record<string, unknown>,
  columns: readonly string[],
  lineMd5: string,
): string {
  let out = '';
  for (const column of columns) {
    const value = row[column];
    // Archived values are strings (text forms) or null; anything else is not an archive line.
    out +=
      value === null || value === undefined
        ? '\\N'
        : escapeCopyText(typeof value === 'string' ? value : JSON.stringify(value));
    out += '\t';
  }
  return `${out}${lineMd5}\n`;
}

/** COPY's text format: backslash, tab, newline and carriage return are escaped. */
export function escapeCopyText(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) =>
        c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
      )
    : value;
}

/** SQL of a restore, with identifiers quoted here. */
export class RestoreSql {
  private readonly target: string;
  private readonly key: string;
  private readonly names: string;

  constructor(private readonly input: RestoreSqlInput) {
    this.target = qualifiedName(input.schema, input.table);
    this.key = quoteIdent(input.keyColumn);
    this.names = input.plan.columns.map((c) => quoteIdent(c.name)).join(', ');
  }

  /** The restored columns, in the order copyLine writes them. */
  get columns(): string[] {
    return this.input.plan.columns.map((c) => c.name);
  }

  /** A staging table with the target's types for the restored columns, dropped at commit. */
  createStaging(): string {
    const columns = this.input.plan.columns.map((c) => `${quoteIdent(c.name)} ${c.targetType}`);
    return `create temporary table ${STAGING} (${[...columns, `${LINE_MD5} text not null`].join(', ')}) on commit drop`;
  }

  copyIn(): string {
    return `copy ${STAGING} (${this.names}, ${LINE_MD5}) from stdin`;
  }

  /** Staged rows whose key already exists: how many are identical to the archived line, how many differ. */
  existing(): string {
    const identical = this.input.sameSchema
      ? `md5(${this.input.rowJson('t')}) = s.${LINE_MD5}`
      : 'false';
    return `select count(*) filter (where ${identical})::int as identical,
                   count(*) filter (where not (${identical}))::int as conflicting,
                   (select count(*)::int from ${STAGING}) as staged
              from ${STAGING} as s
              join ${this.target} as t on t.${this.key} = s.${this.key}`;
  }

  /**
   * Writes the staged rows. `skip` and `fail` insert only keys not in the table (under `fail`
   * the caller has made sure there is no conflicting one); `overwrite` replaces rows whose
   * content differs and leaves identical ones alone. Returns one row per written row, with
   * `inserted` false for an overwrite.
   */
  write(strategy: ConflictStrategy): string {
    const select = this.input.plan.columns.map((c) => `s.${quoteIdent(c.name)}`).join(', ');
    const insert = `insert into ${this.target} as t (${this.names}) overriding system value
      select ${select} from ${STAGING} as s`;
    if (strategy !== 'overwrite') {
      return `${insert}
       where not exists (select 1 from ${this.target} as e where e.${this.key} = s.${this.key})
      returning true as inserted`;
    }
    const updates = this.input.plan.columns
      .filter((c) => c.name !== this.input.keyColumn)
      .map((c) => `${quoteIdent(c.name)} = excluded.${quoteIdent(c.name)}`)
      .join(', ');
    const unchanged = this.input.sameSchema
      ? `where md5(${this.input.rowJson('t')}) <> md5(${this.input.rowJson('excluded')})`
      : '';
    return `${insert}
      on conflict (${this.key}) do update set ${updates} ${unchanged}
      returning (xmax = 0) as inserted`;
  }
}
