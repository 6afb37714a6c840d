// ROI figures (docs/roi.md) and the ROI dump for training.
//   npx tsx bench/roi.ts --dataset DIR [--count N]       recall + area on a SPEC COCO dataset
//   npx tsx bench/roi.ts --synth N [--seed S]             the same on N frames rendered in process
//   npx tsx bench/roi.ts --real ../shared/real-frames     containment + IoU of the authors' boxes
//   npx tsx bench/roi.ts --dataset DIR --dump rois.json   {file_name: [x, y, w, h] | null} with the defaults
// --stage-only: only the stage's row (roiForFrame), about 8x faster. A missed frame is listed with
// each keypoint outside the box: its name, the side (canonical: tips = +x, back, top, bottom) and
// how far outside in px and in percent of the reference bbox's canonical height.
// --set key=value (repeatable) overrides a RoiParams field for every row of the table.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, intOption } from '../src/cli/args.ts';
import { readCocoDataset } from '../src/eval/coco.ts';
import { boxContains, iou, roiHoldsKeypoints } from '../src/eval/metrics.ts';
import { decodeFrame } from '../src/frame/decode.ts';
import { boxToCanonical, toCanonical } from '../src/frame/orientation.ts';
import { FrameError } from '../src/errors.ts';
import { renderFrame } from '../src/synth/frame.ts';
import type { Box, Image, Orientation } from '../src/types.ts';
import { detectCorners } from '../src/vision/corners.ts';
import { cornerThreshold, estimateRoi, makeRoiParams, roiForFrame, type RoiParams } from '../src/vision/roi.ts';
import { authorsBoxes, covers, realOrientation } from './real-frames.ts';

const { values } = parse(process.argv.slice(2), {
  dataset: { type: 'string' },
  real: { type: 'string' },
  synth: { type: 'string' },
  seed: { type: 'string' },
  count: { type: 'string' },
  dump: { type: 'string' },
  'stage-only': { type: 'boolean' },
  set: { type: 'string', multiple: true },
});

const base = makeRoiParams(
  Object.fromEntries(
    (values.set ?? []).map((kv) => {
      const [k, v] = kv.split('=');
      return [k, Number.isNaN(Number(v)) ? v : Number(v)];
    }),
  ) as Partial<RoiParams>,
);

/** The paper's method and the robust alternatives measured against it (docs/roi.md). */
const VARIANTS: [string, RoiParams][] = [
  // A centre point has no extent: the paper's pointers start at the frame edges (reach 1).
  ['paper: mean centre, all columns', { ...base, centre: 'mean', band: 0, reach: 1 }],
  ['median centre, all columns', { ...base, centre: 'median', band: 0, reach: 1 }],
  ['mean centre, column band', { ...base, centre: 'mean', reach: 1 }],
  ['median centre, column band', { ...base, centre: 'median', reach: 1 }],
  ['densest cluster, column band', { ...base, centre: 'cluster' }],
  ['tip corners, all columns', { ...base, centre: 'tips', band: 0 }],
  ['tip corners, column band', { ...base, centre: 'tips' }],
];

interface Sample {
  name: string;
  image: Image;
  orientation: Orientation;
  /** Synthetic / COCO ground truth. */
  keypoints?: ArrayLike<number>;
  bbox: Box;
  defects?: string[];
}

/** The last row is the stage itself: roiForFrame (its own corners, threshold fallback). */
const STAGE_ROW = 'roiForFrame (default: tip corners, column band, threshold fallback)';

function roiOrNull(s: Sample, p: RoiParams, corners: ReturnType<typeof detectCorners> | null): Box | null {
  try {
    return corners === null ? roiForFrame(s.image, s.orientation, p) : estimateRoi(s.image, corners, s.orientation, p);
  } catch (err) {
    if (err instanceof FrameError && err.reason === 'ROI_NOT_FOUND') return null;
    throw err;
  }
}

const pct = (v: number) => (100 * v).toFixed(2) + '%';
const quantile = (v: number[], q: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

async function* datasetSamples(dir: string, limit: number): AsyncGenerator<Sample> {
  const ds = readCocoDataset(dir);
  for (const im of ds.images.slice(0, limit)) {
    yield { name: im.fileName, image: await decodeFrame(readFileSync(im.file)), orientation: im.orientation, keypoints: im.keypoints, bbox: im.bbox, defects: im.defects };
  }
}

async function* synthSamples(n: number, seed: number): AsyncGenerator<Sample> {
  for (let i = 0; i < n; i++) {
    const f = renderFrame({ seed: seed + i, defectRate: 0.3 });
    yield { name: `synth-${seed + i}`, image: f.image, orientation: f.orientation, keypoints: f.keypoints, bbox: referenceBox(f.keypoints) };
  }
}

/** SPEC's reference bbox: the labelled keypoints' tight box grown by 0.1 * its larger side. */
function referenceBox(kp: ArrayLike<number>): Box {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let k = 0; k + 2 < kp.length; k += 3) {
    if (kp[k + 2] !== 2) continue;
    x0 = Math.min(x0, kp[k]); x1 = Math.max(x1, kp[k]);
    y0 = Math.min(y0, kp[k + 1]); y1 = Math.max(y1, kp[k + 1]);
  }
  const m = 0.1 * Math.max(x1 - x0, y1 - y0);
  return [x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m];
}

/** Real frames with the authors' boxes. */
async function* realSamples(dir: string): AsyncGenerator<Sample> {
  const boxes = authorsBoxes(dir);
  for (const name of readdirSync(path.join(dir, 'images')).sort()) {
    const image = await decodeFrame(readFileSync(path.join(dir, 'images', name)));
    yield { name, image, orientation: realOrientation(name), bbox: boxes[name] };
  }
}

async function main(): Promise<void> {
  const limit = intOption(values.count, 'count', 1_000_000, 1, 1_000_000);
  if (values.dump) {
    if (!values.dataset) throw new Error('--dump needs --dataset DIR');
    const out: Record<string, Box | null> = {};
    let missed = 0;
    for await (const s of datasetSamples(values.dataset, limit)) {
      try {
        out[s.name] = roiForFrame(s.image, s.orientation, base).map((v) => Math.round(v * 100) / 100) as Box;
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        out[s.name] = null;
        missed++;
      }
    }
    writeFileSync(values.dump, JSON.stringify(out, null, 1) + '\n');
    console.log(`wrote ${Object.keys(out).length} ROIs to ${values.dump} (${missed} ROI_NOT_FOUND, written as null)`);
    return;
  }
  const real = values.real !== undefined;
  const samples = real
    ? realSamples(values.real!)
    : values.dataset
      ? datasetSamples(values.dataset, limit)
      : synthSamples(intOption(values.synth, 'synth', 100, 1, 100_000), intOption(values.seed, 'seed', 900_000, 0, 2 ** 31));
  if (values['stage-only']) VARIANTS.length = 0;
  VARIANTS.push([STAGE_ROW, base]);
  const rows = VARIANTS.map(() => ({ n: 0, notFound: 0, hit: 0, area: [] as number[], iou: [] as number[], cover: [] as number[] }));
  const misses: string[] = [];
  const t0 = performance.now();
  let cornerMs = 0;
  for await (const s of samples) {
    const tc = performance.now();
    const corners = detectCorners(s.image, { threshold: cornerThreshold(s.image, base), maxCorners: base.corners });
    cornerMs += performance.now() - tc;
    VARIANTS.forEach(([name, p], v) => {
      const r = rows[v];
      r.n++;
      const roi = roiOrNull(s, p, name === STAGE_ROW ? null : corners);
      if (roi === null) {
        r.notFound++;
        if (v === VARIANTS.length - 1) misses.push(`${s.name}: ROI_NOT_FOUND`);
        return;
      }
      if (real) {
        const inside = boxContains(roi, s.bbox[0], s.bbox[1]) && boxContains(roi, s.bbox[0] + s.bbox[2], s.bbox[1] + s.bbox[3]);
        if (inside) r.hit++;
        r.iou.push(iou(roi, s.bbox));
        r.cover.push(covers(roi, s.bbox));
      } else {
        if (roiHoldsKeypoints(roi, s.keypoints!)) r.hit++;
        else if (v === VARIANTS.length - 1) misses.push(`${s.name} (${s.orientation}${s.defects?.length ? ', ' + s.defects.join('+') : ''}): ${outside(s, roi)}`);
        r.area.push((roi[2] * roi[3]) / (s.bbox[2] * s.bbox[3]));
      }
    });
  }
  const n = rows[0].n;
  console.log(`${n} frames, ${((performance.now() - t0) / n).toFixed(0)} ms/frame (corners ${(cornerMs / n).toFixed(1)} ms); params ${JSON.stringify(base)}\n`);
  if (real) {
    console.log('| centre / profile | ROI_NOT_FOUND | contains authors\' box | covers >= 90% of it | IoU mean | IoU median |');
    console.log('|---|---|---|---|---|---|');
    VARIANTS.forEach(([name], v) => {
      const r = rows[v];
      const mean = r.iou.reduce((a, b) => a + b, 0) / n; // not found = IoU 0
      const ious = [...r.iou, ...Array(r.notFound).fill(0)];
      const cover = [...r.cover, ...Array(r.notFound).fill(0)].filter((c) => c >= 0.9).length;
      console.log(`| ${name} | ${r.notFound} | ${r.hit}/${n} | ${cover}/${n} | ${mean.toFixed(3)} | ${quantile(ious, 0.5).toFixed(3)} |`);
    });
  } else {
    console.log('| centre / profile | ROI recall | ROI_NOT_FOUND | area / ref bbox mean | p95 |');
    console.log('|---|---|---|---|---|');
    VARIANTS.forEach(([name], v) => {
      const r = rows[v];
      const mean = r.area.reduce((a, b) => a + b, 0) / r.area.length;
      console.log(`| ${name} | ${pct(r.hit / n)} | ${r.notFound} | ${mean.toFixed(2)} | ${quantile(r.area, 0.95).toFixed(2)} |`);
    });
  }
  if (misses.length) console.log(`\ndefault misses (${misses.length}):\n  ${misses.slice(0, 100).join('\n  ')}`);
}

/** The keypoints outside the ROI: index (A/C by parity), canonical side, distance in px and % of the reference height. */
function outside(s: Sample, roi: Box): string {
  const { width: W, height: H } = s.image;
  const [x, y, w, h] = boxToCanonical(roi, W, H, s.orientation);
  const refH = boxToCanonical(s.bbox, W, H, s.orientation)[3];
  const out: string[] = [];
  const kp = s.keypoints!;
  for (let k = 0; 3 * k + 2 < kp.length; k++) {
    if (kp[3 * k + 2] !== 2) continue;
    const [xc, yc] = toCanonical(kp[3 * k], kp[3 * k + 1], W, H, s.orientation);
    const sides: [string, number][] = [['tips', xc - (x + w)], ['back', x - xc], ['top', y - yc], ['bottom', yc - (y + h)]];
    for (const [side, d] of sides) {
      if (d > 0) out.push(`${k % 2 ? 'C' : 'A'}${k >> 1} ${side} +${d.toFixed(1)}px (${((100 * d) / refH).toFixed(1)}%)`);
    }
  }
  return `${out.join(', ')}; roi/ref height ${(h / refH).toFixed(2)}`;
}


await main();
