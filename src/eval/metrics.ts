// SPEC "Metrics" (as in arXiv 2412.17105): keypoint errors in percent of the reference bbox
// diagonal, NME, PCK@t, PCS@t, ROI recall and the line figures overkill / escape.
// Only labelled keypoints (v = 2) count; a labelled keypoint without a prediction has an
// infinite error, so it fails every PCK/PCS threshold and makes NME infinite.
import type { Box, Verdict } from '../types.ts';

/** One evaluated image: ground truth and what the pipeline predicted for it. */
export interface EvalSample {
  /** Ground truth as COCO stores it: x, y, v triples in keypoint order. */
  keypoints: ArrayLike<number>;
  /** The reference ROI [x, y, w, h]; its diagonal is the reference distance. */
  bbox: Box;
  /** Predicted x, y pairs in keypoint order; NaN (or a missing entry) = not predicted. */
  predicted: ArrayLike<number>;
}

/** Errors e(s, i) in percent of the bbox diagonal, one per labelled keypoint (v = 2), in order. */
export function keypointErrors(sample: EvalSample): number[] {
  const { keypoints: gt, bbox, predicted } = sample;
  const diag = Math.hypot(bbox[2], bbox[3]);
  if (!(diag > 0)) throw new RangeError(`bbox [${bbox.join(', ')}] has no extent: its diagonal is the reference distance`);
  const errors: number[] = [];
  for (let k = 0; 3 * k + 2 < gt.length; k++) {
    if (gt[3 * k + 2] !== 2) continue;
    const px = predicted[2 * k];
    const py = predicted[2 * k + 1];
    if (px === undefined || py === undefined || !Number.isFinite(px) || !Number.isFinite(py)) {
      errors.push(Infinity);
    } else {
      errors.push((100 * Math.hypot(px - gt[3 * k], py - gt[3 * k + 1])) / diag);
    }
  }
  return errors;
}

export interface KeypointMetrics {
  /** Samples that have at least one labelled keypoint (the PCS denominator). */
  samples: number;
  /** Labelled keypoints over all samples (the NME and PCK denominator). */
  keypoints: number;
  /** Labelled keypoints without a prediction (each an infinite error). */
  missing: number;
  /** Mean error; Infinity when any labelled keypoint was not predicted; null with no keypoints. */
  nme: number | null;
  /** Share of keypoints with e <= t, per threshold t (key: t as written, e.g. "0.5"). */
  pck: Record<string, number | null>;
  /** Share of samples whose largest e is <= t, per threshold t. */
  pcs: Record<string, number | null>;
}

export const DEFAULT_THRESHOLDS: readonly number[] = [0.5, 1.0];

/** Threshold key as SPEC writes it: 0.5 -> "0.5", 1 -> "1.0". */
export function thresholdKey(t: number): string {
  return Number.isInteger(t) ? t.toFixed(1) : String(t);
}

export function keypointMetrics(samples: readonly EvalSample[], thresholds: readonly number[] = DEFAULT_THRESHOLDS): KeypointMetrics {
  let sum = 0;
  let keypoints = 0;
  let missing = 0;
  let counted = 0;
  const withinKp = thresholds.map(() => 0);
  const withinSample = thresholds.map(() => 0);
  for (const s of samples) {
    const errors = keypointErrors(s);
    // An image with no labelled keypoint has no reference box and nothing to measure.
    if (errors.length === 0) continue;
    counted++;
    let worst = 0;
    for (const e of errors) {
      sum += e;
      keypoints++;
      if (e === Infinity) missing++;
      if (e > worst) worst = e;
      thresholds.forEach((t, i) => {
        if (e <= t) withinKp[i]++;
      });
    }
    thresholds.forEach((t, i) => {
      if (worst <= t) withinSample[i]++;
    });
  }
  const pck: Record<string, number | null> = {};
  const pcs: Record<string, number | null> = {};
  thresholds.forEach((t, i) => {
    pck[thresholdKey(t)] = share(withinKp[i], keypoints);
    pcs[thresholdKey(t)] = share(withinSample[i], counted);
  });
  return { samples: counted, keypoints, missing, nme: keypoints === 0 ? null : sum / keypoints, pck, pcs };
}

/** Inside a box as SPEC defines it: x <= p.x <= x + w and y <= p.y <= y + h. */
export function boxContains(box: Box, x: number, y: number): boolean {
  return x >= box[0] && x <= box[0] + box[2] && y >= box[1] && y <= box[1] + box[3];
}

/** True when the ROI holds every labelled keypoint; no ROI (ROI_NOT_FOUND) holds none. */
export function roiHoldsKeypoints(roi: Box | null, keypoints: ArrayLike<number>): boolean {
  for (let k = 0; 3 * k + 2 < keypoints.length; k++) {
    if (keypoints[3 * k + 2] !== 2) continue;
    if (roi === null || !boxContains(roi, keypoints[3 * k], keypoints[3 * k + 1])) return false;
  }
  return true;
}

/** Share of samples whose ROI contains every labelled keypoint; null with no samples. */
export function roiRecall(samples: readonly { roi: Box | null; keypoints: ArrayLike<number> }[]): number | null {
  let hits = 0;
  for (const s of samples) if (roiHoldsKeypoints(s.roi, s.keypoints)) hits++;
  return share(hits, samples.length);
}

export interface LineFigures {
  /** PASS-expected frames judged FAIL or ERROR, as a share of PASS-expected frames (null: none). */
  overkill: number | null;
  /** FAIL-expected frames judged PASS, as a share of FAIL-expected frames (null: none). */
  escape: number | null;
  passExpected: number;
  failExpected: number;
}

/** Overkill and escape over frames that carry an expected verdict (others are skipped). */
export function lineFigures(frames: readonly { expected: 'PASS' | 'FAIL' | null; judged: Verdict }[]): LineFigures {
  let pass = 0;
  let fail = 0;
  let overkill = 0;
  let escape = 0;
  for (const f of frames) {
    if (f.expected === 'PASS') {
      pass++;
      if (f.judged !== 'PASS') overkill++;
    } else if (f.expected === 'FAIL') {
      fail++;
      if (f.judged === 'PASS') escape++;
    }
  }
  return { overkill: share(overkill, pass), escape: share(escape, fail), passExpected: pass, failExpected: fail };
}

function share(n: number, of: number): number | null {
  return of === 0 ? null : n / of;
}

/** The area two boxes share (0 when they do not overlap). */
export function boxIntersection(a: Box, b: Box): number {
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Intersection over union of two boxes (0 when either has no area). */
export function iou(a: Box, b: Box): number {
  const inter = boxIntersection(a, b);
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}
