import { loadConfig, type Config, type Env } from '../../config';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../../logging';

/** Options every command accepts. */
export interface GlobalOptions {
  config: string;
  verbose?: boolean;
  logLevel?: LogLevel;
}

/** What a command runs with: the parsed config, the environment, where to write. */
export interface CommandContext {
  config: Config;
  configPath: string;
  env: Env;
  logLevel: LogLevel;
  logger: () => Logger;
  out: (line: string) => void;
}

export const DEFAULT_CONFIG = 'audit-archiver.yaml';
export { LOG_LEVELS };

export function commandContext(options: GlobalOptions, env: Env, isTty: boolean): CommandContext {
  const config = loadConfig(options.config, env);
  const logLevel = options.logLevel ?? (options.verbose ? 'debug' : 'info');
  let logger: Logger | undefined;
  return {
    config,
    configPath: options.config,
    env,
    logLevel,
    logger: () => (logger ??= createLogger({ level: logLevel, pretty: isTty })),
    out: (line) => process.stdout.write(`${line}\n`),
  };
}
