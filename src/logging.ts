import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The one log sink: JSON lines on stdout for machines, pretty lines on a terminal. Anything
 * that could carry a secret is redacted by key wherever it appears.
 */
export function createLogger(options: { level: LogLevel; pretty: boolean }): Logger {
  return pino({
    level: options.level,
    base: { service: 'audit-archiver' },
    // The Temporal SDK puts errors under `error`; without a serializer they log as {}.
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    redact: {
      paths: [
        'password',
        '*.password',
        'apiKey',
        '*.apiKey',
        'secretAccessKey',
        '*.secretAccessKey',
      ],
      censor: '[redacted]',
    },
    ...(options.pretty && {
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss' },
      },
    }),
  });
}
