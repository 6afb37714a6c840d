// ROI estimation, SPEC step 2 / arXiv 2412.17105 §2.1: a centre from the N best oFAST corners,
// a row-wise accumulated grayscale profile in canonical orientation, two pointers stepping
// toward the centre row (from the top by b, from the bottom by a) that stop where the profile
// darkens by more than a threshold, and a width of alpha times the height around the centre.
// Robustness (measured in docs/roi.md): the centre comes from the cluster of corners whose
// bright side faces the tips and which lies on horizontal sheets (the pole tips), followed along
// the tips' column, not from all corners (fixtures, tray, field edge, noise); the profile only
// spans the columns around it, and the pointers start just outside the tips' rows.
import { FrameError } from '../errors.ts';
import { boxFromCanonical, canonicalSize, toCanonical } from '../frame/orientation.ts';
import type { Box, Corners, Image, Orientation } from '../types.ts';
import { detectCorners, detectCornersAsync } from './corners.ts';
import type { AsyncOptions } from './image-args.ts';
import { halfSize, rectSums, sampledRange, stripeMean } from './sheets.ts';
import { median } from './stats.ts';

/** How the centre is taken from the corners (the paper: 'mean'). */
export type CentreStrategy = 'mean' | 'median' | 'cluster' | 'tips';
export const CENTRE_STRATEGIES: readonly CentreStrategy[] = ['mean', 'median', 'cluster', 'tips'];

export interface RoiParams {
  /** N: how many corners (the best by Harris) the centre is taken from. */
  corners: number;
  /** FAST threshold on a 0..255 scale, scaled to the frame's grey range (cornerThreshold). */
  threshold8: number;
  centre: CentreStrategy;
  /** Neighbourhood radius of 'cluster' and 'tips', as a fraction of the canonical frame height. */
  clusterRadius: number;
  /** 'tips' keeps corners whose bright side (ORB angle) lies within this many degrees of +x canonical. */
  tipAngle: number;
  /** 'tips': half width of the tips' column around the cluster's median x, as a share of clusterRadius. */
  columnWidth: number;
  /** 'tips': largest gap (fraction of the canonical frame height) between corners along the tips' column. */
  columnGap: number;
  /** 'tips': share of the column's corners left out at each end of its x range (strays); the
   *  outermost tips set it, so by default none. */
  tailX: number;
  /** 'tips': the same for the y range (the pointers extend it to the stack's edges). */
  tailY: number;
  /** Half width of the profile's column band around the centre, as a fraction of the canonical
   *  frame height; 0 = every column (the paper). */
  band: number;
  /** b: step of the upper pointer (px). */
  stepTop: number;
  /** a: step of the lower pointer (px). */
  stepBottom: number;
  /** A pointer stops where the profile darkens toward the centre by this share of its range over one step. */
  gradient: number;
  /** The pointers start this far (fraction of the canonical frame height) outside the corner
   *  group's rows, or at the frame edge, whichever is nearer; 1 = always at the frame edge (the paper). */
  reach: number;
  /** Extra rows above and below the found bounds, as a share of the found height. */
  margin: number;
  /** Width = alpha * height. */
  alpha: number;
  /** The fractions of the canonical frame height above (clusterRadius, columnGap, band, reach)
   *  are taken of at least minRows and at most maxRows rows: the stack's pitch stays 8-30 px
   *  (SPEC) whatever the frame's size, so a share of a small frame is too small to follow it,
   *  and a share of a large one spans far more than the stack. */
  minRows: number;
  maxRows: number;
  /** The box reaches this share of its height beyond the tip corners' outermost x (canonical +x);
   *  the rest of its width lies behind them. 0.5 * alpha = centred on the corners (the paper). */
  front: number;
  /** The box reaches at least this many px behind the outermost tip corner (canonical -x): a
   *  cathode's tip lies up to its overhang behind the anodes' whatever the stack's height, so a
   *  box in proportion to a thin stack alone misses recessed cathodes. 0 = no floor. */
  minBack: number;
}

export const DEFAULT_ROI_PARAMS: Readonly<RoiParams> = Object.freeze({
  corners: 512,
  threshold8: 12,
  centre: 'tips',
  clusterRadius: 0.15,
  tipAngle: 60,
  columnWidth: 1,
  columnGap: 0.03,
  tailX: 0,
  tailY: 0.02,
  band: 0.08,
  stepTop: 4,
  stepBottom: 4,
  gradient: 0.1,
  reach: 0.05,
  margin: 0.1,
  alpha: 0.5,
  minRows: 1000,
  maxRows: 2048,
  front: 0.1,
  // Twice the default recipe's largest overhang (1.60 mm at 0.02 mm/px): the pipeline sets it
  // from its recipe (backReachPx). Tuning set: recall 99.3 -> 99.5%, area 2.59 -> 2.69 (docs/roi.md).
  minBack: 160,
});

/** A box's least reach behind the tips for a recipe: `times` its largest in-spec overhang, in px
 *  (the ROI: twice; the pipeline's second pass: its secondPassBackReach). */
export function backReachPx(recipe: { overhangMaxMm: number; pixelPitchMm: number }, times = 2): number {
  return Math.round((times * recipe.overhangMaxMm) / recipe.pixelPitchMm);
}

/** Corners too few to say where a stack is. */
const MIN_CORNERS = 4;

/** Validates params at the boundary (config, CLI); names the bad field. */
export function makeRoiParams(over: Partial<RoiParams> = {}): RoiParams {
  const p: RoiParams = { ...DEFAULT_ROI_PARAMS, ...over };
  const check = (ok: boolean, field: keyof RoiParams, what: string) => {
    if (!ok) throw new RangeError(`roi.${field} must be ${what}, got ${JSON.stringify(p[field])}`);
  };
  check(Number.isInteger(p.corners) && p.corners >= MIN_CORNERS, 'corners', `an integer >= ${MIN_CORNERS}`);
  check(Number.isInteger(p.threshold8) && p.threshold8 >= 1 && p.threshold8 <= 255, 'threshold8', 'an integer from 1 to 255');
  check(CENTRE_STRATEGIES.includes(p.centre), 'centre', `one of ${CENTRE_STRATEGIES.join(', ')}`);
  check(p.clusterRadius > 0 && p.clusterRadius <= 1, 'clusterRadius', 'in (0, 1]');
  check(p.tipAngle > 0 && p.tipAngle <= 180, 'tipAngle', 'in (0, 180]');
  check(p.columnWidth > 0 && p.columnWidth <= 4, 'columnWidth', 'in (0, 4]');
  check(p.columnGap > 0 && p.columnGap <= 1, 'columnGap', 'in (0, 1]');
  check(p.tailX >= 0 && p.tailX < 0.5, 'tailX', 'in [0, 0.5)');
  check(p.tailY >= 0 && p.tailY < 0.5, 'tailY', 'in [0, 0.5)');
  check(p.band >= 0 && p.band <= 1, 'band', 'in [0, 1]');
  check(Number.isInteger(p.stepTop) && p.stepTop >= 1, 'stepTop', 'an integer >= 1');
  check(Number.isInteger(p.stepBottom) && p.stepBottom >= 1, 'stepBottom', 'an integer >= 1');
  check(p.gradient > 0 && p.gradient < 1, 'gradient', 'in (0, 1)');
  check(p.reach > 0 && p.reach <= 1, 'reach', 'in (0, 1]');
  check(p.margin >= 0 && p.margin <= 1, 'margin', 'in [0, 1]');
  check(p.alpha > 0 && p.alpha <= 4, 'alpha', 'in (0, 4]');
  check(Number.isInteger(p.minRows) && p.minRows >= 0 && p.minRows <= 100000, 'minRows', 'an integer from 0 to 100000');
  check(Number.isInteger(p.maxRows) && p.maxRows >= Math.max(1, p.minRows) && p.maxRows <= 100000, 'maxRows', `an integer from max(1, minRows = ${p.minRows}) to 100000`);
  check(p.front >= 0 && p.front <= 4, 'front', 'in [0, 4]');
  check(p.minBack >= 0 && p.minBack <= 100000, 'minBack', 'from 0 to 100000 px');
  return p;
}

/**
 * FAST threshold in the frame's own units: threshold8 on the 0..255 scale, scaled to the frame's
 * grey range (0.5th to 99.5th percentile). Raw 16-bit frames often hold 12- or 14-bit counts, and
 * some 8-bit exports are dim: a fixed threshold8 * 257 finds no corners in them.
 */
export function cornerThreshold(img: Image, params: Pick<RoiParams, 'threshold8'> = DEFAULT_ROI_PARAMS): number {
  return scaledThreshold(greyRange(img), img.depth, params.threshold8);
}

/** threshold8 (0..255 scale) in the units of a frame of this depth and grey range. */
export function scaledThreshold([lo, hi]: [number, number], depth: 8 | 16, threshold8: number): number {
  const t = Math.round((threshold8 * (hi - lo)) / 255);
  return Math.min(depth === 8 ? 255 : 65535, Math.max(1, t));
}

/** 0.5th and 99.5th percentile of about 65k evenly spread pixels (the addon counts them: no sort per frame). */
export function greyRange(img: Image): [number, number] {
  return sampledRange(img, Math.max(1, Math.floor(img.pixels.length / 65536)));
}

/**
 * The ROI stage on its own: the N best oFAST corners of the frame and of its 2 x 2 binned half,
 * each through the corner group of estimateRoi; the group that stands better on sheets sets the
 * box. Blurred, dim tips may give no corners at the default threshold: before giving up on a
 * scale, its threshold is halved, twice at most. `stepOne`: the frame's first rung when the caller
 * has it already (SPEC step 1 feeds both the ROI and the refinement): the threshold
 * cornerThreshold(img, params) and exactly the params.corners best corners at it.
 */
export function roiForFrame(img: Image, orientation: Orientation, params: RoiParams = DEFAULT_ROI_PARAMS, stepOne?: StepOne): Box {
  return roiBox(img, roiGroups(img, orientation, params, stepOne)[0]!, orientation, params);
}

/** roiForFrame with the corners found off the event loop; the same ROI. */
export async function roiForFrameAsync(img: Image, orientation: Orientation, params: RoiParams = DEFAULT_ROI_PARAMS, stepOne?: StepOne, how: AsyncOptions = {}): Promise<Box> {
  return roiBox(img, (await roiGroupsAsync(img, orientation, params, stepOne, how))[0]!, orientation, params);
}

/**
 * The ROI stage's candidate corner groups, best first (the first sets roiForFrame's box); never
 * empty: ROI_NOT_FOUND when no group stands on sheets. The later ones are where to look next
 * when the model sees no stack in the first box (roiBox gives each one's box).
 */
export function roiGroups(img: Image, orientation: Orientation, params: RoiParams = DEFAULT_ROI_PARAMS, stepOne?: StepOne): CornerGroup[] {
  const search = roiSearch(img, orientation, params, stepOne);
  for (let step = search.next(); ; ) {
    if (step.done) return step.value;
    step = search.next(detectCorners(step.value.image, step.value.opts));
  }
}

/** roiGroups with the corners found off the event loop (`how.inPlace`: the caller's frame is read in place). */
export async function roiGroupsAsync(
  img: Image,
  orientation: Orientation,
  params: RoiParams = DEFAULT_ROI_PARAMS,
  stepOne?: StepOne,
  how: AsyncOptions = {},
): Promise<CornerGroup[]> {
  const search = roiSearch(img, orientation, params, stepOne);
  for (let step = search.next(); ; ) {
    if (step.done) return step.value;
    // The halved frames are made here and touched by nothing else: always read in place.
    const inPlace = how.inPlace === true || step.value.image !== img;
    step = search.next(await detectCornersAsync(step.value.image, step.value.opts, { inPlace }));
  }
}

/** A corner detection the search needs: the sync and async entry points run it their way. */
interface DetectRequest {
  image: Image;
  opts: { threshold: number; maxCorners: number };
}

/** The ROI search, yielding each corner detection it needs and receiving its corners. */
function* roiSearch(img: Image, orientation: Orientation, params: RoiParams, stepOne?: StepOne): Generator<DetectRequest, CornerGroup[], Corners> {
  const groups: CornerGroup[] = [];
  for (const [im, scale] of scales(img)) {
    for (const [rung, t] of thresholdLadder(im, params, scale === 1 ? stepOne?.threshold : undefined).entries()) {
      const found = scale === 1 && rung === 0 && stepOne ? stepOne.corners : yield { image: im, opts: { threshold: t, maxCorners: params.corners } };
      const g = groupsOrNone(img, scaleCorners(found, scale), orientation, params);
      if (g.length > 0) {
        groups.push(...g);
        break;
      }
    }
  }
  return ranked(groups);
}

/**
 * The frame and its 2 x 2 binned half: in noisy frames the 512 best corners of the full frame can
 * all be noise, and blurred tips give none; at half size the noise halves and the tips sharpen
 * (tuning set: 22 of 33 missed frames had their group on noise or a fixture).
 */
function scales(img: Image): [Image, number][] {
  return img.width >= 4 && img.height >= 4 ? [[img, 1], [halfSize(img), 2]] : [[img, 1]];
}

function groupsOrNone(img: Image, corners: Corners, orientation: Orientation, params: RoiParams): CornerGroup[] {
  try {
    return cornerGroups(img, corners, orientation, params);
  } catch (err) {
    if (err instanceof FrameError) return [];
    throw err;
  }
}

/** The groups of both scales by how well they stand on sheets (scored on the full frame), best
 *  first; of equal scores the full frame's first. None: ROI_NOT_FOUND. */
function ranked(groups: CornerGroup[]): CornerGroup[] {
  if (groups.length === 0) throw new FrameError('ROI_NOT_FOUND', 'no group of tip-like corners lies on horizontal sheets: no stack in view');
  return groups.sort((a, b) => (b.score ?? 0) - (a.score ?? 0));
}

/** Corners of a binned frame in the full frame's pixels. */
function scaleCorners(c: Corners, scale: number): Corners {
  if (scale === 1) return c;
  const x = c.x.map((v) => scale * v + (scale - 1) / 2);
  const y = c.y.map((v) => scale * v + (scale - 1) / 2);
  return { ...c, x, y };
}

/** The full frame's first rung, detected by the caller (the pipeline's SPEC step 1). */
export interface StepOne {
  threshold: number;
  corners: Corners;
}

/** The FAST thresholds roiForFrame tries in turn: the frame's threshold (`known` when the caller
 *  has it), its half, its quarter. */
function thresholdLadder(img: Image, params: RoiParams, known?: number): number[] {
  const t = known ?? cornerThreshold(img, params);
  return [...new Set([t, Math.max(1, Math.round(t / 2)), Math.max(1, Math.round(t / 4))])];
}

/**
 * The ROI [x, y, w, h] in frame pixels as delivered. Throws FrameError('ROI_NOT_FOUND') when the
 * corners show no stack.
 */
export function estimateRoi(img: Image, corners: Corners, orientation: Orientation, params: RoiParams = DEFAULT_ROI_PARAMS): Box {
  return roiBox(img, cornerGroup(img, corners, orientation, params), orientation, params);
}

/** The box around a corner group: the pointers on the row profile, then margins and width. */
export function roiBox(img: Image, g: CornerGroup, orientation: Orientation, params: RoiParams = DEFAULT_ROI_PARAMS): Box {
  const [cw, ch] = canonicalSize(img.width, img.height, orientation);
  const rows = scaleRows(ch, params);
  let c0 = 0;
  let c1 = cw - 1;
  if (params.band > 0) {
    const half = params.band * rows;
    c0 = Math.min(cw - 1, Math.max(0, Math.round(g.x0 - half)));
    c1 = Math.max(c0, Math.min(cw - 1, Math.round(g.x1 + half)));
  }
  const profile = rowProfile(img, orientation, c0, c1);
  if (g.negative) for (let r = 0; r < profile.length; r++) profile[r] = 1 - profile[r];
  const first = Math.max(0, Math.round(g.y0 - params.reach * rows));
  const last = Math.min(ch - 1, Math.round(g.y1 + params.reach * rows));
  let [top, bottom] = stackRows(profile, first, last, Math.round(g.cy), params);
  // The tip corners lie on the stack: a pointer stopping inside their rows stopped on a lighter
  // band within the stack (separator shadow, heel effect), not on its edge.
  top = Math.min(top, g.y0);
  bottom = Math.max(bottom, g.y1);
  const pad = params.margin * (bottom - top);
  const h = bottom - top + 2 * pad;
  const w = Math.max(params.alpha * h, g.x1 - g.x0 + 2 * pad);
  // No pole lies beyond the outermost tip corner by more than a few px, while a cathode's tip may
  // lie far behind the anodes' (high overhang): the box ends `front` * h past the tip corners and
  // spends the rest of its width behind them (centred as before when the corners span it).
  // A centre point (mean, median) has no tip side: centred, as the paper.
  if (params.centre !== 'tips') return boxFromCanonical([(g.x0 + g.x1) / 2 - w / 2, top - pad, w, h], img.width, img.height, orientation);
  const x = Math.min(g.x0 - pad, g.x1 + params.front * h - w);
  const back = Math.min(x, g.x1 - params.minBack);
  return boxFromCanonical([back, top - pad, w + x - back, h], img.width, img.height, orientation);
}

/** The rows the height shares of RoiParams are taken of, for a canonical frame height ch. */
function scaleRows(ch: number, params: Pick<RoiParams, 'minRows' | 'maxRows'>): number {
  return Math.min(params.maxRows, Math.max(ch, params.minRows));
}

/** Where the corners say the poles are, canonical: a centre and the x / y range of the chosen corners. */
export interface CornerGroup {
  cx: number;
  cy: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  /** The frame is a negative (attenuation bright): the stack is a bright band. */
  negative: boolean;
  /** 'tips': how strongly the chosen corners stand on sheets (corner count times stripe score). */
  score?: number;
}

/** The centre (and extent) of the corners by the chosen strategy, in canonical coordinates. */
export function cornerGroup(img: Image, corners: Corners, orientation: Orientation, params: RoiParams = DEFAULT_ROI_PARAMS): CornerGroup {
  const [best] = cornerGroups(img, corners, orientation, params);
  if (!best) throw new FrameError('ROI_NOT_FOUND', 'no group of tip-like corners lies on horizontal sheets: no stack in view');
  return best;
}

/**
 * Every candidate group, best first: one for 'mean', 'median' and 'cluster'; for 'tips' each
 * corner cluster that stands on sheets, by score (none: an empty list).
 */
export function cornerGroups(img: Image, corners: Corners, orientation: Orientation, params: RoiParams = DEFAULT_ROI_PARAMS): CornerGroup[] {
  const rows = scaleRows(canonicalSize(img.width, img.height, orientation)[1], params);
  const n = corners.count;
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  for (let i = 0; i < n; i++) [xs[i], ys[i]] = toCanonical(corners.x[i], corners.y[i], img.width, img.height, orientation);
  const all = Array.from({ length: n }, (_, i) => i);
  const radius = params.clusterRadius * rows;
  const point = (cx: number, cy: number): CornerGroup => ({ cx, cy, x0: cx, x1: cx, y0: cy, y1: cy, negative: false });
  if (params.centre !== 'tips' && n < MIN_CORNERS) {
    throw new FrameError('ROI_NOT_FOUND', `${n} corners (need ${MIN_CORNERS}): no stack in view`);
  }
  switch (params.centre) {
    case 'mean':
      return [point(mean(xs, all), mean(ys, all))];
    case 'median':
      return [point(median(all.map((i) => xs[i]!)), median(all.map((i) => ys[i]!)))];
    case 'cluster':
      return [{ ...extent(xs, ys, clustersByDensity(xs, ys, all, radius, 1)[0]), negative: false }];
    case 'tips': {
      // Some exports store the negative (attenuation bright): then a tip's bright side faces
      // back along its sheet. Both readings are tried; the better sheet cluster decides.
      const ranked: { members: number[]; score: number; negative: boolean }[] = [];
      for (const negative of [false, true]) {
        const turn = CANONICAL_TURN[orientation];
        const keep = all.filter((i) => {
          const a = (turn.mirror ? 180 - corners.angle[i] : corners.angle[i] + turn.add) + (negative ? 180 : 0);
          return angleFromZero(a) <= params.tipAngle;
        });
        if (keep.length < MIN_CORNERS) continue;
        for (const c of clustersByDensity(xs, ys, keep, radius, 8)) {
          const score = c.length * stripeScore(img, orientation, extent(xs, ys, c), radius);
          // A tall stack's tips outrun one neighbourhood: follow their column up and down.
          if (score > 0) ranked.push({ members: followColumn(xs, ys, keep, c, params.columnWidth * radius, params.columnGap * rows), score, negative });
        }
      }
      // Stable: of equal scores the first found leads.
      ranked.sort((a, b) => b.score - a.score);
      return ranked.map((g) => ({ ...extent(xs, ys, g.members, params.tailX, params.tailY), negative: g.negative, score: g.score }));
    }
  }
}

/** Median centre and the q to 1-q percentile extent of a corner set in x and y (strays stay out). */
function extent(xs: Float64Array, ys: Float64Array, idx: number[], tailX = 0.05, tailY = tailX): Omit<CornerGroup, 'negative'> {
  const sx = idx.map((i) => xs[i]).sort((a, b) => a - b);
  const sy = idx.map((i) => ys[i]).sort((a, b) => a - b);
  const q = (s: number[], f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))];
  return { cx: q(sx, 0.5), cy: q(sy, 0.5), x0: q(sx, tailX), x1: q(sx, 1 - tailX), y0: q(sy, tailY), y1: q(sy, 1 - tailY) };
}

/**
 * Grows a corner set along canonical y: corners within `halfWidth` of its median x join when they
 * lie within `gap` rows of a member, so the set follows the tips' column to both ends.
 */
function followColumn(xs: Float64Array, ys: Float64Array, idx: number[], seed: number[], halfWidth: number, gap: number): number[] {
  const sx = seed.map((i) => xs[i]).sort((a, b) => a - b);
  const mx = sx[sx.length >> 1];
  const column = idx.filter((i) => Math.abs(xs[i] - mx) <= halfWidth).sort((a, b) => ys[a] - ys[b]);
  const sy = seed.map((i) => ys[i]).sort((a, b) => a - b);
  let y0 = sy[0];
  let y1 = sy[sy.length - 1];
  const inSeed = new Set(seed);
  const start = column.findIndex((i) => inSeed.has(i));
  if (start < 0) return seed;
  let lo = start;
  let hi = start;
  // Extend over the sorted column while the next corner is within `gap` of the run so far.
  while (hi + 1 < column.length && ys[column[hi + 1]] <= Math.max(y1, ys[column[hi]]) + gap) {
    hi++;
    y1 = Math.max(y1, ys[column[hi]]);
  }
  while (lo - 1 >= 0 && ys[column[lo - 1]] >= Math.min(y0, ys[column[lo]]) - gap) {
    lo--;
    y0 = Math.min(y0, ys[column[lo]]);
  }
  return column.slice(lo, hi + 1);
}

/**
 * Up to `count` disjoint clusters, densest first: the corners within `radius` of the corner with
 * the most such neighbours, removed before the next one is sought.
 */
function clustersByDensity(xs: Float64Array, ys: Float64Array, idx: number[], radius: number, count: number): number[][] {
  const r2 = radius * radius;
  const m = idx.length;
  // Neighbour lists once (positions in idx); removing a cluster then only lowers its neighbours'
  // counts instead of recounting every pair for every cluster.
  const near: number[][] = Array.from({ length: m }, () => []);
  for (let a = 0; a < m; a++) {
    for (let b = a; b < m; b++) {
      if ((xs[idx[a]] - xs[idx[b]]) ** 2 + (ys[idx[a]] - ys[idx[b]]) ** 2 <= r2) {
        near[a].push(b);
        if (b !== a) near[b].push(a);
      }
    }
  }
  const counts = near.map((list) => list.length);
  const alive = new Uint8Array(m).fill(1);
  let left = m;
  const clusters: number[][] = [];
  while (clusters.length < count && left >= MIN_CORNERS) {
    // The first live corner with the most live neighbours (ties: the earlier one in idx).
    let best = -1;
    for (let a = 0; a < m; a++) if (alive[a] && (best < 0 || counts[a] > counts[best])) best = a;
    const members = near[best].filter((b) => alive[b]).sort((a, b) => a - b);
    if (clusters.length > 0 && members.length < MIN_CORNERS) break;
    clusters.push(members.map((b) => idx[b]));
    for (const b of members) alive[b] = 0;
    for (const b of members) for (const c of near[b]) counts[c]--;
    left -= members.length;
  }
  return clusters;
}

/**
 * How much the region a corner group spans looks like horizontal sheets: the mean of
 * |dI/dy| - |dI/dx| over the group's canonical extent (at least radius/2 wide and radius tall).
 * Between the cathode tips and the anode tips only the anodes run, dark lines with light gaps,
 * the strongest horizontal structure in a frame; noise, the field edge and block-like fixtures
 * score about zero or below.
 */
export function stripeScore(img: Image, orientation: Orientation, g: Omit<CornerGroup, 'negative'>, radius: number): number {
  const window = {
    x0: Math.min(g.x0, g.cx - radius / 4),
    x1: Math.max(g.x1, g.cx + radius / 4),
    y0: Math.min(g.y0, g.cy - radius / 2),
    y1: Math.max(g.y1, g.cy + radius / 2),
  };
  return stripeMean(img, orientation, window, STRIPE_SMOOTH);
}

/** Pixels each derivative of the stripe score is averaged over (odd). */
const STRIPE_SMOOTH = 9;

// Frame angle (degrees, y down) -> canonical angle, following orientation.ts's transforms.
const CANONICAL_TURN: Record<Orientation, { mirror: boolean; add: number }> = {
  'tips-right': { mirror: false, add: 0 },
  'tips-left': { mirror: true, add: 0 },
  'tips-up': { mirror: false, add: 90 },
  'tips-down': { mirror: false, add: -90 },
};

function angleFromZero(deg: number): number {
  const a = ((deg % 360) + 360) % 360;
  return a > 180 ? 360 - a : a;
}

function mean(v: Float64Array, idx: number[]): number {
  let s = 0;
  for (const i of idx) s += v[i];
  return s / idx.length;
}

/**
 * Mean grey value (0..1 of full scale) of each canonical row over canonical columns c0..c1,
 * read straight from the frame's rows (tips-right/left) or columns (tips-up/down).
 */
export function rowProfile(img: Image, orientation: Orientation, c0: number, c1: number): Float64Array {
  const { width: W, height: H } = img;
  const [, ch] = canonicalSize(W, H, orientation);
  const sums = new Float64Array(ch);
  // The band's frame rectangle; pixel centres are integers, so map the two corner pixels.
  const [fx, fy, fw, fh] = boxFromCanonical([c0, 0, c1 - c0, ch - 1], W, H, orientation);
  const x0 = Math.round(fx);
  const x1 = Math.round(fx + fw);
  const y0 = Math.round(fy);
  const y1 = Math.round(fy + fh);
  const alongRows = orientation === 'tips-right' || orientation === 'tips-left';
  const part = rectSums(img, x0, y0, x1, y1, alongRows);
  if (alongRows) {
    for (let y = y0; y <= y1; y++) sums[toCanonical(x0, y, W, H, orientation)[1]] += part[y - y0];
  } else {
    // Canonical row index runs with x (tips-up) or against it (tips-down).
    const r0 = toCanonical(x0, y0, W, H, orientation)[1];
    const dr = toCanonical(x0 + 1, y0, W, H, orientation)[1] - r0;
    for (let x = x0, r = r0; x <= x1; x++, r += dr) sums[r] += part[x - x0];
  }
  const scale = 1 / ((c1 - c0 + 1) * (img.depth === 8 ? 255 : 65535));
  for (let r = 0; r < ch; r++) sums[r] *= scale;
  return sums;
}

/**
 * The paper's two pointers: the upper one steps down from row `first` by b, the lower one up from
 * row `last` by a, both toward the centre row; each stops at the first step over which the
 * profile darkens toward the centre by gradient * (profile range between first and last).
 * Darkening, not any change: the stack is dark, while the field edge and the gap above a tray
 * brighten toward it. A pointer that reaches the centre row without stopping found no edge (the
 * stack runs off the frame, or a faint edge): its start row is the bound.
 */
export function stackRows(
  profile: Float64Array,
  first: number,
  last: number,
  centreRow: number,
  params: Pick<RoiParams, 'stepTop' | 'stepBottom' | 'gradient'>,
): [number, number] {
  const centre = Math.min(last, Math.max(first, centreRow));
  let lo = Infinity;
  let hi = -Infinity;
  for (let r = first; r <= last; r++) {
    if (profile[r] < lo) lo = profile[r];
    if (profile[r] > hi) hi = profile[r];
  }
  // A flat profile has no edge: need = 0 would stop at once, so ask for more than nothing.
  const need = Math.max(params.gradient * (hi - lo), Number.MIN_VALUE);
  const b = params.stepTop;
  const a = params.stepBottom;
  let top = first;
  for (let u = first; u + b <= centre; u += b) {
    if (profile[u] - profile[u + b] >= need) {
      top = u;
      break;
    }
  }
  let bottom = last;
  for (let l = last; l - a >= centre; l -= a) {
    if (profile[l] - profile[l - a] >= need) {
      bottom = l;
      break;
    }
  }
  return [top, bottom];
}
