// Seeded fuzzing of decodeFrame over mutated valid PNG, TIFF, JPEG and BMP bytes. The property:
// a valid Image within the limits, or a FrameError with a decode reason; anything else (a
// TypeError, RangeError, a hang or a crash of the process) is a bug. A failure prints the case
// number: XPOLE_FUZZ_SEED=<seed> and that number replay it.
import { describe, expect, it } from 'vitest';
import { FrameError } from '../../src/errors.ts';
import { decodeFrame, SPEC_LIMITS } from '../../src/frame/decode.ts';
import { crc32, validFrames } from '../helpers/bad-frames.ts';
import { caseRng, FUZZ_SECONDS, FUZZ_SEED, FUZZ_TIMEOUT_MS, fuzzFor, int, pick } from './fuzz.ts';

// The fuzz frames are 320x288; smaller minimum so mutations of the body, not the size check, are reached.
const LIMITS = { minSide: 16, maxSide: SPEC_LIMITS.maxSide };
const DECODE_REASONS = new Set(['DECODE_ERROR', 'BAD_FRAME', 'FRAME_TOO_LARGE']);
/** A hang detector, not a speed goal: generous for a loaded 2-core machine. */
const SLOW_CASE_MS = 5000;
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING32 = [0, 1, 255, 256, 8192, 8193, 65535, 0x7fffffff, 0x80000000, 0xffffffff];

const seeds = await validFrames();

/** Re-computes every PNG chunk CRC so that mutations reach the chunk parsers instead of the CRC check. */
function fixPngCrcs(b: Buffer): void {
  let o = 8;
  while (o + 12 <= b.length) {
    const len = b.readUInt32BE(o);
    if (o + 12 + len > b.length) return;
    b.writeUInt32BE(crc32(b.subarray(o + 4, o + 8 + len)), o + 8 + len);
    o += 12 + len;
  }
}

function mutate(seed: Buffer, rnd: () => number): { bytes: Buffer; how: string } {
  let b = Buffer.from(seed);
  const steps: string[] = [];
  const n = int(rnd, 1, 4);
  for (let k = 0; k < n; k++) {
    // Headers carry the fields that decide allocation and indexing: aim half the mutations there.
    const head = rnd() < 0.5;
    const at = head ? int(rnd, 0, Math.min(b.length - 1, 160)) : int(rnd, 0, b.length - 1);
    const op = pick(rnd, ['flip', 'byte', 'u32le', 'u32be', 'cut', 'insert', 'delete', 'repeat'] as const);
    switch (op) {
      case 'flip': b[at]! ^= 1 << int(rnd, 0, 7); break;
      case 'byte': b[at] = pick(rnd, INTERESTING); break;
      case 'u32le': if (at + 4 <= b.length) b.writeUInt32LE(pick(rnd, INTERESTING32), at); break;
      case 'u32be': if (at + 4 <= b.length) b.writeUInt32BE(pick(rnd, INTERESTING32), at); break;
      case 'cut': b = b.subarray(0, at); break;
      case 'insert': b = Buffer.concat([b.subarray(0, at), Buffer.alloc(int(rnd, 1, 64), int(rnd, 0, 255)), b.subarray(at)]); break;
      case 'delete': b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + int(rnd, 1, 64)))]); break;
      case 'repeat': b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 256), b.subarray(at)]); break;
    }
    steps.push(`${op}@${at}`);
  }
  if (seed[0] === 0x89 && rnd() < 0.7) {
    fixPngCrcs(b);
    steps.push('crc');
  }
  return { bytes: b, how: steps.join(' ') };
}

describe('decodeFrame fuzz', () => {
  it(
    `keeps its contract on mutated PNG/TIFF/JPEG/BMP bytes (${FUZZ_SECONDS} s, seed ${FUZZ_SEED})`,
    async () => {
      const outcomes: Record<string, number> = {};
      const failures: string[] = [];
      const count = await fuzzFor(FUZZ_SECONDS, async (i) => {
        const rnd = caseRng(i);
        const seed = seeds[i % seeds.length]!;
        const { bytes, how } = mutate(seed.bytes, rnd);
        const t0 = performance.now();
        try {
          const img = await decodeFrame(bytes, LIMITS);
          const ok =
            (img.depth === 8 || img.depth === 16) &&
            img.width >= LIMITS.minSide && img.height >= LIMITS.minSide &&
            img.width <= LIMITS.maxSide && img.height <= LIMITS.maxSide &&
            img.pixels.length === img.width * img.height &&
            img.pixels instanceof (img.depth === 16 ? Uint16Array : Uint8Array);
          if (!ok) failures.push(`case ${i} (${seed.name}: ${how}): an inconsistent Image ${img.width}x${img.height}x${img.depth}`);
          outcomes.decoded = (outcomes.decoded ?? 0) + 1;
        } catch (e) {
          if (e instanceof FrameError && DECODE_REASONS.has(e.reason)) {
            outcomes[e.reason] = (outcomes[e.reason] ?? 0) + 1;
          } else {
            failures.push(`case ${i} (${seed.name}: ${how}): ${(e as Error)?.name}: ${(e as Error)?.message}`);
          }
        }
        // A 320x288 frame decodes in milliseconds; seconds mean a header sent the decoder astray.
        const ms = performance.now() - t0;
        if (ms > SLOW_CASE_MS) failures.push(`case ${i} (${seed.name}: ${how}): took ${ms.toFixed(0)} ms`);
      });
      console.log(`decode fuzz: ${count} cases, seed ${FUZZ_SEED}:`, JSON.stringify(outcomes));
      expect(failures).toEqual([]);
      // The mutations must reach both outcomes, or the fuzzer tests nothing.
      expect(outcomes.decoded ?? 0).toBeGreaterThan(0);
      expect(outcomes.DECODE_ERROR ?? 0).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT_MS,
  );
});
