// The electrode stack in scene coordinates: canonical orientation (tips to +x) before the small
// rotation. Ground truth comes from these parameters alone, never from pixels.
import type { Recipe, Sheet as SheetKind } from '../inspect/recipe.ts';
import type { Rng } from './prng.ts';

/** A second prong splitting off a forked tip. */
export interface Fork {
  /** Where the prong leaves the sheet (scene x). */
  fromX: number;
  /** Its end (scene x), short of the sheet's apex so the apex stays the outermost point. */
  toX: number;
  /** Slope of the prong relative to the sheet's centre line (dy/dx). */
  slope: number;
  /** Prong thickness (px). */
  thick: number;
}

/** A sheet whose end is folded back on itself: no apex, the pole counts as missing. */
export interface Fold {
  /** Where the fold turns (scene x). */
  atX: number;
  /** Length of the folded-back flap (px). */
  length: number;
  /** +1: flap below the sheet, -1: above. */
  side: 1 | -1;
}

export interface StackSheet {
  kind: SheetKind;
  /** Centre line height where the sheet is straight. */
  y: number;
  /** x of the free end's apex (the keypoint's x when the sheet is intact). */
  apexX: number;
  /** Thickness across the sheet (px). */
  thick: number;
  /** Attenuation of one full sheet thickness along the beam (dimensionless mu * t). */
  mu: number;
  /** The end bends over the last bendLen px so its slope reaches bendTan at the apex. */
  bendLen: number;
  bendTan: number;
  /** Length of the rounded end along x: ~thick/2 is a round tip, longer is a tapered one. */
  capLen: number;
  fork: Fork | null;
  fold: Fold | null;
  /** False when the sheet is torn back or absent (POLE_MISSING); then apexX is where it ends, if it exists. */
  visible: boolean;
  /** False when the sheet does not exist at all. */
  exists: boolean;
  /** A missing cathode whose overlap zone stays dark, its edge running on from its neighbours':
   *  only the sheet's own line is gone (see RenderOptions.hiddenMissing). */
  hiddenInBody: boolean;
  /** Heights between which any part of the sheet lies (set by addSeparators). */
  vMin: number;
  vMax: number;
}

export interface Separator {
  y: number;
  thick: number;
  mu: number;
  /** Indices of the sheets above and below. */
  upper: number;
  lower: number;
  /** Beyond the anode apexes the separator runs straight with this slope... */
  slope: number;
  /** ...from this x... */
  freeX: number;
  /** ...to this x, fading over its last `fade` px. */
  endX: number;
  fade: number;
  vMin: number;
  vMax: number;
}

export interface Stack {
  sheets: StackSheet[];
  separators: Separator[];
  /** Anode-to-anode pitch (px). */
  pitch: number;
  top: number;
  bottom: number;
  /** The largest distance (px) between a sheet's straight centre line and any part of it or its separators. */
  reach: number;
  /**
   * The overlap zone reads darker than its sheets alone (cone-beam parallax and compressed
   * separators fill the gaps): extra attenuation mu behind the line through the cathode apexes
   * (edgeX at heights edgeY, pulled back by inset), ramping in over `soft` px; it starts at
   * `near` * mu at the edge and reaches mu `depth` px behind it (real overlap zones shade darker
   * away from the tips).
   */
  body: {
    mu: number;
    top: number;
    bottom: number;
    edgeY: number[];
    edgeX: number[];
    /** Running maximum of edgeY, for bodyEdgeX's binary search (edgeY need not be sorted). */
    edgeYMax: number[];
    soft: number;
    near: number;
    depth: number;
  } | null;
}

/** Centre line height of sheet s at scene x (bends quadratically over the last bendLen px). */
export function centreY(s: StackSheet, x: number): number {
  const d = x - (s.apexX - s.bendLen);
  return d > 0 ? s.y + (s.bendTan * d * d) / (2 * s.bendLen) : s.y;
}

/** The keypoint of an intact sheet: the apex of its centre line, in scene coordinates. */
export function apexOf(s: StackSheet): [number, number] {
  return [s.apexX, s.y + (s.bendTan * s.bendLen) / 2];
}

export interface StackParams {
  recipe: Recipe;
  pitch: number;
  centreY: number;
  /** Mean anode apex x. */
  tipX: number;
  /** Range (px) the cathodes' scatter about their own line is drawn from, log-uniform. */
  cathodeScatterPx?: readonly [number, number];
  /** Range of the share of the space between the anodes that a cathode fills (default: all of it). */
  cathodeThickness?: readonly [number, number];
  /** Range of the cathodes' attenuation relative to the anodes', log-uniform (default CATHODE_CONTRAST). */
  cathodeContrast?: readonly [number, number];
}

/** The cathodes' scatter about their line unless asked otherwise (px): cut on a nearly straight line. */
export const CATHODE_SCATTER_PX: readonly [number, number] = [0.15, 1.5];
/** Cathode attenuation relative to the anodes' unless asked otherwise (uniform): heavier than the anodes. */
export const CATHODE_CONTRAST: readonly [number, number] = [1.0, 1.8];

/**
 * Lays out the sheets: positions, thicknesses, bends, tips. The cathode apexes drawn here are
 * their nominal tip line; frame.ts then places each one to give its overhang as judge() measures it.
 */
export function layoutStack(rng: Rng, p: StackParams): Stack {
  const n = p.recipe.sheets.length;
  const half = p.pitch / 2;
  const stackH = (n - 1) * half;
  const top = p.centreY - stackH / 2;
  // Anode lines 2-8 px. In the overlap zone the sheets lie packed (A, separator, C, separator), so the cathode fills
  // what the anode and two separator films leave; beyond the cathode tips that becomes the gap.
  const tA = Math.min(8, Math.max(2, p.pitch * rng.uniform(0.35, 0.6)));
  const room = p.pitch - tA - rng.uniform(0.8, 2.5);
  // Options draw only when given, so the default frames stay what they were.
  const tC = Math.max(1.5, p.cathodeThickness ? room * rng.uniform(...p.cathodeThickness) : room);
  const muA = rng.uniform(0.4, 1.6);
  const muC = muA * (p.cathodeContrast ? rng.logUniform(...p.cathodeContrast) : rng.uniform(...CATHODE_CONTRAST));
  // The tip line: slant and bow across the stack, plus per-sheet scatter.
  const slant = rng.uniform(-0.08, 0.08); // px per half pitch: a tip line up to ~5 degrees off the sheets' normal
  const bow = rng.uniform(-12, 12);
  const scatter = rng.logUniform(0.3, 3);
  // Cathodes are cut on their own, straighter line (frame.ts moves it back by the overhang).
  const slantC = slant + rng.uniform(-0.04, 0.04);
  const bowC = bow * rng.uniform(0.3, 1);
  const scatterC = rng.logUniform(...(p.cathodeScatterPx ?? CATHODE_SCATTER_PX));
  // Ends lean: a fan (top up, bottom down, or the reverse) plus per-sheet scatter, within +-10 degrees.
  const fan = rng.chance(0.5) ? rng.uniform(-8, 8) : 0;
  const leanScatter = rng.uniform(0, 3);
  const bendLenMean = rng.uniform(8, 70);
  const capStyle = rng.logUniform(1, 12); // cap length in half-thicknesses: 1 round, 12 needle-like
  const forkRate = rng.chance(0.3) ? rng.uniform(0.03, 0.2) : 0;
  const sheets: StackSheet[] = [];
  for (let i = 0; i < n; i++) {
    const kind = p.recipe.sheets[i]!;
    const rel = n > 1 ? (2 * i) / (n - 1) - 1 : 0; // -1 top .. +1 bottom
    const thick = (kind === 'A' ? tA : tC) * rng.uniform(0.9, 1.1);
    const leanDeg = Math.max(-10, Math.min(10, fan * rel + leanScatter * rng.normal() * (kind === 'A' ? 1 : 0.5)));
    const apexX =
      kind === 'A'
        ? p.tipX + slant * (i - (n - 1) / 2) * half + bow * rel * rel + scatter * rng.normal()
        : p.tipX + slantC * (i - (n - 1) / 2) * half + bowC * rel * rel + scatterC * rng.normal();
    const capLen = Math.max(0.5, (thick / 2) * capStyle * rng.uniform(0.7, 1.3));
    const bendLen = Math.max(capLen + 2, bendLenMean * rng.uniform(0.6, 1.4));
    const s: StackSheet = {
      kind,
      y: top + i * half + rng.normal() * 0.06 * half,
      apexX,
      thick,
      mu: (kind === 'A' ? muA : muC) * rng.uniform(0.9, 1.1),
      bendLen,
      bendTan: Math.tan((leanDeg * Math.PI) / 180),
      capLen,
      fork: null,
      fold: null,
      visible: true,
      exists: true,
      hiddenInBody: false,
      vMin: 0,
      vMax: 0,
    };
    if (forkRate > 0 && rng.chance(forkRate)) {
      const len = Math.max(4, rng.uniform(0.15, 0.6) * bendLen + capLen);
      s.fork = {
        fromX: apexX - len,
        toX: apexX - len * rng.uniform(0.1, 0.5) - 1,
        slope: (rng.chance(0.5) ? 1 : -1) * Math.tan((rng.uniform(3, 12) * Math.PI) / 180),
        thick: thick * rng.uniform(0.4, 0.7),
      };
    }
    sheets.push(s);
  }
  return { sheets, separators: [], pitch: p.pitch, top, bottom: top + stackH, reach: 0, body: null };
}

/**
 * Separators between neighbouring sheets (separators[j] lies between sheets j and j + 1), then
 * the two outer wraps; they run past the anode apexes as faint lines.
 */
export function addSeparators(rng: Rng, stack: Stack): void {
  const { sheets } = stack;
  const n = sheets.length;
  const thick = rng.uniform(0.6, 1.8);
  const mu = rng.uniform(0.06, 0.35);
  const spread = rng.uniform(0, 5);
  const runMean = rng.uniform(5, 220);
  for (let i = 0; i + 1 < n; i++) {
    const a = sheets[i]!;
    const b = sheets[i + 1]!;
    const rel = n > 2 ? (2 * i) / (n - 2) - 1 : 0;
    const freeX = Math.max(a.apexX, b.apexX);
    const run = Math.max(2, runMean * rng.uniform(0.5, 1.5));
    stack.separators.push({
      y: (a.y + b.y) / 2 + rng.normal() * 0.3,
      thick: thick * rng.uniform(0.8, 1.2),
      mu: mu * rng.uniform(0.7, 1.3),
      upper: i,
      lower: i + 1,
      slope: Math.tan(((spread * rel + rng.normal()) * Math.PI) / 180),
      freeX,
      endX: freeX + run,
      fade: Math.max(2, run * 0.4),
      vMin: 0,
      vMax: 0,
    });
  }
  // The outer wraps above the first and below the last sheet: films running furthest past the tips.
  for (const [i, side, next] of [
    [0, -1, 1],
    [n - 1, 1, n - 2],
  ] as const) {
    const s = sheets[i]!;
    const run = Math.max(4, runMean * rng.uniform(1, 2));
    const freeX = Math.max(s.apexX, sheets[next]!.apexX);
    stack.separators.push({
      y: s.y + side * (s.thick / 2 + rng.uniform(0.5, 2)),
      thick: thick * rng.uniform(0.8, 1.5),
      mu: mu * rng.uniform(1, 2),
      upper: i,
      lower: i,
      slope: Math.tan(((side * spread + rng.normal()) * Math.PI) / 180),
      freeX,
      endX: freeX + run,
      fade: Math.max(2, run * 0.4),
      vMin: 0,
      vMax: 0,
    });
  }
  let reach = 0;
  for (const s of sheets) {
    const disp = (s.bendTan * s.bendLen) / 2;
    let ext = s.thick / 2 + 1;
    if (s.fork) ext = Math.max(ext, Math.abs(s.fork.slope) * (s.fork.toX - s.fork.fromX) + s.thick);
    if (s.fold) ext = Math.max(ext, s.thick * 2.2);
    s.vMin = Math.min(s.y, s.y + disp) - ext;
    s.vMax = Math.max(s.y, s.y + disp) + ext;
    reach = Math.max(reach, s.y - s.vMin, s.vMax - s.y);
  }
  for (const sp of stack.separators) {
    const a = sheets[sp.upper]!;
    const b = sheets[sp.lower]!;
    const x0 = Math.min(a.apexX - a.bendLen, b.apexX - b.bendLen);
    sp.vMin = sp.vMax = sp.y;
    for (let i = 0; i <= 32; i++) {
      const y = separatorY(stack, sp, x0 + ((sp.endX - x0) * i) / 32);
      sp.vMin = Math.min(sp.vMin, y);
      sp.vMax = Math.max(sp.vMax, y);
    }
    sp.vMin -= sp.thick / 2 + 1;
    sp.vMax += sp.thick / 2 + 1;
    reach = Math.max(reach, sp.y - sp.vMin, sp.vMax - sp.y);
  }
  stack.reach = reach + 2;
}

/** Centre line of a separator at x: the mean of its neighbours' centre lines, then straight beyond the apexes. */
export function separatorY(stack: Stack, sp: Separator, x: number): number {
  const a = stack.sheets[sp.upper]!;
  const b = stack.sheets[sp.lower]!;
  const base = sp.y - (a.y + b.y) / 2;
  if (x <= sp.freeX) return base + (centreY(a, Math.min(x, a.apexX)) + centreY(b, Math.min(x, b.apexX))) / 2;
  const at = base + (centreY(a, a.apexX) + centreY(b, b.apexX)) / 2;
  return at + sp.slope * (x - sp.freeX);
}

/** The overlap zone's extra darkness, bounded by the cathode apexes (see Stack.body). */
export function addBody(rng: Rng, stack: Stack): void {
  const inset = rng.uniform(0.5, 4);
  const edgeY: number[] = [];
  const edgeX: number[] = [];
  for (const s of stack.sheets) {
    if (s.kind !== 'C' || s.hiddenInBody) continue;
    // A torn or folded cathode pulls the edge back to where it ends; an absent one leaves a gap
    // through the whole overlap zone, unless the frame draws it hidden in the zone.
    const [x, y] = s.exists ? apexOf(s) : [-1e6, s.y];
    edgeY.push(y);
    edgeX.push(x - inset - s.capLen * 0.5);
  }
  if (edgeY.length === 0) return;
  const first = stack.sheets[0]!;
  const last = stack.sheets[stack.sheets.length - 1]!;
  stack.body = {
    mu: rng.uniform(0.5, 2),
    top: first.y,
    bottom: last.y,
    edgeY,
    edgeX,
    edgeYMax: edgeY.map((_, i) => Math.max(...edgeY.slice(0, i + 1))),
    soft: rng.uniform(1, 5),
    near: rng.chance(0.5) ? 1 : rng.uniform(0.4, 1),
    depth: rng.uniform(20, 120),
  };
}

/** x of the overlap zone's edge at height v: linear between the cathode apexes, flat beyond them. */
export function bodyEdgeX(body: NonNullable<Stack['body']>, v: number): number {
  const { edgeY, edgeX, edgeYMax } = body;
  const n = edgeY.length;
  // The first i with v <= edgeY[i] is the first with v <= edgeYMax[i], which is sorted.
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (v <= edgeYMax[mid]!) hi = mid;
    else lo = mid + 1;
  }
  if (lo === 0) return edgeX[0]!;
  if (lo === n) return edgeX[n - 1]!;
  const i = lo;
  const f = (v - edgeY[i - 1]!) / (edgeY[i]! - edgeY[i - 1]!);
  return edgeX[i - 1]! + f * (edgeX[i]! - edgeX[i - 1]!);
}
