// Reads SPEC's COCO keypoint datasets (DIR/annotations.json + DIR/images/*.png) for eval,
// benches and tests. Validated here, at the boundary, with errors that name the bad field.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.ts';
import { ORIENTATIONS, type Box, type Orientation } from '../types.ts';

/** A dataset that does not follow SPEC "Datasets"; a usage error because the user named it. */
export class DatasetError extends UsageError {
  override name = 'DatasetError';
}

export interface CocoImage {
  id: number;
  fileName: string;
  /** Absolute path of the image file. */
  file: string;
  /** Ground truth: x, y, v triples in keypoint order (frame coordinates as delivered). */
  keypoints: Float64Array;
  /** Reference ROI [x, y, w, h]. */
  bbox: Box;
  orientation: Orientation;
  pixelPitchMm: number | null;
  expectedVerdict: 'PASS' | 'FAIL' | null;
  defects: string[];
  cellId: string | null;
}

export interface CocoDataset {
  dir: string;
  keypointNames: string[];
  images: CocoImage[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export function readCocoDataset(dir: string): CocoDataset {
  const root = path.resolve(dir);
  const annFile = path.join(root, 'annotations.json');
  if (!existsSync(annFile)) throw new DatasetError(`${annFile}: not found (a dataset is DIR/annotations.json + DIR/images/)`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(annFile, 'utf8'));
  } catch (err) {
    throw new DatasetError(`${annFile}: not valid JSON: ${(err as Error).message}`);
  }
  const fail = (field: string, what: string): never => {
    throw new DatasetError(`${annFile}: ${field} ${what}`);
  };
  if (!isObject(doc)) return fail('(top level)', 'must be an object');

  const cats = doc.categories;
  if (!Array.isArray(cats) || cats.length === 0 || !isObject(cats[0])) fail('categories', 'must be a non-empty array of objects');
  const names = (cats as Json[])[0].keypoints;
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
    fail('categories[0].keypoints', 'must be a non-empty array of keypoint names');
  }
  const keypointNames = names as string[];
  const K = keypointNames.length;

  if (!Array.isArray(doc.images)) fail('images', 'must be an array');
  const byId = new Map<number, { index: number; image: Omit<CocoImage, 'keypoints' | 'bbox'> }>();
  (doc.images as unknown[]).forEach((img, i) => {
    const at = `images[${i}]`;
    if (!isObject(img)) return fail(at, 'must be an object');
    if (!Number.isInteger(img.id)) fail(`${at}.id`, `must be an integer, got ${JSON.stringify(img.id)}`);
    const id = img.id as number;
    if (byId.has(id)) fail(`${at}.id`, `${id} is used by images[${byId.get(id)!.index}] too`);
    const fileName = img.file_name;
    if (typeof fileName !== 'string' || fileName === '' || fileName !== path.basename(fileName)) {
      fail(`${at}.file_name`, `must be a file name inside images/, got ${JSON.stringify(fileName)}`);
    }
    const file = path.join(root, 'images', fileName as string);
    if (!existsSync(file)) fail(`${at}.file_name`, `'${fileName}': no such file ${file}`);
    const x = img.xpole;
    if (!isObject(x)) return fail(`${at}.xpole`, 'must be an object with at least "orientation"');
    if (!ORIENTATIONS.includes(x.orientation as Orientation)) {
      fail(`${at}.xpole.orientation`, `must be one of ${ORIENTATIONS.join(', ')}, got ${JSON.stringify(x.orientation)}`);
    }
    if (x.pixelPitchMm !== undefined && !(isNum(x.pixelPitchMm) && x.pixelPitchMm > 0)) {
      fail(`${at}.xpole.pixelPitchMm`, `must be a number > 0, got ${JSON.stringify(x.pixelPitchMm)}`);
    }
    if (x.expectedVerdict !== undefined && x.expectedVerdict !== 'PASS' && x.expectedVerdict !== 'FAIL') {
      fail(`${at}.xpole.expectedVerdict`, `must be "PASS" or "FAIL", got ${JSON.stringify(x.expectedVerdict)}`);
    }
    if (x.defects !== undefined && !(Array.isArray(x.defects) && x.defects.every((d) => typeof d === 'string'))) {
      fail(`${at}.xpole.defects`, 'must be an array of strings');
    }
    if (x.cellId !== undefined && typeof x.cellId !== 'string') fail(`${at}.xpole.cellId`, 'must be a string');
    byId.set(id, {
      index: i,
      image: {
        id,
        fileName: fileName as string,
        file,
        orientation: x.orientation as Orientation,
        pixelPitchMm: (x.pixelPitchMm as number | undefined) ?? null,
        expectedVerdict: (x.expectedVerdict as 'PASS' | 'FAIL' | undefined) ?? null,
        defects: (x.defects as string[] | undefined) ?? [],
        cellId: (x.cellId as string | undefined) ?? null,
      },
    });
  });

  if (!Array.isArray(doc.annotations)) fail('annotations', 'must be an array');
  const annotated = new Map<number, CocoImage>();
  (doc.annotations as unknown[]).forEach((ann, i) => {
    const at = `annotations[${i}]`;
    if (!isObject(ann)) return fail(at, 'must be an object');
    const entry = byId.get(ann.image_id as number);
    if (entry === undefined) return fail(`${at}.image_id`, `${JSON.stringify(ann.image_id)} names no image`);
    if (annotated.has(entry.image.id)) fail(`${at}.image_id`, `image ${entry.image.id} has a second annotation (one stack per image)`);
    const kp = ann.keypoints;
    if (!Array.isArray(kp) || kp.length !== 3 * K || !kp.every(isNum)) {
      fail(`${at}.keypoints`, `must be ${3 * K} numbers (x, y, v for each of the ${K} keypoints)`);
    }
    const keypoints = Float64Array.from(kp as number[]);
    for (let k = 0; k < K; k++) {
      const v = keypoints[3 * k + 2];
      if (v !== 0 && v !== 1 && v !== 2) fail(`${at}.keypoints[${3 * k + 2}]`, `(visibility of ${keypointNames[k]}) must be 0, 1 or 2, got ${v}`);
    }
    const bbox = ann.bbox;
    if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(isNum) || !(bbox[2] > 0 && bbox[3] > 0)) {
      fail(`${at}.bbox`, `must be [x, y, w, h] with w, h > 0, got ${JSON.stringify(bbox)}`);
    }
    annotated.set(entry.image.id, { ...entry.image, keypoints, bbox: bbox as Box });
  });

  const images: CocoImage[] = [];
  for (const { index, image } of byId.values()) {
    const full = annotated.get(image.id);
    if (full === undefined) fail(`images[${index}]`, `(${image.fileName}) has no annotation`);
    images.push(full!);
  }
  return { dir: root, keypointNames, images };
}
