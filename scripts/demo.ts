/**
 * `npm run demo`: the whole product on this machine in one command. Brings up the local stack,
 * creates a realistic audit table in the local PostgreSQL, starts a worker, archives with live
 * progress, and says where to look. Running it again is harmless: it tops the table up with a
 * fresh batch of old rows and archives those.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { quoteIdent } from '../src/postgres/identifiers';
import { createS3Client } from '../src/store/client';
import { webUiUrl } from '../src/temporal-client/connection';

const PROJECT = `${__dirname}/..`;
const CONFIG = `${PROJECT}/examples/audit-archiver.yaml`;
const ENTRY = [`--require`, 'tsx/cjs', `${PROJECT}/src/app/cli/main.ts`];
const SEED_ROWS = 240_000;
const SEED_DAYS = 120;
const TOP_UP_ROWS = 20_000;

// The local stack's MinIO answers to MinIO's dev credentials (temporal/lib.sh).
process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const step = (text: string) => process.stdout.write(`\n==> ${text}\n`);

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: PROJECT });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status})`);
}

async function prepareTable(): Promise<void> {
  const config = loadConfig(CONFIG, process.env);
  const db = config.databases[0]!;
  const table = db.tables[0]!;
  const admin = new pg.Client({
    host: db.host,
    port: db.port,
    user: db.user,
    database: 'postgres',
  });
  await admin.connect();
  const exists = await admin.query('select 1 from pg_database where datname = $1', [db.name]);
  if (exists.rowCount === 0) await admin.query(`create database ${quoteIdent(db.name)}`);
  await admin.end();

  const client = new pg.Client({ host: db.host, port: db.port, user: db.user, database: db.name });
  await client.connect();
  try {
    const name = `${quoteIdent(table.schema ?? 'public')}.${quoteIdent(table.name)}`;
    await client.query(`create table if not exists ${name} (
        id bigint generated always as identity primary key,
        created_at timestamptz not null,
        actor text,
        action text,
        payload jsonb
      )`);
    await client.query(`create index if not exists audit_log_created_at on ${name} (created_at)`);
    const retention = table.retention_days ?? config.defaults.retention_days;
    const { rows } = await client.query<{ total: string; eligible: string }>(
      `select count(*)::text as total,
              count(*) filter (where created_at < now() - $1::int * interval '1 day')::text as eligible
         from ${name}`,
      [retention],
    );
    const { total, eligible } = rows[0]!;
    let insert = 0;
    let spanDays = SEED_DAYS;
    if (Number(total) === 0) insert = SEED_ROWS;
    else if (Number(eligible) < 1_000) {
      insert = TOP_UP_ROWS;
      spanDays = retention + 10;
    }
    if (insert > 0) {
      process.stdout.write(
        `inserting ${insert.toLocaleString('en-US')} audit rows over ${spanDays} days into ${db.name} ${table.schema ?? 'public'}.${table.name}\n`,
      );
      await client.query(
        `insert into ${name} (created_at, actor, action, payload)
         select now() - random() * $2::int * interval '1 day',
                'user' || (g % 500),
                (array['login', 'update', 'delete', 'export', 'grant'])[1 + g % 5],
                jsonb_build_object(
                  'entity', (array['invoice', 'customer', 'order', 'report'])[1 + g % 4],
                  'entity_id', g % 100000,
                  'client_ip', '10.' || (g % 250) || '.' || (g % 200) || '.' || (g % 100),
                  'request_id', md5(g::text),
                  'changes', jsonb_build_object('status', (array['open', 'paid', 'void'])[1 + g % 3]))
           from generate_series(1, $1::int) as g`,
        [insert, spanDays],
      );
      await client.query(`analyze ${name}`);
    }
    const after = await client.query<{ total: string; eligible: string }>(
      `select count(*)::text as total,
              count(*) filter (where created_at < now() - $1::int * interval '1 day')::text as eligible
         from ${name}`,
      [retention],
    );
    const counts = after.rows[0]!;
    process.stdout.write(
      `${db.name} ${table.schema ?? 'public'}.${table.name}: ${Number(counts.total).toLocaleString('en-US')} rows, ${Number(counts.eligible).toLocaleString('en-US')} older than ${retention} days\n`,
    );
  } finally {
    await client.end();
  }
}

async function startWorker(): Promise<ChildProcess> {
  const worker = spawn(
    process.execPath,
    [...ENTRY, 'worker', '--config', CONFIG, '--log-level', 'warn'],
    {
      cwd: PROJECT,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: process.env,
    },
  );
  const config = loadConfig(CONFIG, process.env);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (worker.exitCode !== null) throw new Error(`the worker exited with code ${worker.exitCode}`);
    const healthy = await fetch(`http://${config.worker.http_address}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (healthy) return worker;
    if (Date.now() > deadline) throw new Error('the worker did not become healthy within 60 s');
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function describeBucket(): Promise<void> {
  const config = loadConfig(CONFIG, process.env);
  const s3 = createS3Client(config.s3);
  const table = config.databases[0]!.tables[0]!;
  const prefix = `${config.s3.prefix}${config.databases[0]!.name}/${table.schema ?? 'public'}.${table.name}/`;
  const listed = await s3.send(
    new ListObjectsV2Command({ Bucket: config.s3.bucket, Prefix: prefix, MaxKeys: 1000 }),
  );
  s3.destroy();
  const keys = (listed.Contents ?? []).map((o) => o.Key!);
  const data = keys.filter((k) => k.endsWith('.jsonl.gz'));
  const ui = webUiUrl(config.temporal);
  process.stdout.write(`
What happened
  Rows older than the retention period were exported one UTC day at a time, uploaded as gzip
  JSON Lines, read back and checked against their SHA-256 manifests, and only then deleted,
  batch by batch, each delete checked against its deletion manifest.

Where to look
  Temporal Web UI  ${ui ?? '(see temporal.address)'}/namespaces/${config.temporal.namespace}/workflows
                   (search: ArchiveTable = '${table.schema ?? 'public'}.${table.name}')
  MinIO console    http://127.0.0.1:9001 (minioadmin / minioadmin)
  Bucket layout    s3://${config.s3.bucket}/${prefix}
${data
  .slice(0, 3)
  .map(
    (k) =>
      `                     ${k.slice(prefix.length)} (+ .manifest.json, .deletion.json, .deleted.json)`,
  )
  .join('\n')}
                     ... ${data.length >= 1000 ? 'many' : data.length} data objects; _schema/ and _state/watermark.json beside them

Reading an object back by hand
  AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin aws --endpoint-url http://127.0.0.1:9000 \\
    s3 cp s3://${config.s3.bucket}/${data[0] ?? prefix + '...'} - | gunzip | head -3
  Each line is one row: a JSON object of column name -> PostgreSQL text form.

Next (with a worker running: npx audit-archiver worker --config examples/audit-archiver.yaml)
  npx audit-archiver validate --config examples/audit-archiver.yaml
  npx audit-archiver restore --config examples/audit-archiver.yaml -d ${config.databases[0]!.name} -t ${table.name}
  npx audit-archiver audit verify --config examples/audit-archiver.yaml
`);
}

async function main(): Promise<void> {
  step(
    'Starting the local stack (first time: builds Temporal, MinIO and Mailpit from Go modules, about 15 minutes)',
  );
  run('bash', ['temporal/stack.sh', 'up']);
  step('Preparing the demo audit table');
  await prepareTable();
  step('Starting a worker');
  const worker = await startWorker();
  let code: number;
  try {
    step('Archiving (audit-archiver archive --config examples/audit-archiver.yaml)');
    const archive = spawnSync(process.execPath, [...ENTRY, 'archive', '--config', CONFIG], {
      cwd: PROJECT,
      stdio: 'inherit',
      env: process.env,
    });
    code = archive.status ?? 1;
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
  if (code !== 0) throw new Error(`the archive run exited with code ${code}`);
  await describeBucket();
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
