// Does the ROI stage need its half scale? On a labelled set: how often the best box of both scales
// differs (IoU < 0.9) from the full scale's own best, by the full scale's best score (issue 6: the
// half scale costs about 6 of the stage's ~15 ms at 2048²; docs/roi.md).
// Usage: npx tsx bench/roi-half-scale.ts DIR
import fs from 'node:fs';
import { FrameError } from '../src/errors.ts';
import { readCocoDataset } from '../src/eval/coco.ts';
import { decodeFrame } from '../src/frame/decode.ts';
import { iou } from '../src/eval/metrics.ts';
import { detectCorners } from '../src/vision/corners.ts';
import { cornerGroups, DEFAULT_ROI_PARAMS, greyRange, roiBox, roiGroups, scaledThreshold } from '../src/vision/roi.ts';
const ds = readCocoDataset(process.argv[2]!);
const params = { ...DEFAULT_ROI_PARAMS, corners: 512 };
const rows: { full: number; changed: boolean; noFull: boolean }[] = [];
let notFound = 0;
for (const img of ds.images) {
  const image = await decodeFrame(fs.readFileSync(img.file));
  const t = scaledThreshold(greyRange(image), image.depth, params.threshold8);
  const found = detectCorners(image, { threshold: t, maxCorners: params.corners });
  let all;
  try {
    all = roiGroups(image, img.orientation, params, { threshold: t, corners: found });
  } catch (err) {
    if (!(err instanceof FrameError)) throw err;
    notFound++; // ROI_NOT_FOUND at both scales: nothing to compare
    continue;
  }
  const full = cornerGroups(image, found, img.orientation, params);
  if (full.length === 0) {
    rows.push({ full: 0, changed: true, noFull: true }); // the first rung at full scale found no group
    continue;
  }
  const both = roiBox(image, all[0]!, img.orientation, params);
  const fullOnly = roiBox(image, full[0]!, img.orientation, params);
  rows.push({ full: full[0]!.score ?? 0, changed: iou(both, fullOnly) < 0.9, noFull: false });
}
const changed = rows.filter((r) => r.changed);
console.log(`${rows.length} frames (${notFound} more ROI_NOT_FOUND); half scale changes the best box on ${changed.length} (${rows.filter((r) => r.noFull).length} with no full-scale group)`);
const scores = rows.map((r) => r.full).sort((x, y) => x - y);
console.log('full-scale best score quantiles 5/25/50:', [0.05, 0.25, 0.5].map((q) => scores[Math.floor(q * scores.length)]!.toFixed(1)).join(' '));
console.log('scores where the half changed it:', changed.map((r) => r.full.toFixed(1)).sort((x, y) => Number(x) - Number(y)).join(' '));
for (const th of [5, 10, 20, 40]) console.log(`skip half when full best score >= ${th}: skips ${rows.filter((r) => r.full >= th).length}, of which the half would have changed ${changed.filter((r) => r.full >= th).length}`);
