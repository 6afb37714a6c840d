import { describe, expect, it } from 'vitest';
import {
  DEFAULT_REFINE_PARAMS,
  meanFeature,
  nearestCorner,
  patchFeature,
  refinePoles,
  similarity,
  subpixelCorner,
} from '../src/vision/refine.ts';
import type { Corners, Image } from '../src/types.ts';

function corners(points: [number, number][]): Corners {
  const n = points.length;
  const c: Corners = {
    count: n,
    x: new Float32Array(n),
    y: new Float32Array(n),
    score: new Float32Array(n),
    harris: new Float32Array(n),
    angle: new Float32Array(n),
  };
  points.forEach(([x, y], i) => {
    c.x[i] = x;
    c.y[i] = y;
  });
  return c;
}

function blank(width: number, height: number, value: number): Image {
  return { width, height, depth: 8, pixels: new Uint8Array(width * height).fill(value) };
}

function fillRect(img: Image, x0: number, y0: number, x1: number, y1: number, v: number): void {
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) img.pixels[y * img.width + x] = v;
}

describe('nearestCorner', () => {
  const c = corners([[10, 10], [13, 10], [10, 14], [30, 30]]);
  it('finds the nearest corner within the radius, inclusive', () => {
    expect(nearestCorner(c, 12, 10, 5)).toBe(1);
    expect(nearestCorner(c, 10, 12.5, 5)).toBe(2);
    expect(nearestCorner(c, 30, 26, 4)).toBe(3);
    expect(nearestCorner(c, 30, 25.9, 4)).toBe(-1);
  });
  it('looks only at the first `limit` corners (the N strongest)', () => {
    expect(nearestCorner(c, 12.9, 10, 5, 1)).toBe(0);
    expect(nearestCorner(c, 30, 30, 5, 3)).toBe(-1);
  });
});

describe('patch features and similarity', () => {
  it('is a normalized histogram of the patch over the given range', () => {
    const img = blank(40, 40, 0);
    fillRect(img, 20, 0, 39, 39, 200); // right half bright
    const f = patchFeature(img, 20, 20, 2, 4, [0, 200]); // 5x5 patch: columns 18,19 dark, 20..22 bright
    expect(Array.from(f)).toEqual([10 / 25, 0, 0, 15 / 25]);
    expect(f.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    // Near the border the patch is edge-clamped, not shrunk: still 25 samples.
    const g = patchFeature(img, 0, 0, 2, 4, [0, 200]);
    expect(Array.from(g)).toEqual([1, 0, 0, 0]);
  });

  it('scores histogram intersection: 1 for equal, 0 for disjoint, symmetric in between', () => {
    const a = Float64Array.of(0.5, 0.5, 0, 0);
    const b = Float64Array.of(0, 0, 0.5, 0.5);
    const c = Float64Array.of(0.25, 0.25, 0.25, 0.25);
    expect(similarity(a, a)).toBe(1);
    expect(similarity(a, b)).toBe(0);
    expect(similarity(a, c)).toBe(0.5);
    expect(similarity(c, a)).toBe(similarity(a, c));
  });

  it('averages features into a reference that is again normalized', () => {
    const m = meanFeature([Float64Array.of(1, 0, 0), Float64Array.of(0, 0.5, 0.5)], 3);
    expect(Array.from(m)).toEqual([0.5, 0.25, 0.25]);
  });
});

/**
 * A frame with two "anode" tips (a dark bar ending at x = 50) and one "cathode" tip (a grey bar
 * ending at x = 40), on a bright background.
 */
function stackFrame(): Image {
  const img = blank(100, 100, 220);
  fillRect(img, 10, 18, 50, 22, 30); // A0, tip apex at (50, 20)
  fillRect(img, 10, 38, 40, 42, 120); // C0, tip apex at (40, 40)
  fillRect(img, 10, 58, 50, 62, 30); // A1, tip apex at (50, 60)
  return img;
}

describe('refinePoles', () => {
  const sheets = ['A', 'C', 'A'] as const;
  const params = { ...DEFAULT_REFINE_PARAMS, radius: 4, patchHalf: 3, bins: 8 };

  it('fuses each pole with its nearest corner as (alpha p + beta q) / (alpha + beta)', () => {
    const img = stackFrame();
    const c = corners([[50, 20], [40, 40], [50, 60]]);
    const x = [48, 42, 51];
    const y = [21, 39, 60];
    const out = refinePoles(img, c, x, y, [...sheets], params);
    out.forEach((r, i) => {
      expect(r.source).toBe('refined');
      expect(r.corner).toBe(i);
      expect(r.alpha).toBeGreaterThan(0);
      expect(r.beta).toBeGreaterThan(0);
      expect(r.x).toBeCloseTo((r.alpha * x[i]! + r.beta * c.x[i]!) / (r.alpha + r.beta), 12);
      expect(r.y).toBeCloseTo((r.alpha * y[i]! + r.beta * c.y[i]!) / (r.alpha + r.beta), 12);
      // The fused point lies between the CNN pole and the corner.
      expect(Math.hypot(r.x - c.x[i]!, r.y - c.y[i]!)).toBeLessThan(Math.hypot(x[i]! - c.x[i]!, y[i]! - c.y[i]!));
    });
    // The single cathode is its own reference: alpha = 1.
    expect(out[1]!.alpha).toBeCloseTo(1, 12);
  });

  it('leaves a pole alone when no corner is within the radius, or beyond the first N', () => {
    const img = stackFrame();
    const c = corners([[50, 20], [40, 40], [80, 80]]);
    const out = refinePoles(img, c, [48, 42, 45], [21, 39, 60], [...sheets], params);
    expect(out[2]).toEqual({ x: 45, y: 60, source: 'cnn', corner: -1, alpha: 1, beta: 0 });
    const limited = refinePoles(img, c, [48, 42, 45], [21, 39, 60], [...sheets], params, 1);
    expect(limited.map((r) => r.source)).toEqual(['refined', 'cnn', 'cnn']);
  });

  it('trusts a corner less when its patch does not look like a tip of that sheet', () => {
    const img = stackFrame();
    fillRect(img, 60, 70, 99, 99, 0); // a black fixture with a corner at (60, 70)
    // A1's CNN pole sits between the true tip and the fixture corner; the fixture corner is nearer.
    const c = corners([[50, 20], [60, 70], [50, 60]]);
    const out = refinePoles(img, c, [50, 40, 56], [20, 40, 66], [...sheets], { ...params, radius: 8 });
    expect(out[2]!.corner).toBe(1);
    expect(out[2]!.beta).toBeLessThan(out[2]!.alpha);
    // A tip-like corner at the same distance would have pulled it further.
    const img2 = stackFrame();
    const c2 = corners([[50, 20], [40, 40], [60, 70]]);
    fillRect(img2, 30, 68, 60, 72, 30); // an anode-like bar ending at (60, 70)
    const out2 = refinePoles(img2, c2, [50, 40, 56], [20, 40, 66], [...sheets], { ...params, radius: 8 });
    expect(out2[2]!.beta).toBeGreaterThan(out[2]!.beta);
  });

  it('applies a per-sheet corner offset: searches around p - shift and fuses with q + shift', () => {
    const img = stackFrame();
    // Corners 2 px inside the anode tips; the shift says the apex is 2 px further +x.
    const c = corners([[48, 20], [40, 40], [48, 60]]);
    const shift = { A: [2, 0] as [number, number], C: [0, 0] as [number, number] };
    const p = refinePoles(img, c, [51, 40, 51], [20, 40, 60], [...sheets], { ...params, radius: 1.5 }, c.count, shift);
    // Without the shift the corners at x = 48 are 3 px away: out of reach.
    const plain = refinePoles(img, c, [51, 40, 51], [20, 40, 60], [...sheets], { ...params, radius: 1.5 });
    expect(plain[0]!.source).toBe('cnn');
    expect(p[0]!.source).toBe('refined');
    const r = p[0]!;
    expect(r.x).toBeCloseTo((r.alpha * 51 + r.beta * 50) / (r.alpha + r.beta), 12);
    expect(r.y).toBeCloseTo(20, 12);
  });

  it('passes missing (NaN) poles through unchanged', () => {
    const out = refinePoles(stackFrame(), corners([[50, 20]]), [Number.NaN, 40, 50], [Number.NaN, 40, 60], [...sheets], params);
    expect(out[0]!.source).toBe('cnn');
    expect(Number.isNaN(out[0]!.x)).toBe(true);
  });
});

describe('subpixelCorner', () => {
  function blob(cx: number, cy: number): Image {
    const img: Image = { width: 100, height: 100, depth: 16, pixels: new Uint16Array(100 * 100) };
    for (let y = 0; y < 100; y++) {
      for (let x = 0; x < 100; x++) img.pixels[y * 100 + x] = Math.round(10000 * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 8));
    }
    return img;
  }
  it('stays on a symmetric peak and moves toward an off-grid one', () => {
    expect(subpixelCorner(blob(50, 40), 50, 40)).toEqual([50, 40]);
    const [x, y] = subpixelCorner(blob(50.3, 40.7), 50, 41);
    expect(Math.abs(x - 50.3)).toBeLessThan(0.1);
    expect(Math.abs(y - 40.7)).toBeLessThan(0.1);
  });
});
