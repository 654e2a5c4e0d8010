/**
 * Certificates without downtime: the `http.tls` pair is read again on demand (`reload()`, which `keymesh start`
 * calls on SIGHUP) and when either file changes, and a good new pair replaces the listener's secure context.
 *
 * Changes are seen by watching the directories that hold the files (`fs.watch`, inotify on Linux), so a file
 * replaced by a rename (certbot, a Kubernetes secret's `..data` link) is seen like one written in place. Events
 * are debounced by `TLS_RELOAD_DEBOUNCE_MS` after the last one, so a certificate and a key written one after the
 * other are read once, together. A pair whose bytes are those already served is not applied again (and not
 * logged above debug), so unrelated files in the same directory cost two small reads.
 *
 * A new pair is checked as at start (`readTlsPair`): a pair that fails is refused, the listener keeps the last
 * good one, and the refusal is logged at error with the file at fault. Connections already open keep the context
 * they were opened with (Node applies a new context to new handshakes only), so nothing is dropped.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { TLS_RELOAD_DEBOUNCE_MS } from '../config/defaults.js';
import { ConfigInvalidError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Startable } from '../startable.js';
import { readTlsPair, type TlsFiles, type TlsPair } from './tls-pair.js';

/** What a reload did: applied a new pair, found the served one, or refused a bad one (the old one stays). */
export type TlsReloadOutcome = 'reloaded' | 'unchanged' | 'refused';

export interface TlsReloaderOptions {
  readonly files: TlsFiles;
  /** The pair the listener serves now. */
  readonly current: TlsPair;
  /** Makes the listener use `pair` for new connections (`server.setSecureContext`). */
  readonly apply: (pair: TlsPair) => void;
  readonly log: Logger;
  /** The current time (ms since the epoch), to refuse an expired certificate. */
  readonly now: () => number;
  /** Whether to watch the files' directories. Default is true. */
  readonly watch?: boolean;
  /** Quiet time after the last file event before the pair is read. Default is `TLS_RELOAD_DEBOUNCE_MS`. */
  readonly debounceMs?: number;
  /** Told of every reload that applied or refused a pair (not of those that found the served one). */
  readonly onReload?: (outcome: 'reloaded' | 'refused') => void;
}

/** Reloads one listener's certificate and key; `Startable` for its directory watchers. */
export class TlsReloader implements Startable {
  readonly #o: TlsReloaderOptions;
  #current: TlsPair;
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: TlsReloaderOptions) {
    this.#o = options;
    this.#current = options.current;
  }

  /** SHA-256 fingerprint of the certificate served to new connections. */
  get fingerprint256(): string {
    return this.#current.fingerprint256;
  }

  async start(): Promise<void> {
    if (this.#o.watch === false || this.#watchers.length > 0) return;
    for (const dir of new Set([dirname(this.#o.files.certFile), dirname(this.#o.files.keyFile)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#changed());
        watcher.on('error', (err) => {
          this.#o.log.warn(
            { dir, err: (err as NodeJS.ErrnoException).code ?? String(err) },
            'stopped watching a TLS file directory; SIGHUP still reloads',
          );
          watcher.close();
        });
        this.#watchers.push(watcher);
      } catch (err) {
        this.#o.log.warn(
          { dir, err: (err as NodeJS.ErrnoException).code ?? String(err) },
          'cannot watch a TLS file directory; SIGHUP still reloads',
        );
      }
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
  }

  /**
   * Reads the pair again and, when it is good and new, applies it. Never throws: a bad pair is logged and refused.
   * @param reason why (`signal`, `file change`), for the log.
   */
  reload(reason: string): TlsReloadOutcome {
    const { files, log } = this.#o;
    let pair: TlsPair;
    try {
      pair = readTlsPair(files, this.#o.now());
    } catch (err) {
      const problem = err instanceof ConfigInvalidError ? err.problems[0] : undefined;
      log.error(
        {
          reason,
          path: problem?.path,
          problem: problem?.message ?? String(err),
          serving: this.#current.fingerprint256,
        },
        'refused the new TLS certificate and key; still serving the previous pair',
      );
      return this.#report('refused');
    }
    if (pair.cert.equals(this.#current.cert) && pair.key.equals(this.#current.key)) {
      log.debug({ reason }, 'TLS certificate and key unchanged');
      return 'unchanged';
    }
    try {
      this.#o.apply(pair);
    } catch (err) {
      log.error(
        { reason, problem: (err as NodeJS.ErrnoException).code ?? String(err), serving: this.#current.fingerprint256 },
        'refused the new TLS certificate and key; still serving the previous pair',
      );
      return this.#report('refused');
    }
    log.info(
      {
        reason,
        previous: this.#current.fingerprint256,
        fingerprint256: pair.fingerprint256,
        validTo: new Date(pair.validToMs).toISOString(),
      },
      'TLS certificate and key reloaded',
    );
    this.#current = pair;
    return this.#report('reloaded');
  }

  #report(outcome: 'reloaded' | 'refused'): TlsReloadOutcome {
    this.#o.onReload?.(outcome);
    return outcome;
  }

  #changed(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.reload('file change');
    }, this.#o.debounceMs ?? TLS_RELOAD_DEBOUNCE_MS);
    this.#timer.unref();
  }
}
