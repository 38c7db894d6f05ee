import { qualifiedName, quoteIdent } from '../postgres/identifiers';
import { quoteLiteral } from '../postgres/literals';
import type { ColumnPlan, ConflictStrategy } from '../shared/restore-types';

/** The staging table one object's lines are copied into, inside the restore transaction. */
export const STAGING = 'audit_archiver_restore_lines';

export interface RestoreSqlInput {
  schema: string;
  table: string;
  keyColumn: string;
  keyType: string;
  plan: ColumnPlan;
  /** JSON text of each target row as the archive would hold it, to recognise identical rows. */
  rowJson: (alias: string) => string;
  /** True when the target has the archived schema, so identical rows can be recognised. */
  sameSchema: boolean;
}

/**
 * SQL of a restore, with identifiers quoted here. The archived lines go into a temporary
 * table by COPY (CSV with 0x01 quote and 0x02 delimiter: a line holds neither, nor a newline,
 * so each line arrives verbatim), and PostgreSQL itself parses every value from its text form
 * into the target column's type: nothing passes through JavaScript values.
 */
export class RestoreSql {
  private readonly target: string;
  private readonly key: string;

  constructor(private readonly input: RestoreSqlInput) {
    this.target = qualifiedName(input.schema, input.table);
    this.key = quoteIdent(input.keyColumn);
  }

  createStaging(): string {
    return `create temporary table ${STAGING} (line text not null) on commit drop`;
  }

  copyIn(): string {
    return `copy ${STAGING} (line) from stdin with (format csv, delimiter e'\\x02', quote e'\\x01')`;
  }

  private incoming(): string {
    return `select line, (line::json ->> ${quoteLiteral(this.input.keyColumn)})::${this.input.keyType} as k from ${STAGING}`;
  }

  /** Rows whose key already exists: how many are identical to the archived line, how many differ. */
  existing(): string {
    const identical = this.input.sameSchema
      ? `md5(${this.input.rowJson('t')}) = md5(i.line)`
      : 'false';
    return `select count(*) filter (where ${identical})::int as identical,
                   count(*) filter (where not (${identical}))::int as conflicting,
                   (select count(*)::int from ${STAGING}) as staged
              from (${this.incoming()}) as i
              join ${this.target} as t on t.${this.key} = i.k`;
  }

  /**
   * Inserts the staged rows. `skip` and `fail` insert only keys not in the table (under `fail`
   * the caller has made sure there is no conflicting one); `overwrite` replaces rows whose
   * content differs and leaves identical ones alone. Returns one row per written row, with
   * `inserted` false for an overwrite.
   */
  write(strategy: ConflictStrategy): string {
    const columns = this.input.plan.columns;
    const names = columns.map((c) => quoteIdent(c.name)).join(', ');
    const values = columns
      .map((c) => `(i.j ->> ${quoteLiteral(c.name)})::${c.targetType}`)
      .join(', ');
    const source = `select line::json as j, (line::json ->> ${quoteLiteral(this.input.keyColumn)})::${this.input.keyType} as k, line from ${STAGING}`;
    const insert = `insert into ${this.target} as t (${names}) overriding system value
      select ${values} from (${source}) as i`;
    if (strategy !== 'overwrite') {
      return `${insert}
       where not exists (select 1 from ${this.target} as e where e.${this.key} = i.k)
      returning true as inserted`;
    }
    const updates = columns
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
