// The tip checks on the poles the model placed. Here, image evidence for each cathode tip: does
// a sheet end there? (And at the end, checkSharedTips: no two poles of one kind share a tip; and
// checkSheetCount: the poles and the stack's sheets agree in number.)
// Behind a cathode's apex (toward the stack) the cathode lies between its two anodes; ahead of it
// there is only the gap between those anodes. So the mean intensity along the sheet's line
// changes across a true tip, by about the same step at every cathode of a frame. The model
// sometimes fills in the regular pattern where the image has no tip: a cathode recessed far
// behind the others put on the row of gaps (test frame 000024: escape). There the step is about
// zero or reversed. Anodes are not checked: their tips face the fixtures and the tray, which
// change what lies ahead of them from frame to frame.
// Measured relative to the median of the frame's own cathodes, so polarity, bit depth and
// contrast drop out.
import { canonicalAffine } from '../frame/orientation.ts';
import type { Sheet } from '../inspect/recipe.ts';
import type { Image, Orientation } from '../types.ts';
import { sampleBilinear as sample } from './sample.ts';
import { median } from './stats.ts';

export interface TipStepParams {
  /** The windows on either side of the tip start this far from it, along the sheet (frame px). */
  near: number;
  /** ...and end this far (frame px). */
  far: number;
  /** Half width of the windows across the sheet (frame px). */
  halfWidth: number;
  /** A cathode's confidence is scaled by min(1, ratio / fullAt); ratio <= 0 gives 0. */
  fullAt: number;
}

export const DEFAULT_TIP_STEP_PARAMS: TipStepParams = { near: 3, far: 8, halfWidth: 0.7, fullAt: 0.2 };

/** Samples per window: along x across. */
const ALONG = 6;
const ACROSS = 3;

/** Mean intensity behind minus ahead of (x, y); `ux, uy` is the unit vector the tips point along. */
export function tipStep(img: Image, x: number, y: number, ux: number, uy: number, p: TipStepParams = DEFAULT_TIP_STEP_PARAMS): number {
  const vx = -uy;
  const vy = ux;
  let behind = 0;
  let ahead = 0;
  for (let i = 0; i < ALONG; i++) {
    const t = p.near + ((p.far - p.near) * i) / (ALONG - 1);
    for (let j = 0; j < ACROSS; j++) {
      const c = -p.halfWidth + (2 * p.halfWidth * j) / (ACROSS - 1);
      behind += sample(img, x - t * ux + c * vx, y - t * uy + c * vy);
      ahead += sample(img, x + t * ux + c * vx, y + t * uy + c * vy);
    }
  }
  return (behind - ahead) / (ALONG * ACROSS);
}

/**
 * Each cathode's tip step divided by the median step of the frame's cathodes (NaN for anodes and
 * for poles given as NaN). All NaN when fewer than 3 cathodes are given or their median step is 0:
 * then the frame gives no reference to judge against.
 */
export function cathodeStepRatios(
  img: Image,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  sheets: readonly Sheet[],
  tipDirection: readonly [number, number],
  p: TipStepParams = DEFAULT_TIP_STEP_PARAMS,
): Float64Array {
  const [ux, uy] = tipDirection;
  const ratios = new Float64Array(sheets.length).fill(Number.NaN);
  const steps: number[] = [];
  for (let i = 0; i < sheets.length; i++) {
    if (sheets[i] !== 'C' || !Number.isFinite(x[i]!) || !Number.isFinite(y[i]!)) continue;
    ratios[i] = tipStep(img, x[i]!, y[i]!, ux, uy, p);
    steps.push(ratios[i]!);
  }
  const ref = median(steps);
  if (steps.length < 3 || !(Math.abs(ref) > 0)) return ratios.fill(Number.NaN);
  for (let i = 0; i < ratios.length; i++) ratios[i] = ratios[i]! / ref;
  return ratios;
}

/** The factor a pole's confidence is scaled by: 1 without evidence either way (NaN). */
export function tipEvidenceFactor(ratio: number, p: TipStepParams = DEFAULT_TIP_STEP_PARAMS): number {
  if (Number.isNaN(ratio)) return 1;
  return Math.min(1, Math.max(0, ratio / p.fullAt));
}

/**
 * The poles' confidences with each confident cathode's scaled by the evidence of a tip where it
 * was placed. Poles below `minConfidence` are missing already: they neither get checked nor set
 * the frame's reference step.
 */
export function checkCathodeTips(
  img: Image,
  orientation: Orientation,
  poles: { x: Float64Array; y: Float64Array; conf: Float64Array },
  sheets: readonly Sheet[],
  minConfidence: number,
  p: TipStepParams = DEFAULT_TIP_STEP_PARAMS,
): Float64Array {
  // Canonical +x (where tips point) in frame pixels.
  const { exx, exy } = canonicalAffine(img.width, img.height, orientation);
  const x = poles.x.map((v, i) => (poles.conf[i]! >= minConfidence ? v : Number.NaN));
  const ratios = cathodeStepRatios(img, x, poles.y, sheets, [exx, exy], p);
  return poles.conf.map((c, i) => c * tipEvidenceFactor(ratios[i]!, p));
}

export interface SharedTipParams {
  /** Two poles of one kind closer than this share of the anode pitch claim one tip. */
  within: number;
  /** The weaker of the two loses its claim only below this confidence: at fine pitch a confident
   *  pair is two sheets merged by the blur, not one sheet counted twice. */
  weakBelow: number;
}

export const DEFAULT_SHARED_TIP_PARAMS: SharedTipParams = { within: 0.3, weakBelow: 0.6 };

type Poles = { x: Float64Array; y: Float64Array; conf: Float64Array };

/** Distances across the sheets (canonical y) and the frame's anode spacing: the median over
 *  neighbouring anodes placed (NaN with fewer than 3). */
function acrossSheets(width: number, height: number, orientation: Orientation, { x, y }: Poles, sheets: readonly Sheet[]) {
  const { eyx, eyy } = canonicalAffine(width, height, orientation);
  const across = (a: number, b: number) => Math.abs((x[b]! - x[a]!) * eyx + (y[b]! - y[a]!) * eyy);
  const anodes = sheets.flatMap((s, i) => (s === 'A' && Number.isFinite(x[i]!) && Number.isFinite(y[i]!) ? [i] : []));
  const spacing = anodes.length < 3 ? Number.NaN : median(anodes.slice(1).map((b, k) => across(anodes[k]!, b)));
  return { across, anodes, spacing };
}

/** The tips two poles of one kind claim: the pairs closer than `near` frame px, weaker pole first. */
function sharedTips({ x, y, conf }: Poles, sheets: readonly Sheet[], near: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < sheets.length; i++) {
    for (let j = i + 1; j < sheets.length; j++) {
      if (sheets[j] !== sheets[i] || !(Math.hypot(x[i]! - x[j]!, y[i]! - y[j]!) < near)) continue;
      pairs.push(conf[i]! <= conf[j]! ? [i, j] : [j, i]);
    }
  }
  return pairs;
}

/**
 * One tip, one pole: where two poles of the same kind (anode and anode, cathode and cathode) sit
 * within `within` x the anode pitch of each other, the weaker one, if below `weakBelow`, has no
 * tip of its own and its confidence becomes 0 (POLE_MISSING). The model puts a cathode recessed
 * far behind the others on its neighbour's tip at low confidence, and the tip check cannot see it:
 * a cathode does end there (escape, frame 000241 of the seed-90 size sets). The pitch is the
 * median spacing of neighbouring anodes across the sheets (canonical y).
 */
export function checkSharedTips(
  width: number,
  height: number,
  orientation: Orientation,
  poles: Poles,
  sheets: readonly Sheet[],
  p: SharedTipParams = DEFAULT_SHARED_TIP_PARAMS,
): Float64Array {
  const conf = Float64Array.from(poles.conf);
  const { spacing } = acrossSheets(width, height, orientation, poles, sheets);
  if (!(spacing > 0)) return conf;
  for (const [weaker] of sharedTips(poles, sheets, p.within * spacing)) {
    if (poles.conf[weaker]! < p.weakBelow) conf[weaker] = 0;
  }
  return conf;
}

export interface SheetCountParams {
  /** A cathode keeps its confidence while its two anodes stand at most this many anode spacings
   *  apart... */
  trustedUpTo: number;
  /** ...and keeps none of it from this many on: room for a sheet pair that no pole stands for. */
  emptyFrom: number;
  /** A frame with this many tips claimed by two poles of one kind (within SharedTipParams.within)
   *  has fewer sheets than poles: the weaker pole of each loses its claim, however confident. */
  manyShared: number;
}

export const DEFAULT_SHEET_COUNT_PARAMS: SheetCountParams = { trustedUpTo: 1.8, emptyFrom: 2.2, manyShared: 2 };

/**
 * The poles and the stack's sheets agree in number.
 * - More sheets than poles: a cathode whose two anodes stand much further apart (canonical y) than
 *   the frame's anode spacing has sheets between them that no pole stands for, and its overhang is
 *   measured against anodes that are not its neighbours. Its confidence falls linearly from 1x at
 *   `trustedUpTo` spacings to 0 at `emptyFrom` (POLE_MISSING). On a stack with more sheets than the
 *   recipe the model puts its poles on the top and bottom sheets and skips the middle ones: 33 of
 *   the 34 real frames show such a gap (2.1-12 spacings), where 673 of the 674 PASS frames of the
 *   synthetic test set stay under 1.7.
 * - Fewer sheets than poles: on a stack of 13-15 anodes against 16 the model puts two confident
 *   poles on each of two or three tips. With `manyShared` such tips or more in a frame, the weaker
 *   pole of each gets confidence 0; one alone is left to checkSharedTips (a blur merge at fine pitch).
 * Returns the confidences, per cathode the spacings its anodes stand apart (NaN for anodes), and
 * how many tips two poles claim (docs/inference.md, twenty-second session).
 */
export function checkSheetCount(
  width: number,
  height: number,
  orientation: Orientation,
  poles: Poles,
  sheets: readonly Sheet[],
  p: SheetCountParams = DEFAULT_SHEET_COUNT_PARAMS,
): { conf: Float64Array; spacings: Float64Array; shared: number } {
  const conf = Float64Array.from(poles.conf);
  const spacings = new Float64Array(sheets.length).fill(Number.NaN);
  const { across, anodes, spacing } = acrossSheets(width, height, orientation, poles, sheets);
  if (!(spacing > 0)) return { conf, spacings, shared: 0 };
  for (let i = 1; i + 1 < sheets.length; i++) {
    // Recipes interleave A C A: a cathode's anodes are the sheets just above and below it.
    if (sheets[i] !== 'C' || !anodes.includes(i - 1) || !anodes.includes(i + 1)) continue;
    spacings[i] = across(i - 1, i + 1) / spacing;
    conf[i] = conf[i]! * Math.min(1, Math.max(0, (p.emptyFrom - spacings[i]!) / (p.emptyFrom - p.trustedUpTo)));
  }
  const shared = sharedTips(poles, sheets, DEFAULT_SHARED_TIP_PARAMS.within * spacing);
  if (shared.length >= p.manyShared) for (const [weaker] of shared) conf[weaker] = 0;
  return { conf, spacings, shared: shared.length };
}
