// Shared pieces of the seeded fuzzers: the time budget and reproducible per-case randomness.
import { prng } from '../helpers/bad-frames.ts';

/** Seconds each fuzz target runs: short in CI, minutes via `npm run fuzz` (XPOLE_FUZZ_SECONDS=300). */
export const FUZZ_SECONDS = Number(process.env.XPOLE_FUZZ_SECONDS ?? 4);
/** Base seed; case i uses prng(FUZZ_SEED * 1_000_003 + i), so a failing case is replayed alone. */
export const FUZZ_SEED = Number(process.env.XPOLE_FUZZ_SEED ?? 1);

export function caseRng(i: number): () => number {
  return prng(FUZZ_SEED * 1_000_003 + i);
}

export function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)]!;
}

export function int(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

/** Runs `body(i)` for consecutive case numbers until the budget is spent; returns the count. */
export async function fuzzFor(seconds: number, body: (i: number) => Promise<void> | void): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let i = 0;
  do await body(i++);
  while (performance.now() < end);
  return i;
}

/** Vitest's timeout for a fuzz test: the budget plus room for the slowest single case. */
export const FUZZ_TIMEOUT_MS = FUZZ_SECONDS * 1000 + 60_000;
