/**
 * Logging: pino, one event a line, one child logger per component (`component` field), the level from the
 * config. JSON lines when stdout is a file or a pipe (log pipelines, `npm start`, which prefixes each node's
 * lines), and the same events as readable lines (pino-pretty) when stdout is a terminal. Nothing that holds key
 * material is ever passed to a logger; `redact` is a second line of defence for the header fields that carry
 * operator tokens.
 */
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/**
 * pino-pretty, loaded only when readable lines are asked for: about 30 modules and 0.3 MiB of heap that a node
 * writing JSON lines (every deployed one) never uses. Loaded synchronously, since a logger is made synchronously.
 */
function loadPretty(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}

/**
 * Creates the node's root logger, writing to `destination` (default stdout): readable lines when `readable`
 * (default: stdout is a terminal), JSON lines otherwise.
 */
export function createLogger(options: {
  level: string;
  name?: string;
  destination?: NodeJS.WritableStream;
  readable?: boolean;
}): Logger {
  const readable = options.readable ?? (options.destination === undefined && process.stdout.isTTY === true);
  const out = options.destination ?? pino.destination({ fd: 1, sync: true });
  const destination = readable
    ? loadPretty()({
        sync: true,
        colorize: options.destination === undefined,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        destination: out,
      })
    : out;
  return pino(
    {
      level: options.level,
      base: options.name ? { node: options.name } : {},
      redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization'], censor: '[redacted]' },
    },
    destination,
  );
}

/** A logger that discards everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
