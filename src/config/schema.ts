import { z } from 'zod';
import { envVarName } from './fields';
import { checkScheduleScopes, schedulesSchema } from './schedules';
import { checkNotifyChannels, databaseNotify, notificationsSchema } from './notifications';

/**
 * The configuration file's one schema. Every field says what it does and its default;
 * docs/configuration.md is generated from these descriptions (npm run docs:config) and a
 * check fails when the two drift apart. Objects are strict: an unknown key is an error,
 * not a silently ignored typo.
 */

// PostgreSQL truncates identifiers to 63 bytes; a longer name in the config can only be a mistake.
const identifier = z
  .string()
  .min(1)
  .refine((name) => Buffer.byteLength(name) <= 63, 'is longer than 63 bytes')
  .refine(
    (name) => !name.includes('\u0000'),
    'holds a NUL character, which no PostgreSQL name can',
  );

// The S3 endpoint and the Web UI are reached over HTTP; any other scheme is a typo.
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'must look like host:port, e.g. 127.0.0.1:9464');

const envName = envVarName('AUDIT_DB_PASSWORD');

const retentionDays = z
  .number()
  .int()
  .min(1)
  .max(36500)
  .describe(
    'Rows whose timestamp column is older than this many days (counted from the start of a run) are archived.',
  );
const batchSize = z
  .number()
  .int()
  .min(1)
  .max(1_000_000)
  .describe(
    'Most rows in one batch: one exported object, one verified upload, one delete transaction.',
  );

const compressionLevel = z
  .number()
  .int()
  .min(1)
  .max(9)
  .describe(
    "gzip level of the data objects. On typical audit rows 3 compresses about as fast as 1 and 6% smaller; 6 takes about twice the worker's CPU for 6% less again, 9 six times for 10% less. Objects of any level read back alike.",
  );

const schemaDrift = z
  .enum(['warn', 'block', 'follow'])
  .describe(
    "What a run does when the table's schema changed since its last snapshot: warn (log a warning, record the change, archive with the new schema), block (stop before any export, naming the change, until `audit-archiver snapshot-schema` accepts it) or follow (record the change and go on quietly). Every change is recorded in the audit trail.",
  );

/** Settings a table inherits from `defaults` unless it sets them itself. */
const pauseBetweenBatches = z
  .number()
  .int()
  .min(0)
  .max(3_600_000)
  .describe(
    'Milliseconds to wait at least after each batch, a floor under the rest `throttle.nice_ratio` gives. Up to 10 s it is waited inside the next throttle check; longer, on a durable timer.',
  );

/**
 * Adaptive throttling (docs/performance-tuning.md): before each batch the archiver reads these
 * signals from the database and waits on a durable timer while one is over its limit.
 * `defaults.throttle` sets every limit; a database's `throttle` overrides single keys.
 */
const throttleFields = {
  max_replica_lag_ms: z
    .number()
    .int()
    .min(0)
    .nullable()
    .describe(
      'Wait while any replica replays more than this many milliseconds behind (pg_stat_replication.replay_lag); null turns the check off.',
    ),
  max_wal_ready_files: z
    .number()
    .int()
    .min(0)
    .nullable()
    .describe(
      'Wait while more WAL segments than this wait for archive_command (.ready files), or while the WAL archiver is failing; null turns the check off.',
    ),
  pause_during_vacuum: z
    .boolean()
    .describe(
      'Wait while a vacuum (usually autovacuum) is working on the table being archived (pg_stat_progress_vacuum).',
    ),
  max_lock_waiters: z
    .number()
    .int()
    .min(0)
    .nullable()
    .describe(
      'Wait while more sessions of the database than this wait for a lock (pg_stat_activity wait_event_type Lock); null turns the check off.',
    ),
  max_slowdown: z
    .number()
    .min(1)
    .nullable()
    .describe(
      "Wait when the last full batch took more than this many times the archiver's usual time per row (its own statements slowing down means the database is busy); null turns the check off.",
    ),
  max_rows_per_second: z
    .number()
    .int()
    .min(1)
    .nullable()
    .describe('Most rows archived per second per table, pauses included; null for no ceiling.'),
  max_bytes_per_second: z
    .number()
    .int()
    .min(1)
    .nullable()
    .describe(
      'Most compressed archive bytes written per second per table, pauses included; null for no ceiling.',
    ),
  nice_ratio: z
    .number()
    .min(0)
    .max(1000)
    .nullable()
    .describe(
      "A fixed rest: milliseconds of rest after each millisecond a batch worked (export to delete), as gh-ost's nice-ratio (49 keeps the archiver at work at most 2% of the time), whatever the database shows; a manual cap on the impact controller's pace. pause_between_batches_ms counts toward the rest, and one rest is at most max_pause_ms; null or 0 turns it off.",
    ),
  max_probe_slowdown: z
    .number()
    .min(1)
    .nullable()
    .describe(
      'The impact controller: while archiving, the worker times a round trip of a trivial statement every 50 ms (the probe); while their 90th percentile over the last 2 s is more than this many times its lowest (and over 0.5 ms more), the archiver rests after each batch, 1 ms per ms of work at first, doubling up to max_rest_ratio, and halving again once the probe is back. null turns the probe off.',
    ),
  max_active_sessions: z
    .number()
    .int()
    .min(0)
    .nullable()
    .describe(
      "The impact controller rests, as for max_probe_slowdown, while more of the database's other sessions than this are running a statement (pg_stat_activity state active, the archiver's own sessions not counted); null turns the check off.",
    ),
  max_rest_ratio: z
    .number()
    .min(0)
    .max(1000)
    .describe(
      'The most rest the impact controller gives, in milliseconds per millisecond of batch work.',
    ),
  pause_ms: z
    .number()
    .int()
    .min(10)
    .max(3_600_000)
    .describe(
      'First wait when a database signal is over its limit; it doubles while the signal stays over.',
    ),
  max_pause_ms: z
    .number()
    .int()
    .min(10)
    .max(3_600_000)
    .describe('Longest single wait; the signals are read again after each wait.'),
  target_batch_ms: z
    .number()
    .int()
    .min(10)
    .nullable()
    .describe(
      'When set, the batch size adapts toward this batch duration (export to delete), between min_batch_size and batch_size; null keeps batch_size.',
    ),
  min_batch_size: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .describe('Smallest batch size the adaptation may choose.'),
};

const throttleDefaultsSchema = z
  .strictObject({
    max_replica_lag_ms: throttleFields.max_replica_lag_ms.default(10_000),
    max_wal_ready_files: throttleFields.max_wal_ready_files.default(64),
    pause_during_vacuum: throttleFields.pause_during_vacuum.default(true),
    max_lock_waiters: throttleFields.max_lock_waiters.default(5),
    max_slowdown: throttleFields.max_slowdown.default(3),
    max_rows_per_second: throttleFields.max_rows_per_second.default(null),
    max_bytes_per_second: throttleFields.max_bytes_per_second.default(null),
    nice_ratio: throttleFields.nice_ratio.default(null),
    max_probe_slowdown: throttleFields.max_probe_slowdown.default(1.5),
    max_active_sessions: throttleFields.max_active_sessions.default(null),
    max_rest_ratio: throttleFields.max_rest_ratio.default(49),
    pause_ms: throttleFields.pause_ms.default(5_000),
    max_pause_ms: throttleFields.max_pause_ms.default(60_000),
    target_batch_ms: throttleFields.target_batch_ms.default(null),
    min_batch_size: throttleFields.min_batch_size.default(100),
  })
  .describe('Throttling limits every database inherits unless it overrides them.');

/** Each throttle field made optional, described as an override of its default. */
function overridesOf<T extends Record<string, z.ZodType>>(
  fields: T,
): { [K in keyof T]: z.ZodOptional<T[K]> } {
  return Object.fromEntries(
    Object.entries(fields).map(([name, field]) => [
      name,
      field.optional().describe(`Overrides defaults.throttle.${name}.`),
    ]),
  ) as { [K in keyof T]: z.ZodOptional<T[K]> };
}

const throttleOverrideSchema = z
  .strictObject(overridesOf(throttleFields))
  .describe("This database's throttling limits, key by key over defaults.throttle.");

const defaultsSchema = z
  .strictObject({
    retention_days: retentionDays.default(90),
    batch_size: batchSize.default(10_000),
    compression_level: compressionLevel.default(3),
    pause_between_batches_ms: pauseBetweenBatches.default(0),
    schema_drift: schemaDrift.default('warn'),
    throttle: throttleDefaultsSchema.prefault({}),
  })
  .describe('Table settings that every table inherits unless it sets its own.');

const classificationName = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,62}$/,
    'must be a lower-case name (letters, digits, - and _), e.g. critical',
  );

const optionalDays = z.number().int().min(1).max(36500).nullable();

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day written YYYY-MM-DD')
  .refine((d) => {
    const date = new Date(`${d}T00:00:00Z`);
    return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(d);
  }, 'is not a calendar day');

/** What a data classification demands of every table that declares it. */
const classificationSchema = z.strictObject({
  min_retention_days: optionalDays
    .default(null)
    .describe(
      "Fewest days rows of this class stay in the database: a table's retention_days below it is refused at config load; null for no minimum.",
    ),
  max_retention_days: optionalDays
    .default(null)
    .describe(
      "Most days rows of this class may stay in the database (data minimisation): a table's retention_days above it is refused at config load; null for no maximum.",
    ),
  archive_retention_days: optionalDays
    .default(null)
    .describe(
      'Days every object archived from a table of this class is kept from deletion by S3 Object Lock retention (mode compliance.object_lock_mode), counted from its upload; the bucket must have Object Lock on (doctor checks it). null: no retention set.',
    ),
  require_encryption: z
    .boolean()
    .default(false)
    .describe(
      'Tables of this class are only archived to an encrypting store: s3.encryption must be set, the store is proven to encrypt before the first write of each run, and every write is checked.',
    ),
});

/** The classifications a config has when it names none of its own. */
export const DEFAULT_CLASSIFICATIONS = {
  critical: {
    min_retention_days: 365,
    max_retention_days: null,
    archive_retention_days: null,
    require_encryption: true,
  },
  confidential: {
    min_retention_days: 90,
    max_retention_days: null,
    archive_retention_days: null,
    require_encryption: false,
  },
  internal: {
    min_retention_days: 30,
    max_retention_days: null,
    archive_retention_days: null,
    require_encryption: false,
  },
  public: {
    min_retention_days: null,
    max_retention_days: null,
    archive_retention_days: null,
    require_encryption: false,
  },
} as const;

const complianceSchema = z
  .strictObject({
    classifications: z
      .record(classificationName, classificationSchema)
      .default(DEFAULT_CLASSIFICATIONS)
      .describe(
        'Data classifications by name, each with its retention bounds and encryption rule. Naming any replaces the defaults: critical (at least 365 days in the database, encryption required), confidential (at least 90), internal (at least 30), public (no bounds).',
      ),
    audit_trail: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'Write the tamper-evident audit trail: a hash-chained, write-once record of every archived batch, delete, restore, validate, hold, release, legal-hold skip and schema change, under `<prefix>_audit-trail/` (`audit-archiver audit verify|show`).',
          ),
        retention_days: optionalDays
          .default(null)
          .describe(
            'Days each audit record is kept from deletion by S3 Object Lock retention (mode object_lock_mode); the bucket must have Object Lock. null: none.',
          ),
      })
      .prefault({})
      .describe("The audit trail of the archiver's own actions (docs/compliance.md)."),
    object_lock_mode: z
      .enum(['GOVERNANCE', 'COMPLIANCE'])
      .default('GOVERNANCE')
      .describe(
        'S3 Object Lock mode of archive_retention_days: GOVERNANCE (users with s3:BypassGovernanceRetention may still delete) or COMPLIANCE (nobody can, the root account included, until the date passes).',
      ),
  })
  .describe(
    "Data classifications, their retention bounds and the archive's Object Lock mode (docs/compliance.md).",
  );

const tableSchema = z.strictObject({
  name: identifier.describe('Table name as the catalog spells it (case-sensitive, not quoted).'),
  schema: identifier.default('public').describe('Schema that holds the table.'),
  timestamp_column: identifier.describe(
    'Column that dates each row (timestamptz, timestamp or date); it decides which rows are old enough and the day partition of each archived row.',
  ),
  primary_key: identifier.describe(
    'Unique, indexed column used for keyset pagination and for the exact keys of each deletion manifest.',
  ),
  retention_days: retentionDays.optional().describe('Overrides defaults.retention_days.'),
  classification: classificationName
    .optional()
    .describe(
      "The table's data classification, one of compliance.classifications: its retention_days must lie within the class's bounds, and the class decides whether its archive must be encrypted and how long Object Lock keeps it.",
    ),
  legal_hold: z
    .strictObject({
      reason: z.string().min(1).describe('Why the rows are held (a case, a request, an audit).'),
      since: day.describe('First UTC day (YYYY-MM-DD) of the rows held.'),
      until: day
        .optional()
        .describe('Last UTC day of the rows held; without it, every day from `since` on.'),
      reference: z
        .string()
        .min(1)
        .optional()
        .describe('A case, ticket or matter number, carried into the run result and the log.'),
    })
    .refine((h) => h.until === undefined || h.until >= h.since, {
      message: 'until is before since',
    })
    .optional()
    .describe(
      "A legal hold: rows of these days stay in the table whatever their age (the run reports them as held), and their archived objects get an S3 Object Lock legal hold where the bucket has Object Lock. Holds placed at run time, without editing the config, are `audit-archiver hold place`'s.",
    ),
  require_encryption: z
    .boolean()
    .optional()
    .describe(
      "Overrides the classification's require_encryption for this table (a table without a classification requires none unless this says so).",
    ),
  batch_size: batchSize.optional().describe('Overrides defaults.batch_size.'),
  compression_level: compressionLevel.optional().describe('Overrides defaults.compression_level.'),
  pause_between_batches_ms: pauseBetweenBatches
    .optional()
    .describe('Overrides defaults.pause_between_batches_ms.'),
  schema_drift: schemaDrift.optional().describe('Overrides defaults.schema_drift.'),
});

const databaseSchema = z.strictObject({
  name: identifier.describe(
    'Name of the database: used on the command line, in workflow ids and in the bucket layout, and connected to unless `dbname` says otherwise.',
  ),
  dbname: identifier
    .optional()
    .describe(
      'Database to connect to when it differs from `name` (e.g. the same name on two hosts).',
    ),
  host: z.string().min(1).default('127.0.0.1').describe('Host name or address of the server.'),
  port: z.number().int().min(1).max(65535).default(5432).describe('Port of the server.'),
  user: z.string().min(1).default('postgres').describe('Role the archiver connects as.'),
  password_env: envName
    .optional()
    .describe('Environment variable that holds the password. Passwords never go in this file.'),
  password_file: z
    .string()
    .min(1)
    .optional()
    .describe(
      'File whose content (trailing newline removed) is the password, e.g. a mounted secret.',
    ),
  ssl: z
    .enum(['disable', 'require', 'verify-full'])
    .default('disable')
    .describe(
      'TLS to the server: disable, require (encrypt, trust any certificate) or verify-full.',
    ),
  statement_timeout_ms: z
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .default(30_000)
    .describe('statement_timeout of every archiver session: no statement may run longer.'),
  lock_timeout_ms: z
    .number()
    .int()
    .min(10)
    .max(600_000)
    .default(2_000)
    .describe(
      'lock_timeout of every archiver session: a delete that would wait longer for a row lock gives up and is retried later.',
    ),
  lock_lease_seconds: z
    .number()
    .int()
    .min(5)
    .max(3600)
    .default(30)
    .describe(
      "How soon a table's lock comes free when its holder stops answering (a frozen or vanished worker): the lock session's idle_session_timeout (PostgreSQL 14 and later). The holder speaks every 3 s; keep this well above that.",
    ),
  tables: z.array(tableSchema).min(1).describe('Audit tables of this database to archive.'),
  throttle: throttleOverrideSchema.optional(),
  notify: databaseNotify,
});

const s3Schema = z.strictObject({
  endpoint: httpUrl
    .nullable()
    .default(null)
    .describe(
      'S3-compatible endpoint such as MinIO (http://127.0.0.1:9000); null for AWS S3. Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles).',
    ),
  bucket: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'must be a valid bucket name (3-63 lower-case letters, digits, dots, hyphens)',
    )
    .describe('Bucket that holds the archive.'),
  prefix: z
    .string()
    .default('')
    .describe('Key prefix under which everything is written; a trailing / is added when missing.'),
  region: z.string().min(1).default('us-east-1').describe('Region of the bucket.'),
  storage_class: z
    .enum([
      'STANDARD',
      'REDUCED_REDUNDANCY',
      'STANDARD_IA',
      'ONEZONE_IA',
      'INTELLIGENT_TIERING',
      'GLACIER_IR',
      'GLACIER',
      'DEEP_ARCHIVE',
    ])
    .default('STANDARD')
    .describe('Storage class of archived data objects.'),
  force_path_style: z
    .boolean()
    .optional()
    .describe(
      'Path-style addressing (http://host/bucket/key). Default: true when `endpoint` is set, as MinIO needs.',
    ),
  encryption: z
    .strictObject({
      mode: z
        .enum(['none', 'SSE-S3', 'SSE-KMS'])
        .default('none')
        .describe(
          "Server-side encryption of every object the archiver writes: none (the bucket's own default applies), SSE-S3 (keys the store manages) or SSE-KMS (the key kms_key_id names). When set, every write's answer must report it, or the step fails before anything is deleted.",
        ),
      kms_key_id: z
        .string()
        .min(1)
        .nullable()
        .default(null)
        .describe('Key id or ARN for SSE-KMS; required with it, refused without it.'),
    })
    .prefault({})
    .describe('Server-side encryption of the archive (docs/compliance.md).'),
  ca_file: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe(
      "PEM file of the CA bundle that signed an https endpoint's certificate, for a store behind a private CA; null trusts the system CAs.",
    ),
});

const temporalSchema = z
  .strictObject({
    address: z
      .string()
      .min(1)
      .default('127.0.0.1:7233')
      .describe(
        'Temporal frontend host:port. The TEMPORAL_ADDRESS environment variable overrides it.',
      ),
    namespace: z
      .string()
      .min(1)
      .default('default')
      .describe('Temporal namespace. The TEMPORAL_NAMESPACE environment variable overrides it.'),
    task_queue: z
      .string()
      .min(1)
      .default('audit-archiver')
      .describe('Task queue the worker polls and the CLI starts workflows on.'),
    web_ui_url: httpUrl
      .nullable()
      .default(null)
      .describe(
        'Base URL of the Temporal Web UI, for links the CLI prints. Default: http://127.0.0.1:8233 when the server is on this machine.',
      ),
    api_key_env: envName
      .default('TEMPORAL_API_KEY')
      .describe(
        'Environment variable holding a Temporal Cloud API key; when it is set, TLS is on.',
      ),
    tls: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Connect with TLS.'),
        server_name: z
          .string()
          .optional()
          .describe('Server name to verify, when not the address host.'),
        ca_file: z
          .string()
          .optional()
          .describe('PEM file of the CA that signed the server certificate.'),
        cert_file: z.string().optional().describe('PEM client certificate for mTLS.'),
        key_file: z.string().optional().describe('PEM private key of the client certificate.'),
      })
      .optional()
      .describe('TLS (and mTLS) to the Temporal server, e.g. Temporal Cloud.'),
  })
  .describe('Where the Temporal server is and which task queue the archiver uses.');

const archiveSchema = z
  .strictObject({
    max_parallel_tables: z
      .number()
      .int()
      .min(1)
      .max(200)
      .default(4)
      .describe('Most tables archived at the same time in one run, over all databases.'),
    max_parallel_databases: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(2)
      .describe('Most databases with a table being archived at the same time in one run.'),
    max_parallel_tables_per_database: z
      .number()
      .int()
      .min(1)
      .max(50)
      .default(2)
      .describe('Most tables of one database archived at the same time.'),
  })
  .describe('How one archive run spreads over the configured databases and tables.');

const workerSchema = z
  .strictObject({
    http_address: hostPort
      .default('127.0.0.1:9464')
      .describe(
        'host:port of the worker HTTP endpoint serving /metrics (Prometheus) and /healthz.',
      ),
    sdk_metrics_address: hostPort
      .nullable()
      .default(null)
      .describe(
        "host:port where the Temporal SDK's own Prometheus metrics are served (at /metrics); null turns them off.",
      ),
    max_concurrent_activities: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(20)
      .describe('Most activities this worker runs at once.'),
    shutdown_grace_seconds: z
      .number()
      .min(0)
      .max(3600)
      .default(30)
      .describe(
        'On SIGINT/SIGTERM, how long running activities may take to finish before they are cancelled.',
      ),
  })
  .describe('The `audit-archiver worker` process.');

export const configSchema = z
  .strictObject({
    version: z
      .preprocess((v) => (v === 2 ? '2.0' : v), z.literal('2.0'))
      .describe('Format version of this file: "2.0".'),
    temporal: temporalSchema.prefault({}),
    s3: s3Schema.describe('The S3-compatible bucket the archive lives in.'),
    defaults: defaultsSchema.prefault({}),
    databases: z.array(databaseSchema).min(1).describe('Databases and their audit tables.'),
    archive: archiveSchema.prefault({}),
    worker: workerSchema.prefault({}),
    compliance: complianceSchema.prefault({}),
    schedules: schedulesSchema,
    notifications: notificationsSchema.prefault({}),
  })
  .superRefine(checkScheduleScopes)
  .superRefine(checkNotifyChannels)
  .superRefine((config, ctx) => {
    const encryption = config.s3.encryption;
    if ((encryption.mode === 'SSE-KMS') !== (encryption.kms_key_id !== null)) {
      ctx.addIssue({
        code: 'custom',
        path: ['s3', 'encryption', 'kms_key_id'],
        message:
          encryption.mode === 'SSE-KMS'
            ? 'is required with mode SSE-KMS'
            : `is only used with mode SSE-KMS (mode is ${encryption.mode})`,
      });
    }
  })
  .superRefine((config, ctx) => {
    const classes = config.compliance.classifications;
    const encryption = config.s3.encryption;
    config.databases.forEach((db, i) =>
      db.tables.forEach((table, j) => {
        const path = ['databases', i, 'tables', j];
        const qualified = `table ${table.schema}.${table.name}`;
        const retention = table.retention_days ?? config.defaults.retention_days;
        const name = table.classification;
        const rules = name === undefined ? undefined : classes[name];
        if (name !== undefined && rules === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [...path, 'classification'],
            message: `${qualified}: classification "${name}" is not in compliance.classifications (${Object.keys(classes).join(', ') || 'none'})`,
          });
        }
        if (rules?.min_retention_days != null && retention < rules.min_retention_days) {
          ctx.addIssue({
            code: 'custom',
            path: [...path, 'retention_days'],
            message: `${qualified}: retention_days ${retention} is below the minimum ${rules.min_retention_days} of classification "${name}"`,
          });
        }
        if (rules?.max_retention_days != null && retention > rules.max_retention_days) {
          ctx.addIssue({
            code: 'custom',
            path: [...path, 'retention_days'],
            message: `${qualified}: retention_days ${retention} is above the maximum ${rules.max_retention_days} of classification "${name}"`,
          });
        }
        const required = table.require_encryption ?? rules?.require_encryption ?? false;
        if (required && encryption.mode === 'none') {
          ctx.addIssue({
            code: 'custom',
            path: [...path, table.require_encryption ? 'require_encryption' : 'classification'],
            message: `${qualified} requires encryption${table.require_encryption ? '' : ` (classification "${name}")`}, but s3.encryption.mode is none: set SSE-S3 or SSE-KMS`,
          });
        }
      }),
    );
  })
  .superRefine((config, ctx) => {
    const databases = new Set<string>();
    config.databases.forEach((db, i) => {
      if (databases.has(db.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['databases', i, 'name'],
          message: `database "${db.name}" is listed twice`,
        });
      }
      databases.add(db.name);
      if (db.password_env !== undefined && db.password_file !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['databases', i],
          message: 'set password_env or password_file, not both',
        });
      }
      const tables = new Set<string>();
      db.tables.forEach((table, j) => {
        const qualified = `${table.schema}.${table.name}`;
        const key = JSON.stringify([table.schema, table.name]);
        if (tables.has(key)) {
          ctx.addIssue({
            code: 'custom',
            path: ['databases', i, 'tables', j, 'name'],
            message: `table ${qualified} is listed twice in database "${db.name}"`,
          });
        }
        tables.add(key);
      });
    });
  });

/** The configuration as written in the file (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** The configuration after validation, with every default filled in. */
export type Config = z.output<typeof configSchema>;
export type DatabaseConfig = Config['databases'][number];
export type TableConfig = DatabaseConfig['tables'][number];
export type S3Config = Config['s3'];
export type ComplianceConfig = Config['compliance'];
export type Classification = ComplianceConfig['classifications'][string];
export type TemporalConfig = Config['temporal'];
export type ThrottleConfig = Config['defaults']['throttle'];
