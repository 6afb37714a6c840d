// One synthetic frame: draws every parameter from the frame's seed, lays out the cell in scene
// coordinates, maps ground truth through the same transform as the pixels, renders, exports.
import { DEFAULT_RECIPE, type Recipe } from '../inspect/recipe.ts';
import { judge } from '../inspect/verdict.ts';
import { canonicalSize, fromCanonical, toCanonical } from '../frame/orientation.ts';
import { ORIENTATIONS, type FailReason, type Image, type Orientation } from '../types.ts';
import { median } from '../vision/stats.ts';
import { addBody, addSeparators, apexOf, layoutStack, type Stack } from './cell.ts';
import { addNoise, applyField, digitize, gaussianBlur, smear, type Export, type Field } from './detector.ts';
import { Rng } from './prng.ts';
import { affineFromPoints, rasterize, stackFineTest, stackScene } from './raster.ts';
import { place, type PlacedShape, type Shape } from './shapes.ts';

export interface RenderOptions {
  seed: number;
  /** Probability that the frame carries defects (FAIL). Default 0.25. */
  defectRate?: number;
  /** Frame size; default drawn (1000x1000 most often like the real exports, else 864-2048 px a side). */
  width?: number;
  height?: number;
  depth?: 8 | 16;
  orientation?: Orientation;
  recipe?: Recipe;
  pixelPitchMm?: number;
  /** Rotation in degrees (default drawn within +-5). */
  rotationDeg?: number;
  /** Detector PSF sigma in px (default drawn 0.5-3); 0 = none. */
  blurSigma?: number;
  /** Open-field SNR (default drawn 5-200); Infinity = no noise. */
  snr?: number;
  /** JPEG quality of 8-bit exports (default drawn; 0 = none). */
  jpegQuality?: number;
  /** Fixtures, tray, casing, dust, circular field, uneven illumination, motion, inverted exports, dead/hot pixels (default true). */
  clutter?: boolean;
  /** Samples per pixel side near the tips (default 4). */
  supersample?: number;
  /**
   * Range (px, log-uniform) of the cathode tips' scatter about their own line (default 0.15-1.5:
   * the straight cathode edge of the real frames). Wider ranges make PASS frames whose overhangs
   * vary from cathode to cathode across the spec, as SPEC's 0.3-2.0 mm allows.
   */
  cathodeScatterPx?: [number, number];
  /**
   * Range (uniform) of the share of the space between two anodes that a cathode fills (default:
   * all of it). Thin cathodes leave the overlap zone striped by the separators' gaps.
   */
  cathodeThickness?: [number, number];
  /** Range (log-uniform) of the cathodes' attenuation relative to the anodes' (default 1.0-1.8, uniform). */
  cathodeContrast?: [number, number];
  /**
   * Share of the cathodes drawn absent or torn back whose overlap zone stays dark, so that only
   * the sheet's own line is gone (default 0: the missing cathode leaves a gap through the zone).
   */
  hiddenMissing?: number;
}

export interface SynthFrame {
  image: Image;
  /** x, y, v per keypoint in recipe order, frame coordinates as delivered; v = 0 (x = y = 0) for a missing pole. */
  keypoints: Float64Array;
  orientation: Orientation;
  pixelPitchMm: number;
  expectedVerdict: 'PASS' | 'FAIL';
  defects: FailReason[];
  cellId: string;
  /** Overhang of each cathode in mm as judge() computes it from the keypoints (null next to a missing pole). */
  overhangMm: (number | null)[];
  /** What the frame was drawn with, for figures by SPEC's ranges (pitch, blur, noise, rotation),
   *  and the median length of the sheets' tapered ends (capPx: long caps end in faint needles). */
  drawn: { pitchPx: number; blurSigma: number; snr: number; rotationDeg: number; depth: 8 | 16; capPx: number };
}

/** The bounds the cathode-look ranges must keep, [lo, hi] of both ends; a bound of 0 is exclusive
 *  (a scatter of 0 would make its log-uniform draw infinite). The CLI checks its flags against them. */
export const CATHODE_LOOK_LIMITS = {
  cathodeScatterPx: [0, 50],
  cathodeThickness: [0.1, 1],
  cathodeContrast: [0.1, 4],
} as const satisfies Record<string, readonly [number, number]>;

/** PASS overhangs keep at least this distance (mm) inside the spec limits; FAIL ones as far outside. */
export const SPEC_MARGIN_MM = 0.05;

const SIZES: [number, number][] = [
  [1000, 1000],
  [1600, 1600],
  [2048, 2048],
  [864, 1536],
  [1536, 864],
];

/** Refuses options outside what the renderer models, naming the option. */
function checkOptions(o: RenderOptions): void {
  const bad = (name: string, want: string, got: unknown) => {
    throw new RangeError(`renderFrame: ${name} must be ${want}, got ${String(got)}`);
  };
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) bad('seed', 'an integer from 0 to 2^32-1', o.seed);
  if (o.defectRate !== undefined && !(o.defectRate >= 0 && o.defectRate <= 1)) bad('defectRate', 'from 0 to 1', o.defectRate);
  for (const [name, v] of [['width', o.width], ['height', o.height]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 256 && v <= 8192)) bad(name, 'an integer from 256 to 8192 (SPEC frame sizes)', v);
  }
  if (o.depth !== undefined && o.depth !== 8 && o.depth !== 16) bad('depth', '8 or 16', o.depth);
  for (const name of ['cathodeScatterPx', 'cathodeThickness', 'cathodeContrast'] as const) {
    const r = o[name];
    const [min, max] = CATHODE_LOOK_LIMITS[name];
    if (r !== undefined && !((min === 0 ? r[0] > 0 : r[0] >= min) && r[1] >= r[0] && r[1] <= max)) {
      bad(name, `[lo, hi] with ${min} ${min === 0 ? '<' : '<='} lo <= hi <= ${max}`, r);
    }
  }
  if (o.hiddenMissing !== undefined && !(o.hiddenMissing >= 0 && o.hiddenMissing <= 1)) bad('hiddenMissing', 'from 0 to 1', o.hiddenMissing);
  if (o.pixelPitchMm !== undefined && !(o.pixelPitchMm > 0.002 && o.pixelPitchMm < 0.2)) bad('pixelPitchMm', 'within (0.002, 0.2) mm', o.pixelPitchMm);
  if (o.rotationDeg !== undefined && !(Math.abs(o.rotationDeg) <= 45)) bad('rotationDeg', 'within +-45', o.rotationDeg);
  if (o.blurSigma !== undefined && !(o.blurSigma >= 0 && o.blurSigma <= 50)) bad('blurSigma', 'from 0 to 50 px', o.blurSigma);
  if (o.snr !== undefined && !(o.snr > 0)) bad('snr', 'positive (Infinity for no noise)', o.snr);
  if (o.jpegQuality !== undefined && !(Number.isInteger(o.jpegQuality) && o.jpegQuality >= 0 && o.jpegQuality <= 100)) {
    bad('jpegQuality', 'an integer from 0 (none) to 100', o.jpegQuality);
  }
  if (o.supersample !== undefined && !(Number.isInteger(o.supersample) && o.supersample >= 1 && o.supersample <= 16)) {
    bad('supersample', 'an integer from 1 to 16', o.supersample);
  }
}

export function renderFrame(opts: RenderOptions): SynthFrame {
  checkOptions(opts);
  const root = new Rng(opts.seed);
  // Independent streams: changing how one part draws leaves the others unchanged.
  const rGeom = root.fork();
  const rScene = root.fork();
  const rDet = root.fork();
  const rNoise = root.fork();
  const recipe = opts.recipe ?? DEFAULT_RECIPE;
  const pitchMm = opts.pixelPitchMm ?? recipe.pixelPitchMm;
  const clutter = opts.clutter ?? true;

  let [width, height] = rGeom.chance(0.65) ? SIZES[0]! : rGeom.chance(0.5) ? rGeom.pick(SIZES) : [rGeom.int(1000, 2048), rGeom.int(1000, 2048)];
  width = opts.width ?? width;
  height = opts.height ?? height;
  const orientation = opts.orientation ?? rGeom.pick(ORIENTATIONS);
  const [wc, hc] = canonicalSize(width, height, orientation);
  const theta = ((opts.rotationDeg ?? rGeom.uniform(-5, 5)) * Math.PI) / 180;
  const failing = rGeom.next() < (opts.defectRate ?? 0.25);

  // Draw the cell until every pole lies inside the frame (a few px from its edges).
  const { cathodeScatterPx, cathodeThickness, cathodeContrast, hiddenMissing = 0 } = opts;
  const spec: CellSpec = { recipe, pitchMm, width, height, orientation, theta, failing, cathodeScatterPx, cathodeThickness, cathodeContrast, hiddenMissing };
  let cell = layoutCell(rGeom, spec);
  for (let attempt = 0; attempt < 50 && !insideFrame(cell.keypoints, width, height, 4); attempt++) {
    cell = layoutCell(rGeom, spec);
  }
  if (!insideFrame(cell.keypoints, width, height, 0)) {
    throw new RangeError(`renderFrame: no cell layout fits a ${width}x${height} frame`);
  }
  const { stack, keypoints, canonPoles, centre, tipX } = cell;
  const cosT = Math.cos(theta);
  const sinT = Math.sin(theta);
  const judgement = judge(canonPoles, { ...recipe, pixelPitchMm: pitchMm });

  const shapes = clutter ? sceneShapes(rScene, stack, wc, hc, tipX) : [];
  const toScene = affineFromPoints((x, y) => {
    const [xc, yc] = toCanonical(x, y, width, height, orientation);
    // canonical -> scene is the rotation by -theta about the centre
    return [centre[0] + (xc - centre[0]) * cosT + (yc - centre[1]) * sinT, centre[1] - (xc - centre[0]) * sinT + (yc - centre[1]) * cosT];
  });
  const transmission = rasterize(width, height, toScene, stackScene(stack), stackFineTest(stack), opts.supersample ?? 4, shapes, floatFrame(width * height));

  const field = clutter ? drawField(rDet, width, height, keypoints) : PLAIN_FIELD;
  applyField(transmission, width, height, field, rDet);
  const sigma = opts.blurSigma ?? rDet.logUniform(0.5, 3);
  const moved = clutter ? motion(rDet, transmission, width, height, orientation) : transmission;
  const blurred = gaussianBlur(moved, width, height, sigma);
  const snr = opts.snr ?? (rDet.chance(0.85) ? rDet.uniform(40, 200) : rDet.logUniform(5, 40));
  const photons = Number.isFinite(snr) ? snr * snr : 1;
  const counts = Number.isFinite(snr)
    ? addNoise(blurred, photons, snr * rDet.uniform(0.05, 0.3), rNoise) // read noise 5-30% of the open field's shot noise
    : blurred;
  const depth = opts.depth ?? (rDet.chance(0.65) ? 8 : 16);
  const ex = drawExport(rDet, depth, photons, width * height, clutter, opts.jpegQuality);
  const image = digitize(counts, width, height, photons, ex, rNoise);

  return {
    image,
    keypoints,
    orientation,
    pixelPitchMm: pitchMm,
    expectedVerdict: judgement.verdict,
    defects: judgement.reasons,
    cellId: `SYN-${(opts.seed >>> 0).toString(16).padStart(8, '0').toUpperCase()}`,
    overhangMm: judgement.overhangMm,
    drawn: { pitchPx: stack.pitch, blurSigma: sigma, snr, rotationDeg: (theta * 180) / Math.PI, depth, capPx: median(stack.sheets.map((s) => s.capLen)) },
  };
}

/**
 * The float frame the detector chain works in, reused from frame to frame on this thread: it
 * never leaves renderFrame (the image is digitized into a new array), and a fresh 16 MB array
 * cost more in page faults than the pass that fills it.
 */
let floatScratch = new Float32Array(0);
function floatFrame(n: number): Float32Array {
  if (floatScratch.length < n) floatScratch = new Float32Array(n);
  return floatScratch.length === n ? floatScratch : floatScratch.subarray(0, n);
}

interface CellSpec {
  recipe: Recipe;
  pitchMm: number;
  width: number;
  height: number;
  orientation: Orientation;
  theta: number;
  failing: boolean;
  cathodeScatterPx?: [number, number];
  cathodeThickness?: [number, number];
  cathodeContrast?: [number, number];
  hiddenMissing: number;
}

/**
 * The stack in scene coordinates and its ground truth: scene -> canonical (rotation by theta
 * about the tip centre) -> frame as delivered.
 */
function layoutCell(rGeom: Rng, spec: CellSpec) {
  const { recipe, pitchMm, width, height, orientation, theta, failing, cathodeScatterPx, cathodeThickness, cathodeContrast, hiddenMissing } = spec;
  const [wc, hc] = canonicalSize(width, height, orientation);
  // Anode pitch 8-30 px, the stack 10-40% of the canonical height where the pitch allows.
  const n = recipe.sheets.length;
  const halves = n - 1;
  const pLo = Math.max(8, (0.1 * hc * 2) / halves);
  const pHi = Math.min(30, (0.4 * hc * 2) / halves);
  const pitch = pLo <= pHi ? rGeom.uniform(pLo, pHi) : Math.min(30, Math.max(8, pHi));
  const stackH = (halves * pitch) / 2;
  const margin = Math.max(0.04 * hc, 12);
  const cy = rGeom.uniform(margin + stackH / 2, Math.max(margin + stackH / 2, hc - margin - stackH / 2));
  const maxOverPx = 2.8 / pitchMm;
  const tipX = rGeom.uniform(Math.max(0.3 * wc, maxOverPx + 40), Math.min(0.88 * wc, wc - 40));
  const stack = layoutStack(rGeom, { recipe, pitch, centreY: cy, tipX, cathodeScatterPx, cathodeThickness, cathodeContrast });
  const centre: [number, number] = [tipX, cy];
  const cosT = Math.cos(theta);
  const sinT = Math.sin(theta);
  const rotX = (x: number, y: number) => centre[0] + (x - centre[0]) * cosT - (y - centre[1]) * sinT;
  const rotY = (x: number, y: number) => centre[1] + (x - centre[0]) * sinT + (y - centre[1]) * cosT;

  // Overhang targets (mm, measured in canonical orientation as judge() will), then defects.
  const cathodes: number[] = [];
  recipe.sheets.forEach((k, i) => k === 'C' && cathodes.push(i));
  const lo = recipe.overhangMinMm + SPEC_MARGIN_MM;
  const hi = recipe.overhangMaxMm - SPEC_MARGIN_MM;
  // The cathode line sits `mean` behind the anode line; each overhang is what the two lines give
  // (the nearer neighbour counts), kept inside the spec with its margin.
  const mean = rGeom.uniform(lo + 0.05, hi - 0.05);
  const targets = cathodes.map((i) => {
    const s = stack.sheets[i]!;
    const [ax0, ay0] = apexOf(stack.sheets[i - 1]!);
    const [ax1, ay1] = apexOf(stack.sheets[i + 1]!);
    const [cx, cy] = apexOf(s);
    const natural = (Math.min(rotX(ax0, ay0), rotX(ax1, ay1)) - rotX(cx - mean / pitchMm, cy)) * pitchMm;
    return Math.min(hi, Math.max(lo, natural));
  });
  const missing = new Set<number>();
  if (failing) {
    const events = rGeom.chance(0.6) ? 1 : rGeom.int(2, 3);
    for (let e = 0; e < events; e++) {
      const kind = rGeom.pick(['OVERHANG_LOW', 'OVERHANG_LOW', 'OVERHANG_HIGH', 'OVERHANG_HIGH', 'POLE_MISSING'] as const);
      if (kind === 'OVERHANG_LOW') targets[rGeom.int(0, cathodes.length - 1)] = rGeom.uniform(-0.6, recipe.overhangMinMm - SPEC_MARGIN_MM);
      else if (kind === 'OVERHANG_HIGH') targets[rGeom.int(0, cathodes.length - 1)] = rGeom.uniform(recipe.overhangMaxMm + SPEC_MARGIN_MM, 2.6);
      else missing.add(rGeom.int(0, n - 1));
    }
  }
  // Place each cathode apex so its overhang after the rotation equals the target exactly.
  cathodes.forEach((i, c) => {
    const s = stack.sheets[i]!;
    const [ax0, ay0] = apexOf(stack.sheets[i - 1]!);
    const [ax1, ay1] = apexOf(stack.sheets[i + 1]!);
    const want = Math.min(rotX(ax0, ay0), rotX(ax1, ay1)) - targets[c]! / pitchMm;
    const ay = s.y + (s.bendTan * s.bendLen) / 2;
    const apexX = centre[0] + (want - centre[0] + (ay - centre[1]) * sinT) / cosT;
    if (s.fork) {
      s.fork.fromX += apexX - s.apexX;
      s.fork.toX += apexX - s.apexX;
    }
    s.apexX = apexX;
  });
  for (const i of missing) {
    const s = stack.sheets[i]!;
    s.visible = false;
    s.fork = null;
    const mode = rGeom.next();
    const hiddenX = Math.min(...stack.sheets.filter((q) => q.kind === 'C').map((q) => q.apexX)) - rGeom.uniform(30, 200);
    if (mode < 0.7) {
      if (mode < 0.35) s.exists = false;
      else {
        s.apexX = hiddenX; // torn back into the overlap zone
        s.capLen = s.thick / 2;
      }
      // Drawn only when asked for, so the default frames stay what they were.
      if (hiddenMissing > 0 && s.kind === 'C') s.hiddenInBody = rGeom.next() < hiddenMissing;
    } else {
      const at = s.apexX - rGeom.uniform(0, 30);
      s.fold = { atX: at, length: rGeom.uniform(10, 60), side: rGeom.chance(0.5) ? 1 : -1 };
      s.apexX = at;
      s.capLen = s.thick / 2;
      s.bendTan = 0;
    }
  }
  addSeparators(rGeom, stack);
  addBody(rGeom, stack);

  // Ground truth: scene -> canonical (rotation) -> frame as delivered.
  const keypoints = new Float64Array(3 * n);
  const canonPoles = stack.sheets.map((s, i) => {
    if (!s.visible) return { x: Number.NaN, conf: 0 };
    const [sx, sy] = apexOf(s);
    const xc = rotX(sx, sy);
    const yc = rotY(sx, sy);
    const [fx, fy] = fromCanonical(xc, yc, width, height, orientation);
    keypoints[3 * i] = fx;
    keypoints[3 * i + 1] = fy;
    keypoints[3 * i + 2] = 2;
    return { x: xc, conf: 1 };
  });
  return { stack, keypoints, canonPoles, centre, tipX };
}

function insideFrame(keypoints: Float64Array, width: number, height: number, margin: number): boolean {
  for (let i = 0; i < keypoints.length; i += 3) {
    if (keypoints[i + 2] === 0) continue;
    const x = keypoints[i]!;
    const y = keypoints[i + 1]!;
    if (x < margin || y < margin || x > width - 1 - margin || y > height - 1 - margin) return false;
  }
  return true;
}

/**
 * Some real exports are smeared across the sheets (the cell moving during the exposure) or show
 * a faint second image of them. Both act across the sheets (canonical y, within +-20 degrees),
 * so the tips' x stays where the geometry put it; motion is symmetric about the true image.
 */
function motion(rng: Rng, t: Float32Array, width: number, height: number, orientation: Orientation): Float32Array {
  const kind = rng.next();
  if (kind >= 0.25) return t;
  const a = ((90 + rng.uniform(-20, 20)) * Math.PI) / 180;
  const [ox, oy] = fromCanonical(0, 0, width, height, orientation);
  const [px, py] = fromCanonical(Math.cos(a), Math.sin(a), width, height, orientation);
  const [dx, dy] = [px - ox, py - oy];
  if (kind < 0.15) {
    const len = rng.uniform(2, 8);
    const n = Math.ceil(len) + 1;
    const taps = Array.from({ length: n }, (_, i) => ({ offset: -len / 2 + (i * len) / (n - 1), weight: 1 / n }));
    return smear(t, width, height, dx, dy, taps);
  }
  const w = rng.uniform(0.15, 0.4);
  const d = rng.uniform(1.5, 5) * (rng.chance(0.5) ? 1 : -1);
  return smear(t, width, height, dx, dy, [
    { offset: 0, weight: 1 - w },
    { offset: d, weight: w },
  ]);
}

/** Clamps, screws, the tray, casing edges and dust around the stack (scene coordinates). */
function sceneShapes(rng: Rng, stack: Stack, wc: number, hc: number, tipX: number): PlacedShape[] {
  const shapes: Shape[] = [];
  const big = 4 * Math.max(wc, hc);
  const cathodeTip = Math.min(...stack.sheets.filter((s) => s.kind === 'C' && s.exists).map((s) => s.apexX));
  const backX = cathodeTip - rng.uniform(60, Math.max(80, 0.6 * cathodeTip));
  if (rng.chance(0.75)) {
    // The tray under the stack (sometimes right against it), dark, ending anywhere.
    const gap = rng.chance(0.3) ? rng.uniform(0, 6) : rng.uniform(6, 80);
    const below = rng.chance(0.8);
    const edge = below ? stack.bottom + stack.pitch / 2 + gap : stack.top - stack.pitch / 2 - gap;
    const end = rng.uniform(tipX - 100, wc + 50);
    const mu = rng.uniform(1.5, 5);
    shapes.push(below ? { kind: 'box', x0: -big, y0: edge, x1: end, y1: big, r: rng.uniform(0, 12), mu } : { kind: 'box', x0: -big, y0: -big, x1: end, y1: edge, r: rng.uniform(0, 12), mu });
    if (rng.chance(0.5)) {
      // A step in the tray (a thicker part further out)
      const e2 = edge + (below ? 1 : -1) * rng.uniform(10, 60);
      shapes.push(below ? { kind: 'box', x0: -big, y0: e2, x1: end + rng.uniform(-200, 200), y1: big, r: 4, mu: rng.uniform(0.5, 2) } : { kind: 'box', x0: -big, y0: -big, x1: end + rng.uniform(-200, 200), y1: e2, r: 4, mu: rng.uniform(0.5, 2) });
    }
  }
  if (rng.chance(0.6)) {
    // A clamp block pressing on the stack away from the tips, sometimes with a screw above it.
    const x1 = Math.max(20, backX);
    const x0 = x1 - rng.uniform(60, 400);
    const y0 = stack.top - rng.uniform(40, 300);
    const y1 = rng.chance(0.5) ? stack.top - stack.pitch * rng.uniform(0, 1) : stack.bottom + rng.uniform(10, 200);
    shapes.push({ kind: 'box', x0, y0, x1, y1, r: rng.uniform(0, 20), mu: rng.uniform(1.5, 5) });
    if (rng.chance(0.5)) {
      const cx = rng.uniform(x0, x1);
      const hw = rng.uniform(8, 30);
      const top = y0 - rng.uniform(40, 200);
      shapes.push({ kind: 'thread', cx, y0: top, y1: y0 + 5, halfWidth: hw, pitch: rng.uniform(6, 16), depth: hw * rng.uniform(0.15, 0.35), mu: rng.uniform(2, 5) });
      shapes.push({ kind: 'box', x0: cx - hw * 1.8, y0: top - hw * 1.5, x1: cx + hw * 1.8, y1: top, r: hw * 0.4, mu: rng.uniform(2, 5) });
    }
  }
  if (rng.chance(0.5)) {
    // The casing or a holder plate: a straight edge, near vertical, behind the tips...
    const a = ((rng.uniform(-15, 15) + 180) * Math.PI) / 180;
    const x = rng.uniform(0.05 * wc, Math.max(0.06 * wc, backX));
    shapes.push({ kind: 'halfplane', nx: Math.cos(a), ny: Math.sin(a), d: Math.cos(a) * x + Math.sin(a) * stack.top, mu: rng.uniform(0.15, 1.5) });
  } else if (rng.chance(0.5)) {
    // ...or beyond them, so the tips stand on a grey plate with less contrast.
    const a = ((rng.uniform(-10, 10) + 180) * Math.PI) / 180;
    const x = tipX + rng.uniform(20, Math.max(40, 0.5 * (wc - tipX)));
    shapes.push({ kind: 'halfplane', nx: Math.cos(a), ny: Math.sin(a), d: Math.cos(a) * x + Math.sin(a) * stack.top, mu: rng.uniform(0.1, 0.8) });
  }
  if (rng.chance(0.35)) {
    // A faint plate edge anywhere (the tray's far side, a cover).
    const a = rng.uniform(0, 2 * Math.PI);
    const px = rng.uniform(0, wc);
    const py = rng.uniform(0, hc);
    shapes.push({ kind: 'halfplane', nx: Math.cos(a), ny: Math.sin(a), d: Math.cos(a) * px + Math.sin(a) * py, mu: rng.uniform(0.03, 0.3) });
  }
  const dust = rng.int(0, 2);
  for (let i = 0; i < dust; i++) {
    shapes.push({ kind: 'blob', cx: rng.uniform(0, wc), cy: rng.uniform(0, hc), s: rng.uniform(3, 20), mu: rng.uniform(0.05, 0.4) });
  }
  return shapes.map(place);
}

const PLAIN_FIELD: Field = { circle: null, vignette: 0, heel: 0, heelAngle: 0, rowRipple: 0, mottle: 0, mottleCells: 2 };

function drawField(rng: Rng, width: number, height: number, keypoints: Float64Array): Field {
  let circle: Field['circle'] = null;
  if (rng.chance(0.55)) {
    const m = Math.min(width, height);
    const cx = (width - 1) / 2 + rng.normal() * 0.02 * width;
    const cy = (height - 1) / 2 + rng.normal() * 0.02 * height;
    let r = rng.uniform(0.45, 0.6) * m;
    // The tips must stay inside the field of view: grow the circle where needed.
    for (let i = 0; i < keypoints.length; i += 3) {
      if (keypoints[i + 2]! > 0) r = Math.max(r, Math.hypot(keypoints[i]! - cx, keypoints[i + 1]! - cy) + 0.05 * m);
    }
    circle = { cx, cy, r, soft: rng.uniform(1.5, 6), outside: rng.uniform(0, 0.04) };
  }
  return {
    circle,
    vignette: rng.uniform(0, 0.35),
    heel: rng.uniform(-0.2, 0.2),
    heelAngle: rng.uniform(0, 2 * Math.PI),
    rowRipple: rng.chance(0.3) ? rng.uniform(0.001, 0.01) : 0,
    mottle: rng.uniform(0, 0.04),
    mottleCells: rng.int(3, 12),
  };
}

function drawExport(rng: Rng, depth: 8 | 16, photons: number, pixels: number, clutter: boolean, jpegQuality: number | undefined): Export {
  const maxDn = rng.pick([4095, 16383, 65535]);
  const defects = clutter ? (pixels / 1e6) * rng.uniform(0, 15) : 0;
  return {
    depth,
    offset: rng.uniform(0, 0.03) * maxDn,
    gain: (rng.uniform(0.4, 0.95) * maxDn) / photons,
    maxDn,
    black: rng.uniform(-0.05, 0.08),
    white: rng.uniform(0.8, 1.1),
    gamma: rng.uniform(0.7, 1.3),
    invert: clutter && rng.chance(0.06),
    jpegQuality: jpegQuality ?? (rng.chance(0.85) ? rng.int(55, 95) : 0),
    dead: Math.round(defects * rng.next()),
    hot: Math.round(defects * rng.next()),
  };
}
