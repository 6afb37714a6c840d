// Corner post-correction (SPEC step 4, paper §2.3). Each CNN pole p is pulled toward its nearest
// oFAST corner q within radius r, weighted by how much the patches around p and q look like the
// frame's typical tip of that sheet type:
//   feature(pt)  = normalized brightness histogram of the (2h+1)^2 patch around pt
//   ref(type)    = mean feature over this frame's CNN poles of that type (anodes, cathodes)
//   alpha = sim(feature(p), ref), beta = sim(feature(q), ref), refined = (alpha p + beta q) / (alpha + beta)
// Similarity is histogram intersection, sum(min(a, b)): for histograms that sum to 1 it lies in
// [0, 1] and measures shared mass directly, so it is a weight as it stands (no clipping of
// negatives as with a correlation) and is robust to a few outlier pixels in a small patch.
import type { Corners, Image } from '../types.ts';
import type { Sheet } from '../inspect/recipe.ts';

export interface RefineParams {
  /** Search radius for the nearest corner, frame pixels. */
  radius: number;
  /** Half side of the square patch; the patch is (2 * patchHalf + 1) pixels a side. */
  patchHalf: number;
  /** Histogram bins over the intensity range of all patches involved. */
  bins: number;
  /** Move corners to a sub-pixel position (quadratic fit of the Harris response) before fusing. */
  subpixel: boolean;
  /**
   * Where a sheet type's apex lies relative to its FAST corner, canonical px (tips +x), or null
   * for the paper's method (the corner itself). FAST fires inside a line end, not at its apex.
   */
  cornerOffset: Record<Sheet, [number, number]> | null;
}

export const DEFAULT_REFINE_PARAMS: RefineParams = { radius: 1, patchHalf: 4, bins: 16, subpixel: false, cornerOffset: null };

export interface RefinedPole {
  x: number;
  y: number;
  /** 'refined' when a corner was within the radius and took part, else 'cnn' (p unchanged). */
  source: 'cnn' | 'refined';
  /** Index of the corner used, -1 when none. */
  corner: number;
  alpha: number;
  beta: number;
}

/** Index of the corner nearest to (x, y) within `radius` (inclusive), or -1. */
export function nearestCorner(corners: Corners, x: number, y: number, radius: number, limit = corners.count): number {
  let best = -1;
  let bestD = radius * radius;
  const n = Math.min(limit, corners.count);
  for (let i = 0; i < n; i++) {
    const dx = corners.x[i]! - x;
    const dy = corners.y[i]! - y;
    const d = dx * dx + dy * dy;
    if (d <= bestD && (best < 0 || d < bestD)) {
      best = i;
      bestD = d;
    }
  }
  return best;
}

/** Intensity range [lo, hi] over the patches around the given points (edge-clamped). */
export function patchRange(img: Image, xs: ArrayLike<number>, ys: ArrayLike<number>, half: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  forPatch(img, xs, ys, half, (v) => {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  });
  return [lo, hi];
}

function forPatch(img: Image, xs: ArrayLike<number>, ys: ArrayLike<number>, half: number, fn: (v: number) => void): void {
  const { width, height, pixels } = img;
  for (let k = 0; k < xs.length; k++) {
    const cx = Math.round(xs[k]!);
    const cy = Math.round(ys[k]!);
    for (let dy = -half; dy <= half; dy++) {
      const y = Math.min(height - 1, Math.max(0, cy + dy));
      for (let dx = -half; dx <= half; dx++) {
        const x = Math.min(width - 1, Math.max(0, cx + dx));
        fn(pixels[y * width + x]!);
      }
    }
  }
}

/** Normalized (sums to 1) brightness histogram of the patch around (x, y), `bins` bins over [lo, hi]. */
export function patchFeature(img: Image, x: number, y: number, half: number, bins: number, range: [number, number]): Float64Array {
  const h = new Float64Array(bins);
  const [lo, hi] = range;
  const scale = hi > lo ? bins / (hi - lo) : 0;
  let n = 0;
  forPatch(img, [x], [y], half, (v) => {
    h[Math.min(bins - 1, Math.floor((v - lo) * scale))]! += 1;
    n++;
  });
  for (let b = 0; b < bins; b++) h[b]! /= n;
  return h;
}

/** Histogram intersection of two normalized histograms: 1 for equal, 0 for disjoint. */
export function similarity(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.min(a[i]!, b[i]!);
  return s;
}

/** Mean of features (a normalized histogram again). */
export function meanFeature(features: readonly Float64Array[], bins: number): Float64Array {
  const m = new Float64Array(bins);
  for (const f of features) for (let b = 0; b < bins; b++) m[b]! += f[b]! / features.length;
  return m;
}

/**
 * The fused pole positions. `x`, `y` are the CNN poles in frame pixels, `sheets` their types (recipe
 * order); only corners with index < `cornerLimit` are candidates (the N strongest when the corner
 * set is sorted by Harris response). `shift` is params.cornerOffset turned into frame pixels.
 */
export function refinePoles(
  img: Image,
  corners: Corners,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  sheets: readonly Sheet[],
  params: RefineParams,
  cornerLimit = corners.count,
  shift: Record<Sheet, [number, number]> | null = null,
): RefinedPole[] {
  const n = x.length;
  const sx = (i: number) => (shift ? shift[sheets[i]!][0] : 0);
  const sy = (i: number) => (shift ? shift[sheets[i]!][1] : 0);
  // With a shift, the candidates are the shifted corners: the nearest to p - shift.
  const match = Array.from({ length: n }, (_, i) => nearestCorner(corners, x[i]! - sx(i), y[i]! - sy(i), params.radius, cornerLimit));
  const qx = match.map((c) => (c < 0 ? Number.NaN : corners.x[c]!));
  const qy = match.map((c) => (c < 0 ? Number.NaN : corners.y[c]!));
  for (let i = 0; i < n; i++) {
    if (match[i]! < 0) continue;
    if (params.subpixel) [qx[i], qy[i]] = subpixelCorner(img, qx[i]!, qy[i]!);
    qx[i]! += sx(i);
    qy[i]! += sy(i);
  }
  const used = match.map((c, i) => c >= 0 && Number.isFinite(x[i]!));
  const px: number[] = [];
  const py: number[] = [];
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(x[i]!)) continue;
    px.push(x[i]!);
    py.push(y[i]!);
    if (used[i]) {
      px.push(qx[i]!);
      py.push(qy[i]!);
    }
  }
  const range = px.length ? patchRange(img, px, py, params.patchHalf) : ([0, 0] as [number, number]);
  const feat = (fx: number, fy: number) => patchFeature(img, fx, fy, params.patchHalf, params.bins, range);
  const poleFeatures = Array.from({ length: n }, (_, i) => (Number.isFinite(x[i]!) ? feat(x[i]!, y[i]!) : null));
  const refs = new Map<Sheet, Float64Array>();
  for (const s of ['A', 'C'] as const) {
    const fs = poleFeatures.filter((f, i): f is Float64Array => f !== null && sheets[i] === s);
    if (fs.length) refs.set(s, meanFeature(fs, params.bins));
  }
  const out: RefinedPole[] = [];
  for (let i = 0; i < n; i++) {
    const ref = refs.get(sheets[i]!);
    if (!used[i] || !ref) {
      out.push({ x: x[i]!, y: y[i]!, source: 'cnn', corner: -1, alpha: 1, beta: 0 });
      continue;
    }
    const alpha = similarity(poleFeatures[i]!, ref);
    const beta = similarity(feat(qx[i]!, qy[i]!), ref);
    const w = alpha + beta;
    if (!(w > 0)) {
      out.push({ x: x[i]!, y: y[i]!, source: 'cnn', corner: -1, alpha, beta });
      continue;
    }
    out.push({
      x: (alpha * x[i]! + beta * qx[i]!) / w,
      y: (alpha * y[i]! + beta * qy[i]!) / w,
      source: 'refined',
      corner: match[i]!,
      alpha,
      beta,
    });
  }
  return out;
}

/**
 * Harris response (k = 0.04) at pixel (x, y) over a 7x7 window of central-difference gradients,
 * the window ORB ranks corners with.
 */
export function harrisAt(img: Image, x: number, y: number): number {
  const { width, height, pixels } = img;
  const at = (u: number, v: number) =>
    pixels[Math.min(height - 1, Math.max(0, v)) * width + Math.min(width - 1, Math.max(0, u))]!;
  let a = 0;
  let b = 0;
  let c = 0;
  for (let dy = -3; dy <= 3; dy++) {
    for (let dx = -3; dx <= 3; dx++) {
      const u = x + dx;
      const v = y + dy;
      const gx = 0.5 * (at(u + 1, v) - at(u - 1, v));
      const gy = 0.5 * (at(u, v + 1) - at(u, v - 1));
      a += gx * gx;
      b += gy * gy;
      c += gx * gy;
    }
  }
  return a * b - c * c - 0.04 * (a + b) * (a + b);
}

/**
 * Sub-pixel corner: a 1-D parabola through the Harris response at the corner and its two
 * neighbours on each axis; the vertex offset is kept when the centre is a maximum (|offset| <= 0.5).
 */
export function subpixelCorner(img: Image, x: number, y: number): [number, number] {
  const cx = Math.round(x);
  const cy = Math.round(y);
  const r0 = harrisAt(img, cx, cy);
  const offset = (m: number, p: number): number => {
    const denom = m - 2 * r0 + p;
    if (!(denom < 0)) return 0;
    const o = (0.5 * (m - p)) / denom;
    return Math.abs(o) <= 0.5 ? o : 0;
  };
  return [cx + offset(harrisAt(img, cx - 1, cy), harrisAt(img, cx + 1, cy)), cy + offset(harrisAt(img, cx, cy - 1), harrisAt(img, cx, cy + 1))];
}
