// SPEC "Datasets": the COCO keypoints layout of a synthetic dataset (annotations.json records).
import type { Recipe } from '../inspect/recipe.ts';
import type { Box } from '../types.ts';
import type { SynthFrame } from './frame.ts';

export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
  xpole: {
    orientation: SynthFrame['orientation'];
    pixelPitchMm: number;
    cellId: string;
    expectedVerdict: SynthFrame['expectedVerdict'];
    defects: string[];
    /** Bit depth of the stored PNG and the seed renderFrame was called with (to re-render one frame). */
    depth: 8 | 16;
    seed: number;
  };
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: 1;
  keypoints: number[];
  num_keypoints: number;
  bbox: Box;
  area: number;
  iscrowd: 0;
}

export interface CocoDataset {
  info: Record<string, unknown>;
  categories: [{ id: 1; name: string; supercategory: string; keypoints: string[]; skeleton: number[][] }];
  images: CocoImage[];
  annotations: CocoAnnotation[];
}

/** SPEC's reference ROI: the tight box of the labelled keypoints grown by 0.1 * max(w, h) on every side. */
export function referenceBox(keypoints: ArrayLike<number>): Box {
  let x0 = Number.POSITIVE_INFINITY;
  let y0 = Number.POSITIVE_INFINITY;
  let x1 = Number.NEGATIVE_INFINITY;
  let y1 = Number.NEGATIVE_INFINITY;
  for (let i = 0; i + 2 < keypoints.length; i += 3) {
    if (!(keypoints[i + 2]! > 0)) continue;
    x0 = Math.min(x0, keypoints[i]!);
    y0 = Math.min(y0, keypoints[i + 1]!);
    x1 = Math.max(x1, keypoints[i]!);
    y1 = Math.max(y1, keypoints[i + 1]!);
  }
  if (!(x1 >= x0)) throw new RangeError('referenceBox: no labelled keypoint');
  const m = 0.1 * Math.max(x1 - x0, y1 - y0);
  return [x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m];
}

/** Keeps 1e-4 px: far below any error we measure, and keeps the JSON small. */
const round4 = (v: number) => Math.round(v * 1e4) / 1e4;

export function fileName(index: number): string {
  return `${String(index).padStart(6, '0')}.png`;
}

/** The image and annotation records of frame `index` (ids start at 1). */
export function cocoRecords(index: number, seed: number, frame: SynthFrame): { image: CocoImage; annotation: CocoAnnotation } {
  const kp = Array.from(frame.keypoints, (v, i) => (i % 3 === 2 ? v : round4(v)));
  const box = referenceBox(frame.keypoints).map(round4) as Box;
  let labelled = 0;
  for (let i = 2; i < kp.length; i += 3) if (kp[i]! > 0) labelled++;
  return {
    image: {
      id: index + 1,
      file_name: fileName(index),
      width: frame.image.width,
      height: frame.image.height,
      xpole: {
        orientation: frame.orientation,
        pixelPitchMm: frame.pixelPitchMm,
        cellId: frame.cellId,
        expectedVerdict: frame.expectedVerdict,
        defects: [...frame.defects],
        depth: frame.image.depth,
        seed,
      },
    },
    annotation: {
      id: index + 1,
      image_id: index + 1,
      category_id: 1,
      keypoints: kp,
      num_keypoints: labelled,
      bbox: box,
      area: round4(box[2] * box[3]),
      iscrowd: 0,
    },
  };
}

export function cocoDataset(recipe: Recipe, info: Record<string, unknown>, records: { image: CocoImage; annotation: CocoAnnotation }[]): CocoDataset {
  return {
    info,
    categories: [{ id: 1, name: 'cell-stack', supercategory: 'cell', keypoints: [...recipe.keypoints], skeleton: [] }],
    images: records.map((r) => r.image),
    annotations: records.map((r) => r.annotation),
  };
}
