-- The PostgreSQL role the audit-archiver worker logs in as, with the least it needs
-- (docs/security.md explains each grant). Run it as a superuser (granting the statistics
-- role and the WAL status function needs one), connected to the database whose tables are
-- archived, once per database; it can be run again (it only adds what is missing):
--
--   psql -v ON_ERROR_STOP=1 -d audit_demo \
--        -v role=audit_archiver \
--        -v tables=public.audit_log,public.login_events \
--        -f deploy/postgres/least-privilege.sql
--
-- then give the role a password without it passing through the command line or the shell
-- history: `\password audit_archiver` in psql (or your secret manager's rotation).
--
-- Variables:
--   role     name of the role (created if missing, LOGIN, nothing else).
--   tables   comma-separated schema.table names of the archived tables, spelt as the
--            catalog spells them (the config's schema and name; no quotes, no spaces).
--   restore  optional: 'overwrite' also grants UPDATE, for `restore --conflict-strategy overwrite`.
--
-- The role owns nothing and may not drop, truncate or alter any table, create objects in
-- any schema, or read or change any table but those listed.
\set ON_ERROR_STOP on

\if :{?role}
\else
  do $$ begin raise exception 'set the role name: psql -v role=audit_archiver ...'; end $$;
\endif
\if :{?tables}
\else
  do $$ begin raise exception 'set the archived tables: psql -v tables=public.audit_log,...'; end $$;
\endif
\if :{?restore}
\else
  \set restore 'insert'
\endif

begin;

-- LOGIN only: no superuser, no CREATEDB, no CREATEROLE, no replication, no bypass of
-- row-level security, and no inherited rights but those granted below.
select format('create role %I login nosuperuser nocreatedb nocreaterole noreplication nobypassrls', :'role')
 where not exists (select 1 from pg_catalog.pg_roles where rolname = :'role')
\gexec
alter role :"role" nosuperuser nocreatedb nocreaterole noreplication nobypassrls;

-- Connect to this database, and TEMPORARY: a restore copies each object's rows into a
-- temporary staging table (dropped at commit) before it writes them to the target.
select format('grant connect, temporary on database %I to %I', current_database(), :'role')
\gexec

-- USAGE (look up names in the schema; not CREATE) on each schema of the listed tables.
select distinct format('grant usage on schema %I to %I', split_part(t, '.', 1), :'role')
  from unnest(string_to_array(:'tables', ',')) as t
\gexec

-- SELECT to export and verify, DELETE to remove rows once their archive is verified,
-- INSERT for restore into the same table (identity columns are written with OVERRIDING
-- SYSTEM VALUE, which needs no sequence rights); UPDATE only for restore --conflict-strategy
-- overwrite. Nothing else: no TRUNCATE, REFERENCES, TRIGGER, no ownership.
select format('grant select, delete, insert%s on table %I.%I to %I',
              case when :'restore' = 'overwrite' then ', update' else '' end,
              split_part(t, '.', 1), substr(t, length(split_part(t, '.', 1)) + 2), :'role')
  from unnest(string_to_array(:'tables', ',')) as t
\gexec

-- Throttling reads the database's load (docs/performance-tuning.md): other sessions'
-- state and lock waits (pg_stat_activity), autovacuum progress (pg_stat_progress_vacuum)
-- and replica lag (pg_stat_replication) are hidden from a plain role for sessions not its
-- own; pg_read_all_stats shows them, read-only. The WAL archive backlog is counted with
-- pg_ls_archive_statusdir(), which only pg_monitor (or this grant) may call; without it
-- the archiver falls back to pg_stat_archiver's failure state.
select format('grant pg_read_all_stats to %I', :'role')
\gexec
select format('grant execute on function pg_catalog.pg_ls_archive_statusdir() to %I', :'role')
\gexec

commit;
