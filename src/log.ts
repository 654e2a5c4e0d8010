/**
 * Logging: pino, JSON lines on stdout, one child logger per component (`component` field). Nothing that holds
 * key material is ever passed to a logger; `redact` is a second line of defence for the header fields that carry
 * operator tokens.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Creates the node's root logger. */
export function createLogger(options: { level: string; name?: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      base: options.name ? { node: options.name } : {},
      redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization'], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

/** A logger that discards everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
