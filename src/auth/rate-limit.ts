// Failed sign-ins and token checks, counted per address (docs/api.md, "Who may do what": 429
// rate_limited). In memory, per replica: a guesser spread over replicas gets the limit on each,
// which still turns millions of guesses into a few dozen per window.

export interface RateLimiterOptions {
  /** Failures allowed in `windowMs` before the address is refused. */
  maxFailures?: number;
  windowMs?: number;
  now?: () => number;
}

export interface RateLimiter {
  /** True while the address has used up its failures: answer 429 without checking anything. */
  blocked(address: string): boolean;
  fail(address: string): void;
  /** Seconds until the address may try again (for Retry-After). */
  retryAfter(address: string): number;
}

export const DEFAULT_MAX_FAILURES = 20;
export const DEFAULT_WINDOW_MS = 10 * 60 * 1000;
/** Addresses remembered at most; the oldest are forgotten first (a flood of addresses). */
const MAX_ADDRESSES = 10_000;

export function rateLimiter(options: RateLimiterOptions = {}): RateLimiter {
  const max = options.maxFailures ?? DEFAULT_MAX_FAILURES;
  const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
  const now = options.now ?? (() => Date.now());
  const failures = new Map<string, number[]>();

  const recent = (address: string): number[] => {
    const times = failures.get(address);
    if (!times) return [];
    const from = now() - windowMs;
    const kept = times.filter((t) => t > from);
    if (kept.length === 0) failures.delete(address);
    else failures.set(address, kept);
    return kept;
  };

  return {
    blocked: (address) => recent(address).length >= max,
    fail(address) {
      const times = recent(address);
      times.push(now());
      failures.delete(address); // re-insert: Map order is then least recently failed first
      failures.set(address, times.slice(-max));
      if (failures.size > MAX_ADDRESSES) {
        const oldest = failures.keys().next().value;
        if (oldest !== undefined) failures.delete(oldest);
      }
    },
    retryAfter(address) {
      const first = recent(address)[0];
      return first === undefined ? 0 : Math.max(1, Math.ceil((first + windowMs - now()) / 1000));
    },
  };
}
