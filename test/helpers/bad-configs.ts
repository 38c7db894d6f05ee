import { stringify } from 'yaml';
import { formatPath } from '../../src/config';
import type { ConfigInput } from '../../src/config/schema';

/**
 * A generator of bad configuration files, each made from a valid configuration by one
 * mutation: a wrong type, an out-of-range number, an unknown key (near-miss typos too), a
 * missing field or section, a duplicate database or table, an unsafe identifier, a bad
 * environment variable name, bucket name, URL or host:port, broken YAML or a root that is
 * not a mapping. Each case says where the one error line must point.
 */
export interface BadConfig {
  /** What is wrong, in words: the test's title for the case. */
  name: string;
  /** The file's content. */
  text: string;
  /**
   * What the error line says after `error: <file>`: `: <path>: ` for a schema problem,
   * `:<line>:<col>: invalid YAML` for a syntax error, `: expected a mapping` for a bad root.
   */
  at: string;
  /** What the message must also say, when more than the path is worth checking. */
  says?: RegExp;
}

type Segment = string | number;
type Path = readonly Segment[];
type Kind =
  | 'identifier'
  | 'text'
  | 'int'
  | 'number'
  | 'boolean'
  | 'enum'
  | 'url'
  | 'hostPort'
  | 'envName'
  | 'bucket';

interface Field {
  path: Path;
  kind: Kind;
  min?: number;
  max?: number;
  nullable?: boolean;
  required?: boolean;
}

const THROTTLE: [string, Omit<Field, 'path'>][] = [
  ['max_replica_lag_ms', { kind: 'int', min: 0, nullable: true }],
  ['max_wal_ready_files', { kind: 'int', min: 0, nullable: true }],
  ['pause_during_vacuum', { kind: 'boolean' }],
  ['max_lock_waiters', { kind: 'int', min: 0, nullable: true }],
  ['max_slowdown', { kind: 'number', min: 1, nullable: true }],
  ['max_rows_per_second', { kind: 'int', min: 1, nullable: true }],
  ['max_bytes_per_second', { kind: 'int', min: 1, nullable: true }],
  ['nice_ratio', { kind: 'number', min: 0, max: 1000, nullable: true }],
  ['pause_ms', { kind: 'int', min: 10, max: 3_600_000 }],
  ['max_pause_ms', { kind: 'int', min: 10, max: 3_600_000 }],
  ['target_batch_ms', { kind: 'int', min: 10, nullable: true }],
  ['min_batch_size', { kind: 'int', min: 1, max: 1_000_000 }],
];

const DB: Path = ['databases', 0];
const TABLE: Path = ['databases', 0, 'tables', 0];

/** Every field of the configuration with its kind and limits (src/config/schema.ts). */
const FIELDS: Field[] = [
  { path: ['temporal', 'address'], kind: 'text' },
  { path: ['temporal', 'namespace'], kind: 'text' },
  { path: ['temporal', 'task_queue'], kind: 'text' },
  { path: ['temporal', 'web_ui_url'], kind: 'url', nullable: true },
  { path: ['temporal', 'api_key_env'], kind: 'envName' },
  { path: ['temporal', 'tls', 'enabled'], kind: 'boolean' },
  { path: ['temporal', 'tls', 'server_name'], kind: 'text' },
  { path: ['temporal', 'tls', 'ca_file'], kind: 'text' },
  { path: ['temporal', 'tls', 'cert_file'], kind: 'text' },
  { path: ['temporal', 'tls', 'key_file'], kind: 'text' },
  { path: ['s3', 'endpoint'], kind: 'url', nullable: true },
  { path: ['s3', 'bucket'], kind: 'bucket', required: true },
  { path: ['s3', 'prefix'], kind: 'text' },
  { path: ['s3', 'region'], kind: 'text' },
  { path: ['s3', 'storage_class'], kind: 'enum' },
  { path: ['s3', 'force_path_style'], kind: 'boolean' },
  { path: ['defaults', 'retention_days'], kind: 'int', min: 1, max: 36500 },
  { path: ['defaults', 'batch_size'], kind: 'int', min: 1, max: 1_000_000 },
  { path: ['defaults', 'pause_between_batches_ms'], kind: 'int', min: 0, max: 3_600_000 },
  ...THROTTLE.map(([key, f]) => ({ path: ['defaults', 'throttle', key], ...f })),
  { path: [...DB, 'name'], kind: 'identifier', required: true },
  { path: [...DB, 'dbname'], kind: 'identifier' },
  { path: [...DB, 'host'], kind: 'text' },
  { path: [...DB, 'port'], kind: 'int', min: 1, max: 65535 },
  { path: [...DB, 'user'], kind: 'text' },
  { path: [...DB, 'password_env'], kind: 'envName' },
  { path: [...DB, 'password_file'], kind: 'text' },
  { path: [...DB, 'ssl'], kind: 'enum' },
  { path: [...DB, 'statement_timeout_ms'], kind: 'int', min: 100, max: 3_600_000 },
  { path: [...DB, 'lock_timeout_ms'], kind: 'int', min: 10, max: 600_000 },
  { path: [...DB, 'lock_lease_seconds'], kind: 'int', min: 5, max: 3600 },
  ...THROTTLE.map(([key, f]) => ({ path: [...DB, 'throttle', key], ...f })),
  { path: [...TABLE, 'name'], kind: 'identifier', required: true },
  { path: [...TABLE, 'schema'], kind: 'identifier' },
  { path: [...TABLE, 'timestamp_column'], kind: 'identifier', required: true },
  { path: [...TABLE, 'primary_key'], kind: 'identifier', required: true },
  { path: [...TABLE, 'retention_days'], kind: 'int', min: 1, max: 36500 },
  { path: [...TABLE, 'batch_size'], kind: 'int', min: 1, max: 1_000_000 },
  { path: [...TABLE, 'pause_between_batches_ms'], kind: 'int', min: 0, max: 3_600_000 },
  { path: ['archive', 'max_parallel_tables'], kind: 'int', min: 1, max: 200 },
  { path: ['archive', 'max_parallel_databases'], kind: 'int', min: 1, max: 100 },
  { path: ['archive', 'max_parallel_tables_per_database'], kind: 'int', min: 1, max: 50 },
  { path: ['worker', 'http_address'], kind: 'hostPort' },
  { path: ['worker', 'sdk_metrics_address'], kind: 'hostPort', nullable: true },
  { path: ['worker', 'max_concurrent_activities'], kind: 'int', min: 1, max: 1000 },
  { path: ['worker', 'shutdown_grace_seconds'], kind: 'number', min: 0, max: 3600 },
];

/** Every mapping of the configuration, with a near-miss typo of one of its keys. */
const MAPPINGS: { path: Path; typo: string; meant: string }[] = [
  { path: [], typo: 'databse', meant: 'databases' },
  { path: ['temporal'], typo: 'adress', meant: 'address' },
  { path: ['temporal', 'tls'], typo: 'enabeld', meant: 'enabled' },
  { path: ['s3'], typo: 'bukcet', meant: 'bucket' },
  { path: ['defaults'], typo: 'retention_day', meant: 'retention_days' },
  { path: ['defaults', 'throttle'], typo: 'nice_ration', meant: 'nice_ratio' },
  { path: DB, typo: 'hots', meant: 'host' },
  { path: [...DB, 'throttle'], typo: 'max_paus_ms', meant: 'max_pause_ms' },
  { path: TABLE, typo: 'timestamp_colum', meant: 'timestamp_column' },
  { path: ['archive'], typo: 'max_paralel_tables', meant: 'max_parallel_tables' },
  { path: ['worker'], typo: 'http_adress', meant: 'http_address' },
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Mapping = { [key: string]: Json };

function clone(config: ConfigInput): Mapping {
  return JSON.parse(JSON.stringify(config)) as Mapping;
}

/** The mapping or list at `path`, created as an empty mapping where missing. */
function parentOf(root: Mapping, path: Path): Mapping | Json[] {
  let node: Mapping | Json[] = root;
  for (const segment of path.slice(0, -1)) {
    const container = node as Record<string | number, Json>;
    let next = container[segment];
    if (next === undefined || next === null || typeof next !== 'object') {
      next = {};
      container[segment] = next;
    }
    node = next;
  }
  return node;
}

function setAt(root: Mapping, path: Path, value: Json): void {
  (parentOf(root, path) as Record<string | number, Json>)[path.at(-1)!] = value;
}

function deleteAt(root: Mapping, path: Path): void {
  const parent = parentOf(root, path) as Record<string | number, Json>;
  delete parent[path.at(-1)!];
}

/** `databases[0].port: `, or `: ` for the root. */
const where = (path: Path) => (path.length === 0 ? ': ' : `: ${formatPath(path)}: `);

const long = (bytes: number, char = 'a') =>
  char.repeat(Math.ceil(bytes / Buffer.byteLength(char))).slice(0, bytes);

/** Values of the wrong type for a field of the kind, each with what the message calls it. */
function wrongTypes(field: Field): [Json, string][] {
  const list: [Json, string][] = [[['a', 'b'], 'a list']];
  switch (field.kind) {
    case 'int':
    case 'number':
      return [['ten', '"ten"'], [true, 'true'], ...list];
    case 'boolean':
      return [['true', '"true"'], [1, '1'], ...list];
    default:
      return [[42, '42'], [{ a: 1 }, 'a mapping'], ...list];
  }
}

/** What the message says of a value of the wrong type. */
function wrongTypeSays(field: Field): RegExp {
  switch (field.kind) {
    case 'enum':
      return /must be one of /;
    default:
      return /expected /;
  }
}

/** Values of the right type that the field does not accept. */
function badValues(field: Field): [Json, string][] {
  switch (field.kind) {
    case 'int':
    case 'number': {
      const out: [Json, string][] = [];
      if (field.min !== undefined) out.push([field.min - 1, 'below its minimum']);
      if (field.max !== undefined) out.push([field.max + 1, 'above its maximum']);
      if (field.kind === 'int') out.push([(field.min ?? 0) + 1.5, 'not a whole number']);
      return out;
    }
    case 'identifier':
      return [
        ['', 'empty'],
        [long(64), '64 bytes long'],
        [long(64, 'é'), '64 bytes of 32 two-byte characters'],
        ['audit\u0000log', 'holding a NUL character'],
      ];
    case 'enum':
      return [
        ['STANDARD_IA_X', 'not one of its values'],
        ['', 'empty'],
      ];
    case 'url':
      return [
        ['127.0.0.1:9000', 'a host:port without a scheme'],
        ['not a url', 'not a URL'],
        ['ftp://127.0.0.1:9000', 'not http or https'],
      ];
    case 'hostPort':
      return [
        ['127.0.0.1', 'without a port'],
        ['127.0.0.1:', 'with an empty port'],
        [':9464', 'without a host'],
        ['127.0.0.1:123456', 'with a six-digit port'],
        ['local host:9464', 'with a space in the host'],
        ['127.0.0.1:http', 'with a named port'],
        ['http://127.0.0.1:9464', 'written as a URL'],
      ];
    case 'envName':
      return [
        ['1PASSWORD', 'starting with a digit'],
        ['DB-PASSWORD', 'with a hyphen'],
        ['DB PASSWORD', 'with a space'],
        ['$DB_PASSWORD', 'written as a shell expansion'],
        ['', 'empty'],
      ];
    case 'bucket':
      return [
        ['ab', 'two characters long'],
        ['Audit-Archive', 'in upper case'],
        ['audit_archive', 'with an underscore'],
        ['-audit-archive', 'starting with a hyphen'],
        ['audit-archive-', 'ending with a hyphen'],
        [long(64), '64 characters long'],
        ['audit archive', 'with a space'],
        ['', 'empty'],
      ];
    case 'text':
      // s3.prefix may be empty, and so may the optional TLS file names.
      return field.path[0] === 'temporal' && field.path[1] === 'tls'
        ? []
        : field.path.at(-1) === 'prefix'
          ? []
          : [['', 'empty']];
    case 'boolean':
      return [];
  }
}

/**
 * The bad configurations made from `base` (a valid configuration with one database of at
 * least one table). Every case changes one thing.
 */
export function badConfigs(base: ConfigInput): BadConfig[] {
  const cases: BadConfig[] = [];
  const mutate = (name: string, at: string, edit: (c: Mapping) => void, says?: RegExp) => {
    const config = clone(base);
    edit(config);
    cases.push({ name, text: stringify(config), at, ...(says && { says }) });
  };
  const db = base.databases[0]!;
  const table = db.tables[0]!;

  for (const field of FIELDS) {
    const name = formatPath(field.path);
    for (const [value, called] of wrongTypes(field)) {
      mutate(
        `${name} of the wrong type (${called})`,
        where(field.path),
        (c) => setAt(c, field.path, value),
        wrongTypeSays(field),
      );
    }
    if (!field.nullable) {
      mutate(`${name} null`, where(field.path), (c) => setAt(c, field.path, null), /got null/);
    }
    for (const [value, called] of badValues(field)) {
      mutate(`${name} ${called}`, where(field.path), (c) => setAt(c, field.path, value));
    }
    if (field.required) {
      const parent = field.path.slice(0, -1);
      mutate(
        `${name} missing`,
        where(parent),
        (c) => deleteAt(c, field.path),
        new RegExp(`${String(field.path.at(-1))} is required$`),
      );
    }
  }

  for (const [value, called] of [
    ['1.0', 'an older format'],
    ['3', 'an unknown format'],
    [2.5, 'a number that is no format'],
    [null, 'null'],
  ] as [Json, string][]) {
    mutate(`version ${called}`, ': version: ', (c) => (c.version = value));
  }

  for (const section of ['version', 's3', 'databases'] as const) {
    mutate(
      `the required section ${section} missing`,
      ': ',
      (c) => delete c[section],
      new RegExp(`^${section} is required$`),
    );
  }
  for (const section of ['temporal', 's3', 'defaults', 'archive', 'worker'] as const) {
    mutate(`section ${section} as a list`, `: ${section}: `, (c) => (c[section] = ['a']), /list/);
    mutate(`section ${section} as text`, `: ${section}: `, (c) => (c[section] = 'on'), /"on"/);
  }
  mutate('the temporal.tls section as true', ': temporal.tls: ', (c) =>
    setAt(c, ['temporal', 'tls'], true),
  );
  mutate('the defaults.throttle section as a number', ': defaults.throttle: ', (c) =>
    setAt(c, ['defaults', 'throttle'], 5),
  );
  mutate('a database throttle as a list', `: databases[0].throttle: `, (c) =>
    setAt(c, [...DB, 'throttle'], [1]),
  );
  mutate('no databases (empty list)', ': databases: ', (c) => (c.databases = []), /too small/i);
  mutate('databases as a mapping', ': databases: ', (c) => (c.databases = { app: {} }));
  mutate('a database written as its name only', ': databases[0]: ', (c) => setAt(c, DB, db.name));
  mutate('a database without tables (empty list)', `: databases[0].tables: `, (c) =>
    setAt(c, [...DB, 'tables'], []),
  );
  mutate('a database whose tables are a mapping', `: databases[0].tables: `, (c) =>
    setAt(c, [...DB, 'tables'], { audit_log: { primary_key: 'id' } }),
  );
  mutate(
    'a database without its tables key',
    ': databases[0]: ',
    (c) => deleteAt(c, [...DB, 'tables']),
    /tables is required$/,
  );
  mutate('a table written as its name only', ': databases[0].tables[0]: ', (c) =>
    setAt(c, TABLE, table.name),
  );
  mutate('a table as a list', ': databases[0].tables[0]: ', (c) => setAt(c, TABLE, [table.name]));

  for (const { path, typo, meant } of MAPPINGS) {
    const level = path.length === 0 ? 'the root' : formatPath(path);
    mutate(
      `a near-miss typo "${typo}" at ${level}`,
      where(path),
      (c) => setAt(c, [...path, typo], 1),
      new RegExp(`unknown key "${typo}" \\(did you mean "${meant}"\\?\\)$`),
    );
    mutate(
      `an unrelated unknown key at ${level}`,
      where(path),
      (c) => setAt(c, [...path, 'colour_scheme_for_reports'], 'blue'),
      /unknown key "colour_scheme_for_reports" \(expected one of: /,
    );
  }
  mutate(
    'a camelCase key (primaryKey) in a table',
    ': databases[0].tables[0]: ',
    (c) => setAt(c, [...TABLE, 'primaryKey'], 'id'),
    /unknown key "primaryKey" \(did you mean "primary_key"\?\)$/,
  );
  mutate(
    'a key written with hyphens (batch-size) in defaults',
    ': defaults: ',
    (c) => setAt(c, ['defaults', 'batch-size'], 10),
    /unknown key "batch-size" \(did you mean "batch_size"\?\)$/,
  );
  mutate(
    'a capitalised key (Bucket) in s3',
    ': s3: ',
    (c) => setAt(c, ['s3', 'Bucket'], 'x'),
    /unknown key "Bucket" \(did you mean "bucket"\?\)$/,
  );
  mutate(
    'a password written into the file',
    ': databases[0]: ',
    (c) => setAt(c, [...DB, 'password'], 'secret'),
    /unknown key "password" \(expected one of: .*password_env, password_file/,
  );

  // Duplicates
  mutate(
    'the same database listed twice',
    ': databases[1].name: ',
    (c) => (c.databases as Json[]).push((c.databases as Json[])[0]!),
    new RegExp(`database "${db.name}" is listed twice$`),
  );
  mutate(
    'the same table listed twice',
    ': databases[0].tables[1].name: ',
    (c) => {
      const tables = (c.databases as Mapping[])[0]!.tables as Json[];
      tables.push(tables[0]!);
    },
    /is listed twice in database/,
  );
  mutate(
    'the same table twice, once with its schema left to the default',
    ': databases[0].tables[1].name: ',
    (c) => {
      const tables = (c.databases as Mapping[])[0]!.tables as Mapping[];
      const withoutSchema = { ...tables[0]! };
      delete withoutSchema.schema;
      tables[0]!.schema = 'public';
      tables.push(withoutSchema);
    },
    /table public\.\S+ is listed twice/,
  );
  mutate(
    'the same table twice in a second database',
    ': databases[1].tables[1].name: ',
    (c) => {
      const second = clone({ ...base, databases: [db] }).databases as Mapping[];
      const other = second[0]!;
      other.name = `${db.name}_copy`;
      (other.tables as Json[]).push((other.tables as Json[])[0]!);
      (c.databases as Json[]).push(other);
    },
    /is listed twice in database/,
  );
  mutate(
    'password_env and password_file both set',
    ': databases[0]: ',
    (c) => {
      setAt(c, [...DB, 'password_env'], 'AA_PASSWORD');
      setAt(c, [...DB, 'password_file'], '/run/secrets/aa');
    },
    /set password_env or password_file, not both$/,
  );

  // Compliance: retention bounds of a classification, encryption, legal holds
  const qualified = `table ${table.schema ?? 'public'}\\.${table.name}`;
  mutate(
    "retention_days below its classification's minimum",
    ': databases[0].tables[0].retention_days: ',
    (c) => {
      setAt(c, [...TABLE, 'classification'], 'confidential');
      setAt(c, [...TABLE, 'retention_days'], 30);
    },
    new RegExp(
      `${qualified}: retention_days 30 is below the minimum 90 of classification "confidential"$`,
    ),
  );
  mutate(
    "retention_days (inherited from defaults) above its classification's maximum",
    ': databases[0].tables[0].retention_days: ',
    (c) => {
      setAt(c, ['compliance', 'classifications'], { restricted: { max_retention_days: 30 } });
      setAt(c, [...TABLE, 'classification'], 'restricted');
      setAt(c, ['defaults', 'retention_days'], 60);
    },
    new RegExp(
      `${qualified}: retention_days 60 is above the maximum 30 of classification "restricted"$`,
    ),
  );
  mutate(
    'a classification the config does not define',
    ': databases[0].tables[0].classification: ',
    (c) => setAt(c, [...TABLE, 'classification'], 'secret'),
    /classification "secret" is not in compliance\.classifications \(critical, confidential, internal, public\)$/,
  );
  mutate(
    'a critical table (encryption required) with s3.encryption off',
    ': databases[0].tables[0].classification: ',
    (c) => {
      setAt(c, [...TABLE, 'classification'], 'critical');
      setAt(c, [...TABLE, 'retention_days'], 400);
    },
    /requires encryption \(classification "critical"\), but s3\.encryption\.mode is none/,
  );
  mutate(
    'require_encryption on a table with s3.encryption off',
    ': databases[0].tables[0].require_encryption: ',
    (c) => setAt(c, [...TABLE, 'require_encryption'], true),
    /requires encryption, but s3\.encryption\.mode is none/,
  );
  mutate(
    'SSE-KMS without a key id',
    ': s3.encryption.kms_key_id: ',
    (c) => setAt(c, ['s3', 'encryption'], { mode: 'SSE-KMS' }),
    /is required with mode SSE-KMS$/,
  );
  mutate(
    'a KMS key id with SSE-S3',
    ': s3.encryption.kms_key_id: ',
    (c) => setAt(c, ['s3', 'encryption'], { mode: 'SSE-S3', kms_key_id: 'k1' }),
    /is only used with mode SSE-KMS \(mode is SSE-S3\)$/,
  );
  mutate('an encryption mode that does not exist', ': s3.encryption.mode: ', (c) =>
    setAt(c, ['s3', 'encryption'], { mode: 'AES256' }),
  );
  mutate(
    'a legal hold whose until is before its since',
    ': databases[0].tables[0].legal_hold: ',
    (c) =>
      setAt(c, [...TABLE, 'legal_hold'], {
        reason: 'case 1',
        since: '2024-05-01',
        until: '2024-04-01',
      }),
    /until is before since$/,
  );
  mutate(
    'a legal hold since a day that is not in the calendar',
    ': databases[0].tables[0].legal_hold.since: ',
    (c) => setAt(c, [...TABLE, 'legal_hold'], { reason: 'case 1', since: '2024-02-30' }),
    /is not a calendar day$/,
  );
  mutate(
    'a legal hold without a reason',
    ': databases[0].tables[0].legal_hold: ',
    (c) => setAt(c, [...TABLE, 'legal_hold'], { since: '2024-02-01' }),
    /reason is required$/,
  );

  // Schedules (src/config/schedules.ts): a valid entry with one thing wrong; the line names
  // the schedule and the key.
  const SCHEDULE: Path = ['schedules', 'nightly'];
  const scheduleCases: [string, Mapping, Segment | null, RegExp][] = [
    ['neither cron nor every', { cron: null }, null, /set cron or every \(one of the two\)/],
    ['both cron and every', { every: '1h' }, null, /set cron or every \(one of the two\)/],
    ['a cron of four fields', { cron: '30 2 * *' }, 'cron', /has 4 fields/],
    ['a cron hour out of range', { cron: '0 24 * * *' }, 'cron', /hour "24" is out of range/],
    ['a cron as a number', { cron: 5 }, 'cron', /must be a cron expression or a list of them$/],
    ['every without a unit', { cron: null, every: '6' }, 'every', /must be a duration/],
    ['every below a minute', { cron: null, every: '10s' }, 'every', /at least 1m/],
    ['an offset with cron', { offset: '1h' }, 'offset', /is only used with every$/],
    ['an unknown time zone', { time_zone: 'Mars/Base' }, 'time_zone', /IANA time zone/],
    ['an unknown overlap policy', { overlap: 'sometimes' }, 'overlap', /must be one of /],
    ['a catch-up window below 10s', { catchup_window: '1s' }, 'catchup_window', /at least 10s/],
    ['paused as text', { paused: 'yes' }, 'paused', /expected boolean/],
    ['an unknown key', { timezone: 'UTC' }, null, /unknown key "timezone"/],
    [
      'a database not in the config',
      { database: 'no_such_db' },
      'database',
      /is not in the config/,
    ],
    ['a table without its database', { table: table.name }, 'table', /needs database/],
    [
      'a table its database does not have',
      { database: db.name, table: 'no_such_table' },
      'table',
      /is not configured in database/,
    ],
  ];
  for (const [name, fields, key, says] of scheduleCases) {
    mutate(
      `schedule ${name}`,
      where(key === null ? SCHEDULE : [...SCHEDULE, key]),
      (c) => {
        const entry: Mapping = { cron: '30 2 * * *', ...fields };
        for (const k of Object.keys(entry)) if (entry[k] === null) delete entry[k];
        setAt(c, SCHEDULE, entry);
      },
      says,
    );
  }
  mutate(
    'a schedule name with a space',
    ': schedules.night run: ',
    (c) => setAt(c, ['schedules', 'night run'], { cron: '@daily' }),
    /the name must be 1 to 100 letters/,
  );
  mutate('schedules as a list', ': schedules: ', (c) =>
    setAt(c, ['schedules'], [{ cron: '@daily' }]),
  );

  // Notifications (src/config/notifications.ts): a valid channel with one thing wrong; the
  // line names the channel and the key.
  const CHANNEL: Path = ['notifications', 'channels', 'ops'];
  const email: Mapping = {
    type: 'email',
    smtp: { host: 'smtp.example.com' },
    from: 'archiver@example.com',
    to: ['ops@example.com'],
  };
  const notifyCases: [string, Mapping, readonly Segment[], RegExp][] = [
    [
      'an email channel without smtp',
      { ...email, smtp: null },
      [],
      /smtp is required for an email channel$/,
    ],
    [
      'an email channel without recipients',
      { ...email, to: null },
      [],
      /to is required for an email channel$/,
    ],
    [
      'an email channel with a webhook',
      { ...email, webhook_url_env: 'HOOK' },
      [],
      /webhook_url_env is only for slack and teams channels$/,
    ],
    [
      'a recipient that is no address',
      { ...email, to: ['ops'] },
      ['to', 0],
      /must be an e-mail address/,
    ],
    [
      'an SMTP port out of range',
      { ...email, smtp: { host: 'h', port: 0 } },
      ['smtp', 'port'],
      /too small/i,
    ],
    [
      'an SMTP tls mode that does not exist',
      { ...email, smtp: { host: 'h', tls: 'ssl' } },
      ['smtp', 'tls'],
      /must be one of "starttls", "implicit", "none"/,
    ],
    [
      'an SMTP password without a user',
      { ...email, smtp: { host: 'h', password_env: 'SMTP_PASSWORD' } },
      ['smtp'],
      /a password needs a user to log in as$/,
    ],
    [
      'an SMTP password written into the file',
      { ...email, smtp: { host: 'h', user: 'u', password: 'secret' } },
      ['smtp'],
      /unknown key "password" \(expected one of: .*password_env, password_file\)$/,
    ],
    [
      'a slack channel without its webhook',
      { type: 'slack' },
      [],
      /a slack channel needs webhook_url_env or webhook_url_file \(neither is set\)$/,
    ],
    [
      'a teams channel with both webhook keys',
      { type: 'teams', webhook_url_env: 'HOOK', webhook_url_file: '/run/secrets/hook' },
      [],
      /a teams channel needs webhook_url_env or webhook_url_file \(not both\)$/,
    ],
    [
      'a webhook URL written into the file',
      { type: 'slack', webhook_url_env: 'HOOK', webhook_url: 'https://hooks.slack.com/services/x' },
      [],
      /unknown key "webhook_url"/,
    ],
    [
      'a webhook variable that is no variable name',
      { type: 'slack', webhook_url_env: 'SLACK-HOOK' },
      ['webhook_url_env'],
      /must be an environment variable name/,
    ],
    [
      'a slack channel with recipients',
      { type: 'slack', webhook_url_env: 'HOOK', to: ['ops@example.com'] },
      [],
      /to is only for email channels$/,
    ],
    [
      'a channel type that does not exist',
      { type: 'pagerduty', webhook_url_env: 'HOOK' },
      ['type'],
      /must be one of "email", "slack", "teams", got "pagerduty"$/,
    ],
    [
      'a min_severity that does not exist',
      { ...email, min_severity: 'critical' },
      ['min_severity'],
      /must be one of "info", "warning", "error", got "critical"$/,
    ],
    [
      'an event that does not exist',
      { ...email, events: ['run_started'] },
      ['events', 0],
      /must be one of "run_failed"/,
    ],
  ];
  for (const [name, fields, key, says] of notifyCases) {
    mutate(
      `notifications: ${name}`,
      where([...CHANNEL, ...key]),
      (c) => {
        const channel: Mapping = { ...fields };
        for (const k of Object.keys(channel)) if (channel[k] === null) delete channel[k];
        setAt(c, CHANNEL, channel);
      },
      says,
    );
  }
  mutate(
    'notifications: a database naming a channel the config does not have',
    ': databases[0].notify[0]: ',
    (c) => {
      setAt(c, CHANNEL, email);
      setAt(c, [...DB, 'notify'], ['pager']);
    },
    new RegExp(
      `database "${db.name}": channel "pager" is not in notifications\\.channels \\(ops\\)$`,
    ),
  );
  mutate(
    'notifications: a database naming a channel when none is configured',
    ': databases[0].notify[0]: ',
    (c) => setAt(c, [...DB, 'notify'], ['ops']),
    /channel "ops" is not in notifications\.channels \(none\)$/,
  );
  mutate(
    'notifications: a channel name in capitals',
    ': notifications.channels.Ops: ',
    (c) => setAt(c, ['notifications', 'channels', 'Ops'], email),
    /channel name "Ops" must be a lower-case name/,
  );
  mutate('notifications: channels as a list', ': notifications.channels: ', (c) =>
    setAt(c, ['notifications', 'channels'], [email]),
  );
  mutate('notifications: a database notify written as one name', ': databases[0].notify: ', (c) =>
    setAt(c, [...DB, 'notify'], 'ops'),
  );

  // Broken YAML and roots that are not mappings
  const good = stringify(base);
  const yaml: [string, string][] = [
    ['an unclosed flow sequence', `${good}extra: [1, 2\n`],
    ['an unclosed flow mapping', `${good}extra: {a: 1\n`],
    ['an unclosed double quote', `${good}extra: "open\n`],
    ['an unclosed single quote', `${good}extra: 'open\n`],
    ['a duplicate key at the root', `${good}version: '2.0'\n`],
    ['a duplicate key in a table', good.replace(/( +primary_key: .*\n)/, '$1$1')],
    ['tab indentation', good.replace(/\n {2}bucket:/, '\n\tbucket:')],
    ['a mis-indented key', good.replace(/\n {2}bucket:/, '\n   bucket:')],
    ['a second value on one line', `${good}extra: a: b\n`],
    ['an invalid escape in a double-quoted string', `${good}extra: "\\q"\n`],
    ['two documents in one file', `${good}---\n${good}`],
    ['a list item inside a mapping', `${good}- stray\n`],
    ['a lone closing bracket', `${good}]\n`],
  ];
  for (const [name, text] of yaml)
    cases.push({ name: `YAML: ${name}`, text, at: ':', says: /^\d+:\d+: invalid YAML: / });
  cases.push({
    name: 'YAML: an alias without its anchor',
    text: `${good}extra: *nowhere\n`,
    at: ': invalid YAML: ',
    says: /Unresolved alias/,
  });
  const laughs = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i);
    laughs.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${prev}`).join(', ')}]`,
    );
  }
  cases.push({
    name: 'YAML: a billion laughs (aliases of aliases, 10^9 items once expanded)',
    text: `${good}${laughs.join('\n')}\n`,
    at: ': invalid YAML: ',
    says: /alias count/i,
  });
  const roots: [string, string][] = [
    ['an empty file', ''],
    ['a file of comments only', '# audit-archiver\n# nothing here\n'],
    ['a null document', '~\n'],
    ['a list', '- version\n- s3\n'],
    ['a string', 'audit-archiver.yaml\n'],
    ['a number', '2.0\n'],
    ['a boolean', 'true\n'],
  ];
  for (const [name, text] of roots)
    cases.push({ name: `a root that is ${name}`, text, at: ': expected a mapping of settings' });
  return cases;
}
