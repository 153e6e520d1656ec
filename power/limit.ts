// Concurrency limits for BMC calls on one controller:
//  - a process-wide cap on running ipmitool processes (500 simultaneous power calls would otherwise fork 500
//    ipmitools on a 2-core controller and time out against each other);
//  - one operation at a time per BMC (BMCs have few session slots, and powerOnForPxe's
//    set-bootdev → status → cycle sequence must not interleave with another caller's power off).
import pLimit, { type LimitFunction } from 'p-limit';

export type BmcLimiter = LimitFunction;

export const DEFAULT_BMC_CONCURRENCY = 32;

export function createBmcLimiter(concurrency = DEFAULT_BMC_CONCURRENCY): BmcLimiter {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`BMC concurrency: must be a positive integer, got ${concurrency}`);
  }
  return pLimit(concurrency);
}

let shared: BmcLimiter | undefined;

/** The controller-wide limiter (created on first use; PXEFLOW_BMC_CONCURRENCY overrides the default). */
export function sharedBmcLimiter(): BmcLimiter {
  if (!shared) {
    const fromEnv = Number(process.env.PXEFLOW_BMC_CONCURRENCY);
    shared = createBmcLimiter(Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_BMC_CONCURRENCY);
  }
  return shared;
}

/** Serializes async work per key (here: per BMC "address:port"); different keys run in parallel. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    // Forget the key once nothing else queued behind us, so the map does not grow with every BMC ever seen.
    tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  get size(): number {
    return this.tails.size;
  }
}

const sharedMutex = new KeyedMutex();

export function sharedBmcMutex(): KeyedMutex {
  return sharedMutex;
}
