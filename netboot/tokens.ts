// Per-node callback tokens: 256 random bits, compared in constant time.
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh token: 32 random bytes as 64 lower-case hex characters. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/**
 * True when `given` equals `expected`, in time independent of where they differ.
 * An empty `expected` (a revoked token) never matches. A length mismatch returns false, but still does one
 * full-length comparison so the content is never compared with an early exit.
 */
export function tokenMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b) && a.length > 0;
}
