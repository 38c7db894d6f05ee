export { loadConfig, parseConfig, formatPath, type Env } from './load';
export { configSchema, type Config, type DatabaseConfig, type TableConfig } from './schema';
export type { S3Config, TemporalConfig, ComplianceConfig } from './schema';
export {
  selectTables,
  findTable,
  objectLockOf,
  type ObjectLockRetention,
  type ResolvedTable,
  type TableFilter,
} from './tables';
export { databasePassword } from './secrets';
export { configDigest } from './digest';
