/**
 * The small part of autocannon 8's programmatic API that the benchmark uses (autocannon ships no types).
 * See node_modules/autocannon/README.md for the full option and result lists.
 */
declare module 'autocannon' {
  namespace autocannon {
    interface Options {
      url: string;
      connections?: number;
      pipelining?: number;
      /** Seconds. */
      duration?: number;
      /** Seconds before a request counts as timed out. */
      timeout?: number;
      method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD';
      headers?: Record<string, string>;
      body?: string | Buffer;
    }

    /** Summary of an HDR histogram; percentiles are named `p50`, `p97_5`, `p99`, ... */
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      total: number;
      p50: number;
      p90: number;
      p99: number;
    }

    interface Result {
      url: string;
      /** Seconds actually run. */
      duration: number;
      errors: number;
      timeouts: number;
      mismatches: number;
      non2xx: number;
      resets: number;
      statusCodeStats: Record<string, { count: number }>;
      /** Milliseconds. */
      latency: Histogram;
      /** Per-second request samples; `total` is the number of completed requests. */
      requests: Histogram & { sent: number };
      /** Per-second byte samples; `total` is the number of bytes received. */
      throughput: Histogram;
    }

    /** The returned tracker is an event emitter that is also a thenable for the result. */
    interface Instance extends PromiseLike<Result> {
      stop(): void;
    }
  }

  function autocannon(options: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
