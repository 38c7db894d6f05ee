import type { ClientBase } from 'pg';

export interface DbColumnRow {
  name: string;
  /** As PostgreSQL prints it, with modifiers: `numeric(12,2)`, `timestamp with time zone`. */
  type: string;
  /** The base type's name after resolving domains: `timestamptz`, `date`, `int8`. */
  base_type: string;
  not_null: boolean;
  /** PostgreSQL computes the value (GENERATED ALWAYS AS ... STORED); it cannot be written. */
  generated: boolean;
}

/** The table's live columns in their physical order. */
export async function tableColumns(client: ClientBase, tableOid: string): Promise<DbColumnRow[]> {
  const { rows } = await client.query<DbColumnRow>(
    `select a.attname::text as name,
            format_type(a.atttypid, a.atttypmod) as type,
            coalesce(base.typname, t.typname)::text as base_type,
            a.attnotnull as not_null,
            a.attgenerated <> '' as generated
       from pg_catalog.pg_attribute a
       join pg_catalog.pg_type t on t.oid = a.atttypid
       left join pg_catalog.pg_type base on t.typtype = 'd' and base.oid = t.typbasetype
      where a.attrelid = $1::oid
        and a.attnum > 0
        and not a.attisdropped
      order by a.attnum`,
    [tableOid],
  );
  return rows;
}
