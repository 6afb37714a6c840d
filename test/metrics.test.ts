// Metrics on hand-made samples; every expected value is worked out by hand in the comments.
// Offsets are chosen so the errors are exact in binary (axis-aligned or 3-4-5 triangles).
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetError, readCocoDataset } from '../src/eval/coco.ts';
import { iou, keypointErrors, keypointMetrics, lineFigures, roiRecall, type EvalSample } from '../src/eval/metrics.ts';

const NaN2 = [NaN, NaN];

// bbox 300 x 400 -> diagonal 500, so e = 100 * d / 500 = d / 5.
const A: EvalSample = {
  bbox: [100, 100, 300, 400],
  keypoints: [150, 150, 2, 200, 200, 2, 0, 0, 0, 250, 250, 2],
  // d = 5 (3-4-5) -> e = 1.0; d = 2.5 -> e = 0.5; the absent one is ignored however wrong; d = 0.
  predicted: [153, 154, 202.5, 200, 999, 999, 250, 250],
};
// bbox 60 x 80 -> diagonal 100, so e = d.
const B: EvalSample = {
  bbox: [0, 0, 60, 80],
  keypoints: [10, 10, 2, 20, 20, 2, 30, 30, 2, 40, 40, 2],
  // e = 0.5, not predicted (infinite), 0, 1.0
  predicted: [10.5, 10, ...NaN2, 30, 30, 40, 41],
};
// bbox 6 x 8 -> diagonal 10, so e = 10 d; one labelled keypoint at d = 0.0625 -> e = 0.625.
const C: EvalSample = {
  bbox: [0, 0, 6, 8],
  keypoints: [1, 1, 2, 3, 3, 0],
  predicted: [1.0625, 1, 3, 3],
};
// No labelled keypoint: nothing to measure, excluded from every denominator.
const D: EvalSample = { bbox: [0, 0, 6, 8], keypoints: [1, 1, 0, 2, 2, 0], predicted: [...NaN2, ...NaN2] };

describe('keypoint errors', () => {
  it('are percent of the bbox diagonal for labelled keypoints only, infinite when missing', () => {
    expect(keypointErrors(A)).toEqual([1, 0.5, 0]);
    expect(keypointErrors(B)).toEqual([0.5, Infinity, 0, 1]);
    expect(keypointErrors(C)).toEqual([0.625]);
    expect(keypointErrors(D)).toEqual([]);
  });

  it('treat a prediction array that is too short as missing', () => {
    expect(keypointErrors({ ...C, predicted: [] })).toEqual([Infinity]);
  });

  it('refuse a bbox without extent', () => {
    expect(() => keypointErrors({ ...C, bbox: [5, 5, 0, 0] })).toThrow(/diagonal/);
  });
});

describe('NME, PCK, PCS', () => {
  it('match the hand computation with a missing keypoint', () => {
    // errors: A [1, 0.5, 0], B [0.5, inf, 0, 1], C [0.625]: 8 keypoints, 3 samples (D excluded).
    const m = keypointMetrics([A, B, C, D]);
    expect(m.samples).toBe(3);
    expect(m.keypoints).toBe(8);
    expect(m.missing).toBe(1);
    expect(m.nme).toBe(Infinity);
    // e <= 0.5: 0.5, 0 (A), 0.5, 0 (B) = 4 of 8; e <= 1: all but inf and 0.625? no: 0.625 <= 1 -> 7 of 8.
    expect(m.pck).toEqual({ '0.5': 0.5, '1.0': 0.875 });
    // worst per sample: A 1, B inf, C 0.625 -> none <= 0.5; A and C <= 1 -> 2 of 3.
    expect(m.pcs['0.5']).toBe(0);
    expect(m.pcs['1.0']).toBeCloseTo(2 / 3, 15);
  });

  it('give a finite NME when everything is predicted, with thresholds as given', () => {
    // errors 1, 0.5, 0, 0.625: mean 2.125 / 4 = 0.53125.
    const m = keypointMetrics([A, C], [0.5, 0.625, 1]);
    expect(m.nme).toBe(0.53125);
    expect(m.pck).toEqual({ '0.5': 0.5, '0.625': 0.75, '1.0': 1 });
    // worst: A 1, C 0.625.
    expect(m.pcs).toEqual({ '0.5': 0, '0.625': 0.5, '1.0': 1 });
  });

  it('report null, not a number, when there is nothing to measure', () => {
    const m = keypointMetrics([D]);
    expect(m).toMatchObject({ samples: 0, keypoints: 0, nme: null, pck: { '0.5': null }, pcs: { '1.0': null } });
  });
});

describe('ROI recall', () => {
  it('needs every labelled keypoint inside (edges included), ignores absent ones, and counts no ROI as a miss', () => {
    // A's labelled keypoints: (150,150), (200,200), (250,250); the absent (0,0) lies outside every ROI here.
    const exact = { roi: [100, 100, 150, 150] as [number, number, number, number], keypoints: A.keypoints };
    const short = { roi: [100, 100, 149.9, 150] as [number, number, number, number], keypoints: A.keypoints };
    const none = { roi: null, keypoints: A.keypoints };
    expect(roiRecall([exact])).toBe(1);
    expect(roiRecall([short])).toBe(0);
    expect(roiRecall([exact, short, none, exact])).toBe(0.5);
    expect(roiRecall([])).toBeNull();
  });
});

describe('line figures', () => {
  it('overkill counts FAIL and ERROR on PASS frames, escape only PASS on FAIL frames', () => {
    const f = lineFigures([
      { expected: 'PASS', judged: 'PASS' },
      { expected: 'PASS', judged: 'FAIL' },
      { expected: 'PASS', judged: 'ERROR' },
      { expected: 'PASS', judged: 'PASS' },
      { expected: 'FAIL', judged: 'PASS' },
      { expected: 'FAIL', judged: 'FAIL' },
      { expected: 'FAIL', judged: 'ERROR' },
      { expected: null, judged: 'PASS' },
    ]);
    // overkill 2 of 4 PASS frames; escape 1 of 3 FAIL frames; the unlabelled frame counts nowhere.
    expect(f.overkill).toBe(0.5);
    expect(f.escape).toBeCloseTo(1 / 3, 15);
    expect(f.passExpected).toBe(4);
    expect(f.failExpected).toBe(3);
    expect(lineFigures([{ expected: 'PASS', judged: 'PASS' }]).escape).toBeNull();
  });
});

describe('IoU', () => {
  it('of overlapping, identical and disjoint boxes', () => {
    // 10x10 boxes shifted by (5, 5): intersection 25, union 175.
    expect(iou([0, 0, 10, 10], [5, 5, 10, 10])).toBeCloseTo(1 / 7, 15);
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [10, 0, 10, 10])).toBe(0);
  });
});

describe('COCO dataset reader', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  function dataset(doc: unknown, files = ['a.png', 'b.png']): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'xpole-coco-'));
    dirs.push(dir);
    mkdirSync(path.join(dir, 'images'));
    for (const f of files) writeFileSync(path.join(dir, 'images', f), '');
    writeFileSync(path.join(dir, 'annotations.json'), typeof doc === 'string' ? doc : JSON.stringify(doc));
    return dir;
  }
  const good = () => ({
    images: [
      { id: 1, file_name: 'a.png', width: 64, height: 64, xpole: { orientation: 'tips-left', pixelPitchMm: 0.02, cellId: 'c1', expectedVerdict: 'FAIL', defects: ['OVERHANG_LOW'] } },
      { id: 2, file_name: 'b.png', xpole: { orientation: 'tips-up' } },
    ],
    categories: [{ name: 'stack', keypoints: ['A0', 'C0'] }],
    annotations: [
      { id: 10, image_id: 2, keypoints: [1, 2, 2, 3, 4, 0], bbox: [0, 0, 5, 6] },
      { id: 11, image_id: 1, keypoints: [5, 6, 2, 7, 8, 2], bbox: [1, 2, 3, 4] },
    ],
  });

  it('reads images with their annotation and xpole fields, defaults for the optional ones', () => {
    const dir = dataset(good());
    const ds = readCocoDataset(dir);
    expect(ds.keypointNames).toEqual(['A0', 'C0']);
    expect(ds.images).toHaveLength(2);
    const [a, b] = ds.images;
    expect(a).toMatchObject({ id: 1, fileName: 'a.png', file: path.join(dir, 'images', 'a.png'), bbox: [1, 2, 3, 4], orientation: 'tips-left', pixelPitchMm: 0.02, expectedVerdict: 'FAIL', defects: ['OVERHANG_LOW'], cellId: 'c1' });
    expect(Array.from(a.keypoints)).toEqual([5, 6, 2, 7, 8, 2]);
    expect(b).toMatchObject({ id: 2, orientation: 'tips-up', pixelPitchMm: null, expectedVerdict: null, defects: [], cellId: null });
    expect(Array.from(b.keypoints)).toEqual([1, 2, 2, 3, 4, 0]);
  });

  const broken: [string, (d: ReturnType<typeof good>) => unknown, RegExp][] = [
    ['bad JSON', () => '{"images": [', /not valid JSON/],
    ['no keypoint names', (d) => ({ ...d, categories: [{}] }), /categories\[0\]\.keypoints/],
    ['bad orientation', (d) => { (d.images[1].xpole as Record<string, unknown>).orientation = 'left'; return d; }, /images\[1\]\.xpole\.orientation.*"left"/],
    ['missing xpole', (d) => { delete (d.images[0] as Record<string, unknown>).xpole; return d; }, /images\[0\]\.xpole must be an object/],
    ['bad verdict', (d) => { (d.images[0].xpole as Record<string, unknown>).expectedVerdict = 'OK'; return d; }, /images\[0\]\.xpole\.expectedVerdict/],
    ['bad pitch', (d) => { (d.images[0].xpole as Record<string, unknown>).pixelPitchMm = -1; return d; }, /images\[0\]\.xpole\.pixelPitchMm/],
    ['missing file', (d) => { d.images[1].file_name = 'c.png'; return d; }, /images\[1\]\.file_name.*no such file/],
    ['path in file name', (d) => { d.images[1].file_name = '../b.png'; return d; }, /images\[1\]\.file_name/],
    ['duplicate id', (d) => { d.images[1].id = 1; return d; }, /images\[1\]\.id/],
    ['short keypoints', (d) => { d.annotations[0].keypoints = [1, 2, 2]; return d; }, /annotations\[0\]\.keypoints must be 6 numbers/],
    ['bad visibility', (d) => { d.annotations[1].keypoints[5] = 3; return d; }, /annotations\[1\]\.keypoints\[5\] \(visibility of C0\)/],
    ['empty bbox', (d) => { d.annotations[1].bbox = [0, 0, 0, 4]; return d; }, /annotations\[1\]\.bbox/],
    ['unknown image', (d) => { d.annotations[1].image_id = 7; return d; }, /annotations\[1\]\.image_id 7 names no image/],
    ['two annotations', (d) => { d.annotations[1].image_id = 2; return d; }, /annotations\[1\]\.image_id.*second annotation/],
    ['unannotated image', (d) => { d.annotations.pop(); return d; }, /images\[0\] \(a\.png\) has no annotation/],
  ];
  it.each(broken)('refuses %s, naming the field', (_name, mutate, message) => {
    const dir = dataset(mutate(good()));
    expect(() => readCocoDataset(dir)).toThrow(DatasetError);
    expect(() => readCocoDataset(dir)).toThrow(message);
  });

  it('refuses a folder without annotations.json', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xpole-coco-'));
    dirs.push(dir);
    expect(() => readCocoDataset(dir)).toThrow(/annotations\.json: not found/);
  });
});
