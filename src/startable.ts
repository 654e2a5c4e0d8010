/**
 * The lifecycle every long-lived component shares. The node starts components in dependency order and stops them
 * in reverse. `stop()` is idempotent and safe before `start()`; it releases timers, sockets and file handles.
 */
export interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}
