// Seeded fuzzing of the addon's pixel entry points besides the corners: the ROI stage's loops
// (stripeMean, rectSums, greyRange, halfSize), the model crop (cropForModel, cropForModelAsync) and
// the polisher's patches (samplePatches). Frames of random size and depth; maps with any unit
// coefficients and any offset, windows, boxes and points anywhere, inside the frame or far off it.
// The properties: an invalid call throws a TypeError or RangeError (never a crash, never another
// error); a valid call gives finite values of the promised size, the sums and the binning equal
// a plain TypeScript reference, and the crop is the same off the event loop as on it.
// A failure prints the case number: XPOLE_FUZZ_SEED=<seed> and that number replay it.
import { describe, expect, it } from 'vitest';
import { native } from '../../src/native.ts';
import { caseRng, FUZZ_SECONDS, FUZZ_SEED, FUZZ_TIMEOUT_MS, fuzzFor, int, pick } from './fuzz.ts';

type Rnd = () => number;
type Pixels = Uint8Array | Uint16Array;

function frame(rnd: Rnd): { px: Pixels; width: number; height: number; depth: 8 | 16 } {
  const depth = pick(rnd, [8, 16] as const);
  const width = pick(rnd, [int(rnd, 1, 4), int(rnd, 2, 90), int(rnd, 90, 400)]);
  const height = pick(rnd, [int(rnd, 1, 4), int(rnd, 2, 90), int(rnd, 90, 300)]);
  const max = depth === 8 ? 255 : 65535;
  const px = depth === 8 ? new Uint8Array(width * height) : new Uint16Array(width * height);
  // Noise, a ramp or the extremes: sums and means must hold at both ends of the range.
  const kind = pick(rnd, ['noise', 'ramp', 'extremes'] as const);
  for (let i = 0; i < px.length; i++) {
    px[i] = kind === 'noise' ? int(rnd, 0, max) : kind === 'ramp' ? Math.floor(((i % width) * max) / Math.max(1, width - 1)) : rnd() < 0.5 ? 0 : max;
  }
  return { px, width, height, depth };
}

/** A canonical -> frame map: unit coefficients (an orientation's, or any other), any finite offset. */
function affine(rnd: Rnd, width: number, height: number): Float64Array {
  const unit = () => pick(rnd, [-1, 0, 1]);
  // Up to the addon's limit of 4 x 65536 px off any frame; beyond it is invalidCall's.
  const offset = (side: number) => pick(rnd, [0, side - 1, (rnd() - 0.5) * 4 * side, (rnd() - 0.5) * 5e5, pick(rnd, [-262144, 262144])]);
  const turn = pick(rnd, [
    [1, 0, 0, 1], [-1, 0, 0, 1], [0, 1, -1, 0], [0, -1, 1, 0], [1, 0, 0, -1], [0, 1, 1, 0], // orientations and mirrors
    [unit(), unit(), unit(), unit()],
  ]);
  return Float64Array.of(offset(width), offset(height), ...turn);
}

/** A coordinate in the frame, near it, or far off it (within the addon's limit). */
function coordinate(rnd: Rnd, side: number): number {
  return pick(rnd, [rnd() * side, -rnd() * 50, side + rnd() * 50, (rnd() - 0.5) * 2e5]);
}

/** Beyond 4 x 65536 px of any frame: refused, where the pixel indices would overflow. */
const FAR = [1e300, -1e300, 262145, -3e5, 1e6, 2 ** 62];

const finite = (v: Float32Array | Float64Array) => v.every((x) => Number.isFinite(x));

/** One valid call of each entry point on a random frame; what went wrong, or nothing. */
async function validCalls(rnd: Rnd): Promise<string[]> {
  const { px, width, height, depth } = frame(rnd);
  const full = depth === 8 ? 255 : 65535;
  const tag = `${width}x${height} d${depth}`;
  const bad: string[] = [];

  const m = affine(rnd, width, height);
  const win = Float64Array.of(coordinate(rnd, width), coordinate(rnd, width), coordinate(rnd, height), coordinate(rnd, height));
  const smooth = 1 + 2 * int(rnd, 0, 12);
  const stripe = native.stripeMean(px, width, height, depth, m, win, smooth);
  // A mean of differences of pixel means: within plus or minus full scale.
  if (!(Math.abs(stripe) <= full)) bad.push(`${tag}: stripeMean ${stripe} for map [${m}] window [${win}]`);

  const x0 = int(rnd, 0, width - 1), x1 = int(rnd, x0, width - 1), y0 = int(rnd, 0, height - 1), y1 = int(rnd, y0, height - 1);
  const byRow = rnd() < 0.5;
  const sums = native.rectSums(px, width, height, depth, x0, y0, x1, y1, byRow);
  for (let k = 0; k < sums.length; k++) {
    let s = 0;
    if (byRow) for (let x = x0; x <= x1; x++) s += px[(y0 + k) * width + x]!;
    else for (let y = y0; y <= y1; y++) s += px[y * width + x0 + k]!;
    if (sums[k] !== s) {
      bad.push(`${tag}: rectSums (${x0}, ${y0})-(${x1}, ${y1}) ${byRow ? 'row' : 'column'} ${k}: ${sums[k]} against ${s}`);
      break;
    }
  }

  const step = pick(rnd, [1, int(rnd, 1, 64), int(rnd, 1, px.length + 10)]);
  const [lo, hi] = native.greyRange(px, depth, step);
  const taken = Array.from({ length: Math.ceil(px.length / step) }, (_, i) => px[i * step]!).sort((a, b) => a - b);
  const at = (q: number) => taken[Math.min(taken.length - 1, Math.floor(q * taken.length))];
  if (lo !== at(0.005) || hi !== at(0.995)) bad.push(`${tag}: greyRange step ${step} gave [${lo}, ${hi}], sorting gives [${at(0.005)}, ${at(0.995)}]`);

  if (width >= 2 && height >= 2) {
    const half = native.halfSize(px, width, height, depth);
    const w = width >> 1, h = height >> 1;
    if (half.length !== w * h || half.constructor !== px.constructor) bad.push(`${tag}: halfSize gave ${half.constructor.name}(${half.length})`);
    for (let k = 0; k < 16 && half.length === w * h; k++) {
      const x = int(rnd, 0, w - 1), y = int(rnd, 0, h - 1), i = 2 * y * width + 2 * x;
      const want = (px[i]! + px[i + 1]! + px[i + width]! + px[i + width + 1]! + 2) >> 2;
      if (half[y * w + x] !== want) {
        bad.push(`${tag}: halfSize at (${x}, ${y}) gave ${half[y * w + x]}, want ${want}`);
        break;
      }
    }
  }

  // The crop needs a map that keeps the canonical axes on the frame's axes (the addon refuses others).
  const axes = m[2] !== 0 && m[5] !== 0 && m[3] === 0 && m[4] === 0 ? m : Float64Array.of(m[0]!, m[1]!, 0, pick(rnd, [-1, 1]), pick(rnd, [-1, 1]), 0);
  const box = Float64Array.of(coordinate(rnd, width), coordinate(rnd, height), 0.5 + rnd() * pick(rnd, [10, 400, 5e4]), 0.5 + rnd() * pick(rnd, [10, 400, 5e4]));
  const outW = int(rnd, 1, 40), outH = int(rnd, 1, 40), samples = int(rnd, 1, 5);
  const out = new Float32Array(outW * outH + int(rnd, 0, 3));
  native.cropForModel(px, width, height, depth, axes, box, outW, outH, samples, out);
  const async = await native.cropForModelAsync(px, width, height, depth, axes, box, outW, outH, samples, rnd() < 0.5);
  if (async.length !== outW * outH || !finite(async)) bad.push(`${tag}: cropForModelAsync gave ${async.length} values (finite: ${finite(async)})`);
  else if (async.some((v, i) => v !== out[i])) bad.push(`${tag}: the crop off the event loop differs, map [${axes}] box [${box}]`);

  const n = int(rnd, 0, 6), side = int(rnd, 1, 12), stride = side * side + int(rnd, 0, 5);
  const xs = Float64Array.from({ length: n }, () => coordinate(rnd, width));
  const ys = Float64Array.from({ length: n }, () => coordinate(rnd, height));
  const patches = new Float32Array(Math.max(0, (n - 1) * stride + side * side));
  native.samplePatches(px, width, height, depth, m, xs, ys, side, stride, patches);
  // Bilinear samples of clamped pixels: within the frame's range.
  if (!patches.every((v) => v >= 0 && v <= full)) bad.push(`${tag}: samplePatches left the pixel range, map [${m}]`);
  return bad;
}

const BAD_NUMBERS: unknown[] = [-1, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 1e300, '3', null, undefined, {}];

/** A call of one entry point broken in one chosen way. */
function invalidCall(rnd: Rnd): { call: () => unknown; what: string } {
  const { px, width, height, depth } = frame(rnd);
  const m = Float64Array.of(0, 0, 1, 0, 0, 1);
  const wrongPixels = pick(rnd, [depth === 8 ? new Uint16Array(px.length) : new Uint8Array(px.length), new Float32Array(px.length), px.subarray(0, px.length - 1), Array.from(px), null]);
  const far = pick(rnd, FAR);
  const badAffine = pick(rnd, [
    Float64Array.of(0, 0, 2, 0, 0, 1), Float64Array.of(0, 0, 0.5, 0, 0, 1), Float64Array.of(NaN, 0, 1, 0, 0, 1), Float64Array.of(0, 0, 1, 0),
    new Float32Array(6), [0, 0, 1, 0, 0, 1], Float64Array.of(far, 0, 1, 0, 0, 1), Float64Array.of(0, far, 0, 1, 1, 0),
  ]);
  const badNumber = pick(rnd, BAD_NUMBERS) as number;
  const which = pick(rnd, ['stripe', 'rect', 'grey', 'half', 'crop', 'patches'] as const);
  const how = int(rnd, 0, 3);
  const what = `${which} #${how}`;
  switch (which) {
    case 'stripe': {
      const args: unknown[] = [px, width, height, depth, m, Float64Array.of(0, 5, 0, 5), 9];
      if (how === 0) args[0] = wrongPixels;
      else if (how === 1) args[4] = badAffine;
      else if (how === 2) args[5] = pick(rnd, [Float64Array.of(0, 5, 0), Float64Array.of(0, Infinity, 0, 5), Float64Array.of(0, 5, far, 5)]);
      else args[6] = pick(rnd, [0, 2, 256, badNumber]);
      return { call: () => (native.stripeMean as (...a: unknown[]) => unknown)(...args), what };
    }
    case 'rect': {
      const args: unknown[] = [px, width, height, depth, 0, 0, width - 1, height - 1, true];
      if (how === 0) args[0] = wrongPixels;
      else if (how === 1) args[int(rnd, 4, 7)] = pick(rnd, [width + height, -1, badNumber]);
      else if (how === 2) args[8] = pick(rnd, [1, 'yes', null]);
      else args[3] = pick(rnd, [12, 32, badNumber]);
      return { call: () => (native.rectSums as (...a: unknown[]) => unknown)(...args), what };
    }
    case 'grey': {
      const args: unknown[] = [px, depth, pick(rnd, [0, badNumber])];
      if (how === 0) args[0] = pick(rnd, [new Float32Array(4), null, 'pixels']);
      else if (how === 1) args[1] = 12;
      return { call: () => (native.greyRange as (...a: unknown[]) => unknown)(...args), what };
    }
    case 'half': {
      const args: unknown[] = [px, width, height, depth];
      if (how === 0) args[0] = wrongPixels;
      else args[int(rnd, 1, 2)] = pick(rnd, [0, 1, 65537, badNumber]);
      return { call: () => (native.halfSize as (...a: unknown[]) => unknown)(...args), what };
    }
    case 'crop': {
      const args: unknown[] = [px, width, height, depth, m, Float64Array.of(0, 0, 10, 10), 8, 8, 1, new Float32Array(64)];
      if (how === 0) args[4] = pick(rnd, [badAffine, Float64Array.of(0, 0, 1, 1, 0, 1), Float64Array.of(0, 0, 1, 0, 1, 1)]);
      else if (how === 1) {
        args[5] = pick(rnd, [Float64Array.of(0, 0, 0, 10), Float64Array.of(0, 0, -1, 10), Float64Array.of(0, NaN, 10, 10), Float64Array.of(0, 0, 10), Float64Array.of(far, 0, 10, 10), Float64Array.of(0, 0, 10, Math.abs(far))]);
      }
      else if (how === 2) args[int(rnd, 6, 8)] = pick(rnd, [0, 5000, badNumber]);
      else args[9] = pick(rnd, [new Float32Array(63), new Float64Array(64), null]);
      const sync = rnd() < 0.5;
      return { call: sync ? () => (native.cropForModel as (...a: unknown[]) => unknown)(...args) : () => (native.cropForModelAsync as (...a: unknown[]) => unknown)(...args.slice(0, 9)), what: `${what} ${sync ? 'sync' : 'async'}` };
    }
    case 'patches': {
      const args: unknown[] = [px, width, height, depth, m, Float64Array.of(1, 2), Float64Array.of(1, 2), 4, 16, new Float32Array(32)];
      if (how === 0) args[4] = badAffine;
      else if (how === 1) args[int(rnd, 5, 6)] = pick(rnd, [Float64Array.of(1), Float64Array.of(NaN, 2), Float32Array.of(1, 2), null, Float64Array.of(1, far)]);
      else if (how === 2) args[int(rnd, 7, 8)] = pick(rnd, [0, 3, 2000, badNumber]);
      else args[9] = pick(rnd, [new Float32Array(19), new Float64Array(32), null]);
      return { call: () => (native.samplePatches as (...a: unknown[]) => unknown)(...args), what };
    }
  }
}

describe('fuzz: the addon\'s pixel entry points (ROI loops, model crop, polisher patches)', () => {
  it(
    `valid calls give finite values equal to the references, invalid ones a TypeError or RangeError (${FUZZ_SECONDS} s, seed ${FUZZ_SEED})`,
    async () => {
      const failures: string[] = [];
      const tally = { valid: 0, rejected: 0 };
      const count = await fuzzFor(FUZZ_SECONDS, async (i) => {
        const rnd = caseRng(i);
        if (rnd() < 0.35) {
          const { call, what } = invalidCall(rnd);
          try {
            await call();
            // Some breaks are valid by chance (a bad number that happens to fit): only a wrong kind of error counts.
          } catch (e) {
            if (e instanceof TypeError || e instanceof RangeError) tally.rejected++;
            else failures.push(`case ${i} (${what}): threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
          }
          return;
        }
        try {
          failures.push(...(await validCalls(rnd)).map((f) => `case ${i}: ${f}`));
          tally.valid++;
        } catch (e) {
          failures.push(`case ${i}: a valid call threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
        }
      });
      console.log(`pixel entry points fuzz: ${count} cases, seed ${FUZZ_SEED}:`, JSON.stringify(tally));
      expect(failures.slice(0, 20)).toEqual([]);
      expect(tally.valid).toBeGreaterThan(10);
      expect(tally.rejected).toBeGreaterThan(10);
    },
    FUZZ_TIMEOUT_MS,
  );
});
