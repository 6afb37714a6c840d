// Sampling the scene onto the frame's pixel grid. SPEC convention: pixel (i, j) is centred on
// (i, j) and covers [i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]; a pixel's value is the mean of
// s x s samples at (i - 0.5 + (a + 0.5) / s, j - 0.5 + (b + 0.5) / s).
import { bodyEdgeX, centreY, separatorY, type Separator, type Stack, type StackSheet } from './cell.ts';
import { ramp, shapeAttenuation, type PlacedShape } from './shapes.ts';

/** Frame point -> scene point: u = a x + b y + c, v = d x + e y + f. */
export interface Affine {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  f: number;
}

export function affineFromPoints(map: (x: number, y: number) => [number, number]): Affine {
  const [c, f] = map(0, 0);
  const [ax, dx] = map(1, 0);
  const [by, ey] = map(0, 1);
  return { a: ax - c, b: by - c, c, d: dx - f, e: ey - f, f };
}

/**
 * A box [u0, v0, u1, v1] in scene coordinates outside of which a SceneFn is exactly 0 and a
 * FineTest false, whatever the footprint; lets rasterize skip the calls for whole tiles.
 */
export type Support = readonly [number, number, number, number];

/** Scene attenuation at a point; `w` is the sample footprint (px) used for edge coverage. */
export type SceneFn = ((u: number, v: number, w: number) => number) & { support?: Support };

/** Where the scene needs more than one sample per pixel (features thinner than a pixel). */
export type FineTest = ((u: number, v: number) => boolean) & { support?: Support };

/**
 * Transmission exp(-attenuation) of every pixel, averaged over its samples (transmission, not
 * attenuation, is what averages over a pixel). Pixels whose centre passes `fine` get ss x ss
 * samples. `shapes` add their attenuation to `scene`'s; they are sorted per 16 x 16 tile into
 * those covering the whole tile (a constant), those missing it and those evaluated per sample.
 * Writes every pixel of `out` when given (width * height long; its contents are not read).
 */
export function rasterize(
  width: number,
  height: number,
  toScene: Affine,
  scene: SceneFn,
  fine: FineTest | null,
  ss: number,
  shapes: readonly PlacedShape[] = [],
  out: Float32Array = new Float32Array(width * height),
): Float32Array {
  if (out.length !== width * height) throw new RangeError('rasterize: out must hold width * height pixels');
  const { a, b, c, d, e, f } = toScene;
  const step = 1 / ss;
  const sw = Math.hypot(a, d) * step; // footprint of one sample in scene px (the map is a rotation)
  const inv = 1 / (ss * ss);
  const T = 16;
  const partial: PlacedShape[] = [];
  const box = [0, 0, 0, 0];
  // exp(-att) of the last att computed: runs of equal att (gaps, fixtures) reuse it.
  let lastAtt = 0;
  let lastT = 1;
  // A tile whose scene box misses both supports reads scene = 0 and fine = false at every sample
  // (a 1 px margin covers the rounding of the incremental u, v below).
  const sceneSupport = scene.support;
  const fineSupport = fine === null ? undefined : fine.support;
  const outside = (sp: Support | undefined) =>
    sp !== undefined && (box[2]! < sp[0] - 1 || box[0]! > sp[2] + 1 || box[3]! < sp[1] - 1 || box[1]! > sp[3] + 1);
  for (let ty = 0; ty < height; ty += T) {
    for (let tx = 0; tx < width; tx += T) {
      const xe = Math.min(width, tx + T);
      const ye = Math.min(height, ty + T);
      sceneBox(toScene, tx - 0.5, ty - 0.5, xe - 0.5, ye - 0.5, box);
      const constant = sortShapes(shapes, box, partial);
      const np = partial.length;
      if (outside(sceneSupport) && (fine === null || outside(fineSupport))) {
        // att = 0 + constant + the partial shapes, as below without the scene and fine calls.
        if (np === 0) {
          const t = constant === 0 ? 1 : Math.exp(-constant);
          for (let y = ty; y < ye; y++) for (let i = y * width + tx, end = y * width + xe; i < end; i++) out[i] = t;
          continue;
        }
        for (let y = ty; y < ye; y++) {
          let i = y * width + tx;
          let u = a * tx + b * y + c;
          let v = d * tx + e * y + f;
          for (let x = tx; x < xe; x++, i++, u += a, v += d) {
            let att = constant;
            for (let k = 0; k < np; k++) att += shapeAttenuation(partial[k]!, u, v, 1);
            out[i] = att === 0 ? 1 : Math.exp(-att);
          }
        }
        continue;
      }
      for (let y = ty; y < ye; y++) {
        let i = y * width + tx;
        let u = a * tx + b * y + c;
        let v = d * tx + e * y + f;
        for (let x = tx; x < xe; x++, i++, u += a, v += d) {
          if (fine !== null && fine(u, v)) {
            let sum = 0;
            for (let sy = 0; sy < ss; sy++) {
              const py = y - 0.5 + (sy + 0.5) * step;
              for (let sx = 0; sx < ss; sx++) {
                const px = x - 0.5 + (sx + 0.5) * step;
                const su = a * px + b * py + c;
                const sv = d * px + e * py + f;
                let att = scene(su, sv, sw) + constant;
                for (let k = 0; k < np; k++) att += shapeAttenuation(partial[k]!, su, sv, sw);
                if (att !== lastAtt) {
                  lastAtt = att;
                  lastT = Math.exp(-att);
                }
                sum += lastT;
              }
            }
            out[i] = sum * inv;
          } else {
            let att = scene(u, v, 1) + constant;
            for (let k = 0; k < np; k++) att += shapeAttenuation(partial[k]!, u, v, 1);
            if (att !== lastAtt) {
              lastAtt = att;
              lastT = Math.exp(-att);
            }
            out[i] = att === 0 ? 1 : lastT;
          }
        }
      }
    }
  }
  return out;
}

/** The scene box [u0, v0, u1, v1] of the frame rectangle [x0, x1] x [y0, y1], and its corners. */
function sceneBox(m: Affine, x0: number, y0: number, x1: number, y1: number, box: number[]): void {
  const us = CORNERS_U;
  const vs = CORNERS_V;
  us[0] = m.a * x0 + m.b * y0 + m.c;
  us[1] = m.a * x1 + m.b * y0 + m.c;
  us[2] = m.a * x0 + m.b * y1 + m.c;
  us[3] = m.a * x1 + m.b * y1 + m.c;
  vs[0] = m.d * x0 + m.e * y0 + m.f;
  vs[1] = m.d * x1 + m.e * y0 + m.f;
  vs[2] = m.d * x0 + m.e * y1 + m.f;
  vs[3] = m.d * x1 + m.e * y1 + m.f;
  box[0] = Math.min(us[0], us[1], us[2], us[3]);
  box[1] = Math.min(vs[0], vs[1], vs[2], vs[3]);
  box[2] = Math.max(us[0], us[1], us[2], us[3]);
  box[3] = Math.max(vs[0], vs[1], vs[2], vs[3]);
}
const CORNERS_U = new Float64Array(4);
const CORNERS_V = new Float64Array(4);

/**
 * Sorts shapes for the frame rectangle whose scene box sceneBox() just computed: returns the
 * summed mu of shapes that cover all of it (their coverage is exactly 1 there), fills `partial`
 * with those that may cover part of it and leaves out those that cannot reach it.
 */
function sortShapes(shapes: readonly PlacedShape[], box: readonly number[], partial: PlacedShape[]): number {
  partial.length = 0;
  if (shapes.length === 0) return 0;
  const us = CORNERS_U;
  const vs = CORNERS_V;
  const u0 = box[0]!;
  const v0 = box[1]!;
  const u1 = box[2]!;
  const v1 = box[3]!;
  let constant = 0;
  for (const p of shapes) {
    const bd = p.bounds;
    if (u1 < bd[0] || u0 > bd[2] || v1 < bd[1] || v0 > bd[3]) continue;
    const s = p.shape;
    if (s.kind === 'box') {
      // The same test as shapeAttenuation's inner fast path, for the widest sample footprint (1).
      const r = s.r + 1;
      if (u0 > s.x0 + r && u1 < s.x1 - r && v0 > s.y0 + r && v1 < s.y1 - r) {
        constant += s.mu;
        continue;
      }
    } else if (s.kind === 'halfplane') {
      // Signed distance is linear: its extremes are at the corners. Beyond +-0.5 px the ramp is flat.
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < 4; k++) {
        const sd = s.d - (s.nx * us[k]! + s.ny * vs[k]!);
        lo = Math.min(lo, sd);
        hi = Math.max(hi, sd);
      }
      if (hi <= -0.5) {
        constant += s.mu;
        continue;
      }
      if (lo >= 0.5) continue;
    }
    partial.push(p);
  }
  return constant;
}

/** Coverage of one sheet (with its fork, without its fold flap) at scene point (u, v). */
export function sheetCoverage(s: StackSheet, u: number, v: number, w: number): number {
  if (u >= s.apexX) return 0;
  const t = s.apexX - u;
  const h = s.thick / 2;
  // Elliptical end: half-thickness h*sqrt(1 - (1 - t/L)^2) over the last L = capLen px.
  const hw = t < s.capLen ? (h * Math.sqrt(t * (2 * s.capLen - t))) / s.capLen : h;
  let cov = ramp(Math.abs(v - centreY(s, u)) - hw, w);
  const fk = s.fork;
  if (fk !== null && u >= fk.fromX && u < fk.toX) {
    const pt = fk.toX - u;
    const ph = fk.thick / 2;
    const pl = Math.min(ph * 3, fk.toX - fk.fromX);
    const phw = pt < pl ? (ph * Math.sqrt(pt * (2 * pl - pt))) / pl : ph;
    const py = centreY(s, u) + fk.slope * (u - fk.fromX);
    cov = Math.max(cov, ramp(Math.abs(v - py) - phw, w));
  }
  return cov;
}

function flapCoverage(s: StackSheet, u: number, v: number, w: number): number {
  const fold = s.fold!;
  const x0 = fold.atX - fold.length;
  if (u < x0 || u >= fold.atX + s.thick) return 0;
  const yc = centreY(s, Math.min(u, s.apexX)) + fold.side * s.thick * 1.05;
  const h = s.thick / 2;
  // Round at the turn: the flap and the sheet meet in a half circle of radius ~thickness.
  const t = u > fold.atX ? u - fold.atX : 0;
  const hw = t > 0 ? Math.sqrt(Math.max(0, h * h - t * t)) : h;
  return ramp(Math.abs(v - yc) - hw, w);
}

/**
 * Which sheets and inner separators can reach each 1 px band of v (their [vMin, vMax] meets the
 * band, with a margin), in index order: stackAttenuation then visits those instead of every one
 * within `reach` (a wide reach from one steep separator made that a long walk of misses).
 */
export interface StackBands {
  v0: number;
  count: number;
  /** Band b lists sheets[sheetStart[b] .. sheetStart[b + 1]) and seps[sepStart[b] .. sepStart[b + 1]). */
  sheetStart: Int32Array;
  sheets: Int32Array;
  sepStart: Int32Array;
  seps: Int32Array;
}

export function stackBands(stack: Stack): StackBands {
  const v0 = Math.floor(stack.top - stack.reach) - 1;
  const count = Math.max(0, Math.ceil(stack.bottom + stack.reach + 1 - v0) + 1);
  const n = stack.sheets.length;
  const list = (items: readonly { vMin: number; vMax: number }[], keep: (j: number) => boolean) => {
    const start = new Int32Array(count + 1);
    const members: number[] = [];
    for (let b = 0; b < count; b++) {
      start[b] = members.length;
      const lo = v0 + b - 0.01;
      const hi = v0 + b + 1.01;
      for (let j = 0; j < items.length; j++) if (keep(j) && !(items[j]!.vMin > hi) && !(items[j]!.vMax < lo)) members.push(j);
    }
    start[count] = members.length;
    return { start, members: Int32Array.from(members) };
  };
  const sh = list(stack.sheets, (j) => stack.sheets[j]!.exists);
  const sp = list(stack.separators, (j) => j <= n - 2);
  return { v0, count, sheetStart: sh.start, sheets: sh.members, sepStart: sp.start, seps: sp.members };
}

/** The stack's attenuation at scene point (u, v); `bands` (from stackBands(stack)) only makes it faster. */
export function stackAttenuation(stack: Stack, u: number, v: number, w: number, bands: StackBands | null = null): number {
  const half = stack.pitch / 2;
  const reach = stack.reach;
  if (v < stack.top - reach || v > stack.bottom + reach) return 0;
  const { sheets, separators } = stack;
  const n = sheets.length;
  const j0 = Math.round((v - stack.top) / half);
  const k = Math.ceil(reach / half) + 1;
  const lo = Math.max(0, j0 - k);
  const hi = Math.min(n - 1, j0 + k);
  let att = 0;
  // The same terms in the same order with or without the bands: a sheet or separator left out
  // of v's band adds nothing there (it is skipped, or its attenuation is exactly 0).
  const b = bands === null ? -1 : Math.floor(v - bands.v0);
  const banded = bands !== null && b >= 0 && b < bands.count;
  if (banded) {
    for (let m = bands.sheetStart[b]!, end = bands.sheetStart[b + 1]!; m < end; m++) {
      const j = bands.sheets[m]!;
      if (j < lo || j > hi) continue;
      const s = sheets[j]!;
      if (!s.exists || v < s.vMin || v > s.vMax) continue;
      att += s.mu * sheetCoverage(s, u, v, w);
      if (s.fold !== null) att += s.mu * flapCoverage(s, u, v, w);
    }
  } else {
    for (let j = lo; j <= hi; j++) {
      const s = sheets[j]!;
      if (!s.exists || v < s.vMin || v > s.vMax) continue;
      att += s.mu * sheetCoverage(s, u, v, w);
      if (s.fold !== null) att += s.mu * flapCoverage(s, u, v, w);
    }
  }
  const body = stack.body;
  if (body !== null && v > body.top - w && v < body.bottom + w) {
    const behind = bodyEdgeX(body, v) - u;
    const shade = behind >= body.depth ? 1 : body.near + ((1 - body.near) * Math.max(0, behind)) / body.depth;
    att += body.mu * shade * ramp(Math.max(body.top - v, v - body.bottom), w) * ramp(-behind, body.soft);
  }
  const sepLo = Math.max(0, lo - 1);
  const sepHi = Math.min(n - 2, hi);
  if (banded) {
    for (let m = bands.sepStart[b]!, end = bands.sepStart[b + 1]!; m < end; m++) {
      const j = bands.seps[m]!;
      if (j < sepLo || j > sepHi) continue;
      const sp = separators[j]!;
      if (!(u > sp.endX || v < sp.vMin || v > sp.vMax)) att += separatorAttenuation(stack, sp, u, v, w);
    }
  } else {
    for (let j = sepLo; j <= sepHi; j++) att += separatorAttenuation(stack, separators[j]!, u, v, w);
  }
  // (separatorAttenuation's own early exit, tested here first: it saves a call per wrap, and
  // skipping a 0 leaves the sum as it was)
  for (let j = n - 1; j < separators.length; j++) {
    const sp = separators[j]!;
    if (!(u > sp.endX || v < sp.vMin || v > sp.vMax)) att += separatorAttenuation(stack, sp, u, v, w);
  }
  return att;
}

function separatorAttenuation(stack: Stack, sp: Separator, u: number, v: number, w: number): number {
  if (u > sp.endX || v < sp.vMin || v > sp.vMax) return 0;
  const cov = ramp(Math.abs(v - separatorY(stack, sp, u)) - sp.thick / 2, w);
  if (cov === 0) return 0;
  const fade = u > sp.endX - sp.fade ? (sp.endX - u) / sp.fade : 1;
  return sp.mu * cov * fade;
}

/**
 * The stack's attenuation as a function of (u, v, w). Behind every bend, fork and fold the stack
 * does not change along u, so one-sample pixels there read a table over v (1/32 px steps,
 * linear interpolation) instead of visiting the sheets.
 */
export function stackScene(stack: Stack): SceneFn {
  let straightX = Number.POSITIVE_INFINITY;
  for (const s of stack.sheets) {
    if (!s.exists) continue;
    straightX = Math.min(straightX, s.apexX - Math.max(s.bendLen, s.capLen));
    if (s.fork) straightX = Math.min(straightX, s.fork.fromX);
    if (s.fold) straightX = Math.min(straightX, s.fold.atX - s.fold.length);
  }
  let endX = Number.NEGATIVE_INFINITY;
  for (const s of stack.sheets) if (s.exists) endX = Math.max(endX, s.apexX + 1, s.fold ? s.fold.atX + s.thick + 1 : endX);
  // (an absent cathode's edge point at -1e6 does not count: its gap is straight too)
  if (stack.body) straightX = Math.min(straightX, Math.min(...stack.body.edgeX.filter((x) => x > -1e5)) - Math.max(stack.body.soft, stack.body.depth));
  for (const sp of stack.separators) {
    straightX = Math.min(straightX, sp.endX - sp.fade);
    endX = Math.max(endX, sp.endX + 1);
  }
  straightX -= 1;
  const step = 1 / 32;
  const v0 = stack.top - stack.reach - 1;
  const count = Math.ceil((stack.bottom + stack.reach + 1 - v0) / step) + 2;
  const bands = stackBands(stack);
  const table = new Float32Array(count);
  for (let i = 0; i < count; i++) table[i] = stackAttenuation(stack, straightX, v0 + i * step, 1, bands);
  const last = count - 1;
  const fn: SceneFn = (u, v, w) => {
    if (u > endX) return 0;
    if (w !== 1 || u >= straightX) return stackAttenuation(stack, u, v, w, bands);
    const t = (v - v0) / step;
    if (t <= 0 || t >= last) return 0;
    const i = Math.floor(t);
    const f = t - i;
    return table[i]! * (1 - f) + table[i + 1]! * f;
  };
  // 0 beyond endX, and outside the table's span (which contains stackAttenuation's, top - reach to bottom + reach).
  fn.support = [Number.NEGATIVE_INFINITY, v0, endX, v0 + last * step];
  return fn;
}

/** True near the free ends (caps, fork prongs, folds), where sheets get thinner than a pixel. */
export function stackFineTest(stack: Stack): FineTest {
  const half = stack.pitch / 2;
  const k = Math.ceil(stack.reach / half) + 1;
  const n = stack.sheets.length;
  let u0 = Number.POSITIVE_INFINITY;
  let u1 = Number.NEGATIVE_INFINITY;
  for (const s of stack.sheets) {
    if (!s.exists) continue;
    u0 = Math.min(u0, s.apexX - Math.min(s.capLen, 2 * s.thick) - 3, s.fork ? s.fork.toX - s.thick * 2 - 3 : u0, s.fold ? s.fold.atX - s.fold.length - 3 : u0);
    u1 = Math.max(u1, s.apexX + 3, s.fold ? s.fold.atX + s.thick + 3 : u1);
  }
  const v0 = stack.top - stack.reach - 2;
  const v1 = stack.bottom + stack.reach + 2;
  const fn: FineTest = (u, v) => {
    if (u < u0 || u > u1 || v < v0 || v > v1) return false;
    const j0 = Math.round((v - stack.top) / half);
    for (let j = Math.max(0, j0 - k); j <= Math.min(n - 1, j0 + k); j++) {
      const s = stack.sheets[j]!;
      if (!s.exists) continue;
      if (u > s.apexX - Math.min(s.capLen, 2 * s.thick) - 3 && u < s.apexX + 3) return true;
      if (s.fork && u > s.fork.toX - s.thick * 2 - 3 && u < s.fork.toX + 3) return true;
      if (s.fold && (Math.abs(u - s.fold.atX) < s.thick + 3 || Math.abs(u - s.fold.atX + s.fold.length) < 3)) return true;
    }
    return false;
  };
  fn.support = [u0, v0, u1, v1];
  return fn;
}
