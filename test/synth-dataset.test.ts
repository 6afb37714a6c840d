// `xpole synth`: SPEC's COCO layout written by worker threads, the same for any worker count.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../src/cli/synth.ts';
import { UsageError } from '../src/errors.ts';
import { decodeFrame } from '../src/frame/decode.ts';
import { DEFAULT_RECIPE } from '../src/inspect/recipe.ts';
import type { CocoDataset } from '../src/synth/dataset.ts';
import { renderFrame } from '../src/synth/frame.ts';
import { renderDataset } from '../src/synth/pool.ts';
import { frameSeed } from '../src/synth/prng.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'xpole-synth-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('renderDataset', () => {
  it('writes the COCO layout, identical with 1 and 2 workers', async () => {
    const [one, two] = [await tempDir(), await tempDir()];
    const frame = { width: 300, height: 280 };
    await renderDataset({ out: one, count: 5, seed: 17, defectRate: 0.5, workers: 1, frame });
    const res = await renderDataset({ out: two, count: 5, seed: 17, defectRate: 0.5, workers: 2, frame });
    expect(res.images).toBe(5);

    const a = await readFile(path.join(one, 'annotations.json'), 'utf8');
    expect(await readFile(path.join(two, 'annotations.json'), 'utf8')).toBe(a);
    const files = (await readdir(path.join(one, 'images'))).sort();
    for (const f of files) {
      expect((await readFile(path.join(two, 'images', f))).equals(await readFile(path.join(one, 'images', f)))).toBe(true);
    }

    const ds = JSON.parse(a) as CocoDataset;
    expect(ds.categories[0].keypoints).toEqual(DEFAULT_RECIPE.keypoints);
    expect(ds.images.map((i) => i.file_name).sort()).toEqual(files);
    expect(ds.annotations).toHaveLength(5);
    for (const img of ds.images) {
      const ann = ds.annotations.find((x) => x.image_id === img.id)!;
      expect(ann.keypoints).toHaveLength(3 * DEFAULT_RECIPE.keypoints.length);
      expect(['tips-right', 'tips-left', 'tips-up', 'tips-down']).toContain(img.xpole.orientation);
      expect(['PASS', 'FAIL']).toContain(img.xpole.expectedVerdict);
      expect(img.xpole.expectedVerdict === 'PASS').toBe(img.xpole.defects.length === 0);
      const decoded = await decodeFrame(await readFile(path.join(one, 'images', img.file_name)));
      expect([decoded.width, decoded.height, decoded.depth]).toEqual([img.width, img.height, img.xpole.depth]);
      // bbox per SPEC, recomputed from the labelled keypoints
      const xs: number[] = [];
      const ys: number[] = [];
      for (let k = 0; k < ann.keypoints.length; k += 3) {
        expect([0, 2]).toContain(ann.keypoints[k + 2]);
        if (ann.keypoints[k + 2] === 2) {
          xs.push(ann.keypoints[k]!);
          ys.push(ann.keypoints[k + 1]!);
        }
      }
      expect(ann.num_keypoints).toBe(xs.length);
      const w = Math.max(...xs) - Math.min(...xs);
      const h = Math.max(...ys) - Math.min(...ys);
      const m = 0.1 * Math.max(w, h);
      const want = [Math.min(...xs) - m, Math.min(...ys) - m, w + 2 * m, h + 2 * m];
      ann.bbox.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 3));
    }
  });
});

describe('xpole synth command line', () => {
  it.each([
    [['--out', '/tmp/x', '--count', 'ten'], /--count/],
    [['--out', '/tmp/x', '--count', '0'], /--count/],
    [['--out', '/tmp/x', '--count', '3', '--defect-rate', '1.5'], /--defect-rate/],
    [['--out', '/tmp/x', '--count', '3', '--seed', '-1'], /--seed/],
    [['--out', '/tmp/x', '--count', '3', '--depth', '12'], /--depth/],
    [['--out', '/tmp/x', '--count', '3', '--workers', '0'], /--workers/],
    [['--out', '/tmp/x', '--count', '3', '--cathode-scatter', '4'], /--cathode-scatter/],
    [['--out', '/tmp/x', '--count', '3', '--cathode-scatter', '4,2'], /--cathode-scatter/],
    [['--out', '/tmp/x', '--count', '3', '--cathode-thickness', '0,1'], /--cathode-thickness/],
    [['--out', '/tmp/x', '--count', '3', '--cathode-contrast', '1,5'], /--cathode-contrast/],
    [['--out', '/tmp/x', '--count', '3', '--hidden-missing', 'yes'], /--hidden-missing/],
    [['--out', '/tmp/x', '--count', '3', '--anodes', '1'], /--anodes/],
    [['--count', '3'], /--out/],
    [['--out', '/tmp/x'], /--count/],
    [['--preview', 'montage.jpg'], /--preview/],
  ])('refuses %j naming the flag', async (argv, flag) => {
    const err = await run(argv as string[]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(flag);
  });

  it('writes a dataset', async () => {
    const out = await tempDir();
    const code = await run(['--out', out, '--count', '2', '--seed', '4', '--width', '256', '--height', '256', '--depth', '8', '--workers', '1']);
    expect(code).toBe(0);
    const ds = JSON.parse(await readFile(path.join(out, 'annotations.json'), 'utf8')) as CocoDataset;
    expect(ds.images.map((i) => [i.width, i.height, i.xpole.depth])).toEqual([
      [256, 256, 8],
      [256, 256, 8],
    ]);
  });

  it('draws a stack of another recipe with --anodes, its keypoints named after it', async () => {
    const out = await tempDir();
    await run(['--out', out, '--count', '1', '--seed', '5', '--width', '1000', '--height', '1000', '--defect-rate', '0', '--workers', '1', '--anodes', '22']);
    const ds = JSON.parse(await readFile(path.join(out, 'annotations.json'), 'utf8')) as CocoDataset;
    const names = ds.categories[0].keypoints;
    expect([names.length, names[0], names[1], names.at(-1)]).toEqual([43, 'A0', 'C0', 'A21']);
    expect(ds.annotations[0]!.keypoints).toHaveLength(3 * 43);
    expect(ds.annotations[0]!.keypoints.filter((v, i) => i % 3 === 2 && v === 2)).toHaveLength(43);
  });

  it('draws the cathode look it is given', async () => {
    const out = await tempDir();
    const look = { cathodeScatterPx: [4, 8], cathodeThickness: [0.3, 0.5], cathodeContrast: [0.5, 0.7], hiddenMissing: 0.5 } as const;
    await run(['--out', out, '--count', '1', '--seed', '9', '--width', '256', '--height', '256', '--workers', '1',
      '--cathode-scatter', '4,8', '--cathode-thickness', '0.3,0.5', '--cathode-contrast', '0.5,0.7', '--hidden-missing', '0.5']);
    const ds = JSON.parse(await readFile(path.join(out, 'annotations.json'), 'utf8')) as CocoDataset;
    const seed = frameSeed(9, 0);
    const size = { seed, width: 256, height: 256, defectRate: 0.25 };
    const want = renderFrame({ ...size, cathodeScatterPx: [...look.cathodeScatterPx], cathodeThickness: [...look.cathodeThickness], cathodeContrast: [...look.cathodeContrast], hiddenMissing: look.hiddenMissing });
    const plain = renderFrame(size);
    ds.annotations[0]!.keypoints.forEach((v, i) => expect(v).toBeCloseTo(want.keypoints[i]!, 3));
    expect(ds.annotations[0]!.keypoints.some((v, i) => Math.abs(v - plain.keypoints[i]!) > 0.01)).toBe(true);
  });
});
