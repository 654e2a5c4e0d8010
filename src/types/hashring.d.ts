/** The part of `hashring` (3.x, no bundled types) that keymesh uses. */
declare module 'hashring' {
  export default class HashRing {
    constructor(
      servers: string[] | Record<string, { vnodes?: number; weight?: number }>,
      algorithm?: string,
      options?: Record<string, unknown>,
    );
    /** The `size` distinct servers that follow `key` on the ring. */
    range(key: string, size?: number, unique?: boolean): string[];
    get(key: string): string;
  }
}
