import { describe, expect, it } from 'vitest';
import {
  canonicalToHeatmap,
  DARK_KERNEL_RADIUS,
  darkStep,
  DEFAULT_SHEET_ORDER_PARAMS,
  decodeHeatmaps,
  gaussianKernel,
  heatmapToCanonical,
  heatmapToFrame,
  mergeMirrored,
  quarterOffset,
  sheetOrderCells,
} from '../src/vision/heatmap.ts';
import { boxToCanonical, toCanonical } from '../src/frame/orientation.ts';
import type { Sheet } from '../src/inspect/recipe.ts';
import { ORIENTATIONS, type Box } from '../src/types.ts';

const W = 32;
const H = 64;

/** A heatmap channel with a Gaussian of peak `peak` at continuous (cx, cy), cell centres at integers. */
function gaussianPlane(cx: number, cy: number, sigma: number, peak = 1): Float32Array {
  const hm = new Float32Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) hm[y * W + x] = peak * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma));
  }
  return hm;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('DARK decoding', () => {
  it('recovers sub-pixel Gaussian centres within 0.05 heatmap px', () => {
    const rand = rng(11);
    let worst = 0;
    for (let t = 0; t < 200; t++) {
      const cx = 3 + rand() * (W - 7);
      const cy = 3 + rand() * (H - 7);
      const sigma = 1.2 + rand() * 1.3; // the model's peaks are not exactly the training sigma
      const { hx, hy } = decodeHeatmaps(gaussianPlane(cx, cy, sigma), { k: 1, width: W, height: H }, { method: 'dark', sigma: 1.5 });
      worst = Math.max(worst, Math.hypot(hx[0]! - cx, hy[0]! - cy));
    }
    expect(worst).toBeLessThan(0.05);
  });

  it('decodes every channel independently and reports the peak as confidence', () => {
    const a = gaussianPlane(5.3, 40.7, 1.5, 0.9);
    const b = gaussianPlane(20.6, 10.2, 1.5, 0.4);
    const both = new Float32Array(2 * W * H);
    both.set(a, 0);
    both.set(b, W * H);
    const d = decodeHeatmaps(both, { k: 2, width: W, height: H }, { method: 'dark', sigma: 1.5 });
    expect(d.hx[0]).toBeCloseTo(5.3, 1);
    expect(d.hy[0]).toBeCloseTo(40.7, 1);
    expect(d.hx[1]).toBeCloseTo(20.6, 1);
    expect(d.hy[1]).toBeCloseTo(10.2, 1);
    // Peak = the largest sampled value, below the continuous peak since the centre is off-grid.
    expect(d.conf[0]).toBeCloseTo(Math.max(...a), 6);
    expect(d.conf[1]).toBeCloseTo(Math.max(...b), 6);
    expect(d.conf[0]).toBeGreaterThan(0.8);
    expect(d.conf[1]).toBeLessThan(0.4);
  });

  it('falls back to the argmax decoding on a flat (all-zero) heatmap and stays finite at the border', () => {
    const zero = decodeHeatmaps(new Float32Array(W * H), { k: 1, width: W, height: H }, { method: 'dark', sigma: 1.5 });
    expect([zero.hx[0], zero.hy[0], zero.conf[0]]).toEqual([0, 0, 0]);
    const edge = decodeHeatmaps(gaussianPlane(0.2, 63, 1.5), { k: 1, width: W, height: H }, { method: 'dark', sigma: 1.5 });
    expect(Math.abs(edge.hx[0]! - 0.2)).toBeLessThan(1);
    expect(Math.abs(edge.hy[0]! - 63)).toBeLessThan(1);
  });
});

describe('argmax decoding with the quarter offset', () => {
  it('moves 0.25 toward the higher neighbour, not at all when they tie', () => {
    const d = decodeHeatmaps(gaussianPlane(10.3, 20.8, 1.5), { k: 1, width: W, height: H }, { method: 'argmax', sigma: 1.5 });
    expect(d.hx[0]).toBe(10.25);
    expect(d.hy[0]).toBe(20.75);
    const tie = decodeHeatmaps(gaussianPlane(10, 20, 1.5), { k: 1, width: W, height: H }, { method: 'argmax', sigma: 1.5 });
    expect([tie.hx[0], tie.hy[0]]).toEqual([10, 20]);
    const left = decodeHeatmaps(gaussianPlane(10.6, 19.6, 1.5), { k: 1, width: W, height: H }, { method: 'argmax', sigma: 1.5 });
    expect([left.hx[0], left.hy[0]]).toEqual([10.75, 19.75]);
  });

  it('has no neighbour to look at on the border', () => {
    const hm = gaussianPlane(0, 0, 1.5);
    expect(quarterOffset(hm, W, H, 0, 0)).toEqual([0, 0]);
  });

  it('errs by up to a quarter cell where DARK errs by hundredths', () => {
    const rand = rng(5);
    let argErr = 0;
    let darkErr = 0;
    for (let t = 0; t < 100; t++) {
      const cx = 3 + rand() * (W - 7);
      const cy = 3 + rand() * (H - 7);
      const hm = gaussianPlane(cx, cy, 1.5);
      const a = decodeHeatmaps(hm, { k: 1, width: W, height: H }, { method: 'argmax', sigma: 1.5 });
      const d = decodeHeatmaps(hm, { k: 1, width: W, height: H }, { method: 'dark', sigma: 1.5 });
      argErr += Math.hypot(a.hx[0]! - cx, a.hy[0]! - cy) / 100;
      darkErr += Math.hypot(d.hx[0]! - cx, d.hy[0]! - cy) / 100;
    }
    expect(argErr).toBeGreaterThan(0.1);
    expect(argErr).toBeLessThan(0.3);
    expect(darkErr).toBeLessThan(argErr / 5);
  });
});

describe('heatmap <-> frame mapping (model contract)', () => {
  it('puts heatmap cell centres at bx + (i + 0.5) * bw / 32', () => {
    const cb: Box = [100, 50, 64, 256];
    expect(heatmapToCanonical(0, 0, cb, { width: W, height: H })).toEqual([101, 52]);
    expect(heatmapToCanonical(31, 63, cb, { width: W, height: H })).toEqual([163, 304]);
    expect(canonicalToHeatmap(101, 52, cb, { width: W, height: H })).toEqual([0, 0]);
  });

  it('round-trips a frame point through every orientation, for the default, a taller and a stride-2 heatmap', () => {
    const frame = { width: 1000, height: 700 };
    const box: Box = [310.5, 120.25, 180, 400];
    for (const size of [{ width: W, height: H }, { width: W, height: 96 }, { width: 2 * W, height: 2 * H }]) {
      for (const o of ORIENTATIONS) {
        const cb = boxToCanonical(box, frame.width, frame.height, o);
        const p: [number, number] = [350.3, 300.7];
        const [xc, yc] = toCanonical(p[0], p[1], frame.width, frame.height, o);
        const [hx, hy] = canonicalToHeatmap(xc, yc, cb, size);
        expect(heatmapToCanonical(hx, hy, cb, size)[1]).toBeCloseTo(cb[1] + ((hy + 0.5) * cb[3]) / size.height, 9);
        const back = heatmapToFrame(hx, hy, box, o, frame, size);
        expect(back[0]).toBeCloseTo(p[0], 9);
        expect(back[1]).toBeCloseTo(p[1], 9);
      }
    }
  });
});

describe('DARK next to another sheet', () => {
  it('keeps a pole with a weaker answer one pitch away on one side where it is; a 5-cell kernel pulls it', () => {
    // An edge sheet's channel: its own peak, and the next sheet's weak echo on one side only.
    const hm = gaussianPlane(12.3, 20.4, 1.5);
    const echo = gaussianPlane(12.3, 25.4, 1.5, 0.3);
    for (let i = 0; i < hm.length; i++) hm[i]! += echo[i]!;
    const d = decodeHeatmaps(hm, { k: 1, width: W, height: H }, { method: 'dark', sigma: 1.5 });
    expect(DARK_KERNEL_RADIUS).toBe(1);
    expect(Math.abs(d.hy[0]! - 20.4)).toBeLessThan(0.05);
    const wide = darkStep(hm, W, H, 12, 20, gaussianKernel(1.5))!;
    expect(wide[1] - 20.4).toBeGreaterThan(0.1);
  });
});

describe('flip test (mergeMirrored)', () => {
  const K = 3;
  const stack = (planes: Float32Array[]): Float32Array => {
    const out = new Float32Array(K * W * H);
    planes.forEach((p, c) => out.set(p, c * W * H));
    return out;
  };
  const poles: [number, number][] = [[20.3, 7.6], [12.8, 30.2], [25.1, 55.4]];

  it('maps the mirrored view back: channel K-1-c and row H-1-j are pole c', () => {
    const direct = stack(poles.map(([x, y]) => gaussianPlane(x, y, 1.5)));
    // The mirrored crop sees pole c upside down and in channel K-1-c.
    const mirrored = stack(poles.map((_, c) => poles[K - 1 - c]!).map(([x, y]) => gaussianPlane(x, H - 1 - y, 1.5)));
    const merged = mergeMirrored(direct, mirrored, { k: K, width: W, height: H });
    const d = decodeHeatmaps(merged, { k: K, width: W, height: H }, { method: 'dark', sigma: 1.5 });
    poles.forEach(([x, y], c) => {
      expect(Math.abs(d.hx[c]! - x)).toBeLessThan(0.05);
      expect(Math.abs(d.hy[c]! - y)).toBeLessThan(0.05);
      expect(d.conf[c]!).toBeGreaterThan(0.9);
    });
  });

  it('averages two views that disagree, and halves the confidence of a pole one view does not see', () => {
    const direct = stack([gaussianPlane(10, 20, 1.5), gaussianPlane(10, 40, 1.5), gaussianPlane(10, 60, 1.5)]);
    const mirrored = stack([
      new Float32Array(W * H), // pole 2 unseen in the mirrored view
      gaussianPlane(10, H - 1 - 41, 1.5), // pole 1 one cell lower
      gaussianPlane(10, H - 1 - 20, 1.5),
    ]);
    const d = decodeHeatmaps(mergeMirrored(direct, mirrored, { k: K, width: W, height: H }), { k: K, width: W, height: H }, { method: 'dark', sigma: 1.5 });
    expect(d.hy[0]!).toBeCloseTo(20, 1);
    expect(d.hy[1]!).toBeGreaterThan(40.3);
    expect(d.hy[1]!).toBeLessThan(40.7);
    expect(d.conf[2]!).toBeCloseTo(0.5, 2);
  });

  it('rejects heatmaps of the wrong size', () => {
    expect(() => mergeMirrored(new Float32Array(10), new Float32Array(K * W * H), { k: K, width: W, height: H })).toThrow(RangeError);
  });
});

describe('decoding in the sheets\' order (sheetOrderCells)', () => {
  /** Channels A0 C0 A1 C1 ... A(n-1) over a stack whose anode tips stand at column 25, cathode
   *  tips at column 12, anode i at row 4 + 4i and cathode i at row 6 + 4i; `extra` adds a second
   *  peak to a channel. */
  function stack(anodes: number, extra: { channel: number; at: [number, number]; peak: number; own?: number }[] = []) {
    const kinds: Sheet[] = [];
    const planes: Float32Array[] = [];
    for (let i = 0; i < 2 * anodes - 1; i++) {
      const anode = i % 2 === 0;
      kinds.push(anode ? 'A' : 'C');
      const j = i >> 1;
      const own = extra.find((e) => e.channel === i)?.own ?? 1;
      const plane = gaussianPlane(anode ? 25 : 12, anode ? 4 + 4 * j : 6 + 4 * j, 1.5, own);
      for (const e of extra.filter((e) => e.channel === i)) {
        const other = gaussianPlane(e.at[0], e.at[1], 1.5, e.peak);
        for (let c = 0; c < plane.length; c++) plane[c] = Math.max(plane[c]!, other[c]!);
      }
      planes.push(plane);
    }
    const data = new Float32Array(planes.length * W * H);
    planes.forEach((pl, i) => data.set(pl, i * W * H));
    return { data, shape: { k: planes.length, width: W, height: H }, kinds };
  }
  const cellOf = (x: number, y: number) => y * W + x;
  const argmaxes = (data: Float32Array, k: number) =>
    Array.from({ length: k }, (_, c) => {
      const hm = data.subarray(c * W * H, (c + 1) * W * H);
      return hm.indexOf(Math.max(...hm));
    });

  it('gives a channel whose argmax is its neighbour\'s tip its own sheet\'s peak', () => {
    // A3 (channel 6, row 16) answers a little more at A4's tip (row 20) than at its own.
    const { data, shape, kinds } = stack(8, [{ channel: 6, at: [25, 20], peak: 1, own: 0.95 }]);
    expect(argmaxes(data, shape.k)[6]).toBe(cellOf(25, 20));
    const cells = sheetOrderCells(data, shape, kinds);
    expect(cells[6]).toBe(cellOf(25, 16));
    // Every other channel keeps its argmax, and the decoding follows the chosen cell.
    const tops = argmaxes(data, shape.k);
    for (let c = 0; c < shape.k; c++) if (c !== 6) expect(cells[c]).toBe(tops[c]);
    const d = decodeHeatmaps(data, shape, { method: 'dark', sigma: 1.5, cells });
    expect(d.hy[6]).toBeCloseTo(16, 1);
    expect(d.conf[6]).toBeCloseTo(0.95, 2);
  });

  it('leaves a clear winner alone: the second peak must nearly match the first', () => {
    // A second peak at the neighbour's tip of 0.3 against its own 1.0: the argmax already is the sheet's.
    const { data, shape, kinds } = stack(8, [{ channel: 6, at: [25, 20], peak: 0.3 }]);
    expect(Array.from(sheetOrderCells(data, shape, kinds))).toEqual(argmaxes(data, shape.k));
  });

  it('does not move confident poles for a weak channel (a missing sheet) whose peaks are out of order', () => {
    // C2 (channel 5) is missing: its only answers are weak and far up the stack.
    const { data, shape, kinds } = stack(8, [{ channel: 5, at: [12, 6], peak: 0.12, own: 0.08 }]);
    const cells = sheetOrderCells(data, shape, kinds);
    const tops = argmaxes(data, shape.k);
    for (let c = 0; c < shape.k; c++) if (c !== 5) expect(cells[c]).toBe(tops[c]);
  });

  it('lets tips far apart along the sheets lean past each other', () => {
    // C3 (channel 7) is recessed to column 1 and leans one row above C2's row: 11 columns apart.
    const { data, shape, kinds } = stack(8, [{ channel: 7, at: [1, 13], peak: 1, own: 0.6 }]);
    expect(argmaxes(data, shape.k)[7]).toBe(cellOf(1, 13));
    expect(sheetOrderCells(data, shape, kinds)[7]).toBe(cellOf(1, 13));
    // Without the allowance the order would pull it back onto its sheet's weaker answer.
    expect(sheetOrderCells(data, shape, kinds, { ...DEFAULT_SHEET_ORDER_PARAMS, lean: 0 })[7]).toBe(cellOf(12, 18));
  });

  it('moves a pole to a neighbouring sheet, never across the stack', () => {
    // A7, the last anode (channel 14), has no tip of its own in view: it answers at A6's tip and,
    // a little less, 4 pitches further down, where nothing of the recipe is. Its shared tip is left
    // to the tip checks; the peak across the stack is no candidate.
    const { data, shape, kinds } = stack(8, [
      { channel: 14, at: [25, 28], peak: 1, own: 0 },
      { channel: 14, at: [25, 44], peak: 0.9, own: 0 },
    ]);
    expect(sheetOrderCells(data, shape, kinds)[14]).toBe(cellOf(25, 28));
    expect(sheetOrderCells(data, shape, kinds, { ...DEFAULT_SHEET_ORDER_PARAMS, reach: 10 })[14]).toBe(cellOf(25, 44));
  });

  it('keeps the argmaxes of a kind with fewer than 2 confident channels, and checks its arguments', () => {
    const { data, shape, kinds } = stack(3);
    const dim = data.map((v) => v * 0.3);
    expect(Array.from(sheetOrderCells(dim, shape, kinds))).toEqual(argmaxes(dim, shape.k));
    expect(() => sheetOrderCells(data, shape, kinds.slice(1))).toThrow(/4 sheet kinds for 5 channels/);
  });
});
