// Where do oFAST corners sit relative to the labelled poles, and what does the paper's corner
// refinement do to poles that are off by a known amount? Ground truth + Gaussian noise stands in
// for the CNN, so this isolates the refinement from the model.
// The first half of the frames calibrates the mean corner -> pole offset per sheet type (the
// `cornerOffset` refinement variant); the second half measures the paper's refinement and the
// offset-corrected one on truth + noise.
// Usage: npx tsx bench/corner-bias.ts [--frames N] [--seed S]
import { parseArgs } from 'node:util';
import { fromCanonical, toCanonical } from '../src/frame/orientation.ts';
import { DEFAULT_RECIPE } from '../src/inspect/recipe.ts';
import { renderFrame } from '../src/synth/frame.ts';
import type { Corners } from '../src/types.ts';
import { detectCorners } from '../src/vision/corners.ts';
import { DEFAULT_REFINE_PARAMS, nearestCorner, refinePoles } from '../src/vision/refine.ts';
import { cornerThreshold, DEFAULT_ROI_PARAMS } from '../src/vision/roi.ts';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '40' }, seed: { type: 'string', default: '9000' } } });
const frames = Number(values.frames);
const seed0 = Number(values.seed);
let state = 12345;
const uniform = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;
const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());

const offsets: Record<'A' | 'C', [number, number][]> = { A: [], C: [] };
let calibrated: Record<'A' | 'C', [number, number]> | null = null;
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
let unmatched = 0;
const errs = new Map<string, { before: number[]; after: number[]; refined: number }>();
for (let f = 0; f < frames; f++) {
  const fr = renderFrame({ seed: seed0 + f });
  const { width, height } = fr.image;
  const raw = detectCorners(fr.image, { threshold: cornerThreshold(fr.image, DEFAULT_ROI_PARAMS), maxCorners: 512 });
  const order = Array.from({ length: raw.count }, (_, i) => i).sort((a, b) => raw.harris[b]! - raw.harris[a]!);
  const pick = (a: Float32Array) => Float32Array.from(order, (i) => a[i]!);
  const corners: Corners = { count: raw.count, x: pick(raw.x), y: pick(raw.y), score: pick(raw.score), harris: pick(raw.harris), angle: pick(raw.angle) };
  const K = DEFAULT_RECIPE.keypoints.length;
  const gx = Array.from({ length: K }, (_, k) => (fr.keypoints[3 * k + 2] ? fr.keypoints[3 * k]! : Number.NaN));
  const gy = Array.from({ length: K }, (_, k) => (fr.keypoints[3 * k + 2] ? fr.keypoints[3 * k + 1]! : Number.NaN));
  const calibrating = f < frames / 2;
  for (let k = 0; calibrating && k < K; k++) {
    if (Number.isNaN(gx[k]!)) continue;
    const i = nearestCorner(corners, gx[k]!, gy[k]!, 6);
    if (i < 0) {
      unmatched++;
      continue;
    }
    const [ax, ay] = toCanonical(gx[k]!, gy[k]!, width, height, fr.orientation);
    const [bx, by] = toCanonical(corners.x[i]!, corners.y[i]!, width, height, fr.orientation);
    offsets[DEFAULT_RECIPE.sheets[k]!].push([bx - ax, by - ay]);
  }
  if (calibrating) continue;
  if (!calibrated) {
    const m = (s: 'A' | 'C', j: 0 | 1) => -mean(offsets[s].map((p) => p[j]));
    calibrated = { A: [m('A', 0), m('A', 1)], C: [m('C', 0), m('C', 1)] };
  }
  const [ox, oy] = fromCanonical(0, 0, width, height, fr.orientation);
  const vec = ([dx, dy]: [number, number]): [number, number] => {
    const [x, y] = fromCanonical(dx, dy, width, height, fr.orientation);
    return [x - ox, y - oy];
  };
  const shift = { A: vec(calibrated.A), C: vec(calibrated.C) };
  for (const noise of [0.5, 1, 2]) {
    const nx = gx.map((x) => x + noise * gauss());
    const ny = gy.map((y) => y + noise * gauss());
    for (const [radius, offset] of [[2, false], [4, false], [6, false], [4, true], [6, true]] as const) {
      const params = { ...DEFAULT_REFINE_PARAMS, radius, cornerOffset: offset ? calibrated : null };
      const out = refinePoles(fr.image, corners, nx, ny, DEFAULT_RECIPE.sheets, params, corners.count, offset ? shift : null);
      const key = `noise ${noise} px, r = ${radius}${offset ? ', offset-corrected corners' : ''}`;
      const e = errs.get(key) ?? { before: [], after: [], refined: 0 };
      for (let k = 0; k < K; k++) {
        if (Number.isNaN(gx[k]!)) continue;
        e.before.push(Math.hypot(nx[k]! - gx[k]!, ny[k]! - gy[k]!));
        e.after.push(Math.hypot(out[k]!.x - gx[k]!, out[k]!.y - gy[k]!));
        if (out[k]!.source === 'refined') e.refined++;
      }
      errs.set(key, e);
    }
  }
}
const sd = (a: number[]) => Math.sqrt(mean(a.map((v) => (v - mean(a)) ** 2)));
console.log(`${frames} synthetic frames (seeds ${seed0}..${seed0 + frames - 1}); calibration half: nearest corner within 6 px of a labelled pole, canonical offset corner - pole:`);
for (const s of ['A', 'C'] as const) {
  const o = offsets[s];
  console.log(`  ${s === 'A' ? 'anodes  ' : 'cathodes'} ${o.length} matched: dx ${mean(o.map((p) => p[0])).toFixed(2)} +- ${sd(o.map((p) => p[0])).toFixed(2)} px, dy ${mean(o.map((p) => p[1])).toFixed(2)} +- ${sd(o.map((p) => p[1])).toFixed(2)} px`);
}
console.log(`  no corner within 6 px: ${unmatched}; cornerOffset = ${JSON.stringify(calibrated, (_, v) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v))}`);
console.log('\n| CNN stand-in (truth + noise) | mean error before | after refinement | refined share |\n|---|---|---|---|');
for (const [k, e] of errs) console.log(`| ${k} | ${mean(e.before).toFixed(3)} px | ${mean(e.after).toFixed(3)} px | ${(e.refined / e.before.length).toFixed(2)} |`);
