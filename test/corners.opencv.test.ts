// OpenCV is the judge: our FAST-9 must return exactly cv::FAST(img, kps, t, true, TYPE_9_16)'s keypoints
// (positions and responses) on real frames and on synthetic images that stress the edge cases.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeFrame } from '../src/frame/decode.ts';
import type { Corners, Image } from '../src/types.ts';
import { detectCorners } from '../src/vision/corners.ts';
import { opencvMissing, rng, runOpenCv, type PeerImage, type PeerJob } from './peers/opencv.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const REAL = path.resolve(here, '../../shared/real-frames/images');
const missing = opencvMissing();
if (missing) console.warn(`SKIPPED the OpenCV comparison: ${missing}`);

function img8(width: number, height: number, f: (x: number, y: number) => number): Image & PeerImage {
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) pixels[y * width + x] = Math.max(0, Math.min(255, Math.round(f(x, y))));
  return { width, height, depth: 8, pixels };
}

function noise(width: number, height: number, seed: number, lo = 0, hi = 255) {
  const r = rng(seed);
  return img8(width, height, () => lo + r() * (hi - lo));
}

/** Smooth blobs and edges plus mild noise: corners with many different scores, like a radiograph. */
function structured(width: number, height: number, seed: number) {
  const r = rng(seed);
  const blobs = Array.from({ length: 12 }, () => [r() * width, r() * height, 3 + r() * 12, 60 + r() * 150]);
  return img8(width, height, (x, y) => {
    let v = 40 + ((x * 7 + y * 3) % 50);
    for (const [bx, by, s, a] of blobs) if (Math.abs(x - bx!) < s! && Math.abs(y - by!) < s! * 0.6) v += a! * 0.5;
    return v + r() * 12;
  });
}

function key(x: number, y: number) {
  return `${x},${y}`;
}

/** Compares as sets: the same points with the same responses; names the first differences. */
function expectSame(ours: Corners, theirs: number[][], what: string) {
  const mine = new Map<string, number>();
  for (let i = 0; i < ours.count; i++) mine.set(key(ours.x[i]!, ours.y[i]!), ours.score[i]!);
  const diffs: string[] = [];
  const seen = new Set<string>();
  for (const [x, y, response] of theirs) {
    const k = key(x!, y!);
    seen.add(k);
    const s = mine.get(k);
    if (s === undefined) diffs.push(`OpenCV only: (${k}) score ${response}`);
    else if (s !== response) diffs.push(`(${k}) score ${s} vs OpenCV ${response}`);
  }
  for (const [k, s] of mine) if (!seen.has(k)) diffs.push(`ours only: (${k}) score ${s}`);
  expect(diffs.slice(0, 10), `${what}: ${ours.count} ours vs ${theirs.length} OpenCV`).toEqual([]);
  expect(ours.count).toBe(theirs.length);
}

function compare(cases: { name: string; img: Image & PeerImage; threshold: number }[]) {
  const jobs: PeerJob[] = cases.map((c) => ({ img: c.img, op: 'fast', threshold: c.threshold }));
  const results = runOpenCv(jobs);
  let total = 0;
  cases.forEach((c, i) => {
    const ours = detectCorners(c.img, { threshold: c.threshold });
    expectSame(ours, results[i]!, `${c.name} t=${c.threshold}`);
    total += ours.count;
  });
  return total;
}

describe.skipIf(missing !== null)('FAST-9 against OpenCV cv::FAST (TYPE_9_16, nonmax)', () => {
  it('matches on synthetic images with every threshold 1..100', () => {
    const images: [string, Image & PeerImage][] = [
      ['noise 37x29', noise(37, 29, 1)],
      ['low-contrast noise 40x40', noise(40, 40, 2, 100, 140)],
      ['structured 61x47', structured(61, 47, 3)],
      ['checkerboard 2px', img8(24, 24, (x, y) => (((x >> 1) + (y >> 1)) & 1 ? 200 : 30))],
    ];
    const cases = images.flatMap(([name, img]) => Array.from({ length: 100 }, (_, t) => ({ name, img, threshold: t + 1 })));
    expect(compare(cases)).toBeGreaterThan(1000);
  });

  it('matches on flat, stripes, checkerboards, 1-px lines and tiny images', () => {
    const images: [string, Image & PeerImage][] = [
      ['flat 0', img8(20, 20, () => 0)],
      ['flat 128', img8(20, 20, () => 128)],
      ['flat 255', img8(20, 20, () => 255)],
      ['vertical stripes', img8(40, 30, (x) => ((x >> 2) & 1 ? 220 : 20))],
      ['horizontal stripes 1px', img8(30, 40, (_, y) => (y & 1 ? 255 : 0))],
      ['diagonal stripes', img8(40, 40, (x, y) => (((x + y) >> 2) & 1 ? 180 : 60))],
      ...[1, 3, 4, 7].map((c): [string, Image & PeerImage] => [
        `checkerboard ${c}px`,
        img8(45, 33, (x, y) => ((Math.floor(x / c) + Math.floor(y / c)) & 1 ? 250 : 5)),
      ]),
      ['1-px horizontal line', img8(32, 32, (_, y) => (y === 15 ? 200 : 50))],
      ['1-px vertical dark line', img8(32, 32, (x) => (x === 9 ? 0 : 180))],
      ['1-px diagonal line', img8(32, 32, (x, y) => (x === y ? 255 : 0))],
      ['1-px cross and dot', img8(32, 32, (x, y) => (x === 16 || y === 10 || (x === 5 && y === 25) ? 255 : 90))],
      ['saturated spots', img8(36, 36, (x, y) => ((x * 13 + y * 7) % 23 === 0 ? 255 : (x * 5 + y) % 17 === 0 ? 0 : 128))],
    ];
    for (let w = 1; w <= 9; w++) for (let h = 1; h <= 9; h++) if (w <= 7 || h <= 7) images.push([`tiny ${w}x${h}`, noise(w, h, w * 16 + h)]);
    const thresholds = [1, 2, 5, 10, 20, 35, 50, 75, 100];
    const cases = images.flatMap(([name, img]) => thresholds.map((threshold) => ({ name, img, threshold })));
    expect(compare(cases)).toBeGreaterThan(100);
  });

  it.skipIf(!existsSync(REAL))('matches on every real frame in ../shared/real-frames (12 thresholds spread over them)', async () => {
    const files = readdirSync(REAL).sort();
    expect(files.length).toBeGreaterThan(30);
    const thresholds = [1, 3, 5, 8, 10, 15, 20, 25, 30, 40, 60, 100];
    const cases: { name: string; img: Image & PeerImage; threshold: number }[] = [];
    for (const [i, f] of files.entries()) {
      const img = await decodeFrame(readFileSync(path.join(REAL, f)));
      expect(img.depth).toBe(8);
      // Two thresholds per frame, cycling, so all twelve are used across the set.
      for (const t of [thresholds[(2 * i) % 12]!, thresholds[(2 * i + 1) % 12]!]) {
        cases.push({ name: f, img: img as Image & PeerImage, threshold: t });
      }
    }
    expect(compare(cases)).toBeGreaterThan(10000);
  });
});

if (!existsSync(REAL)) console.warn(`SKIPPED the real-frame comparison: ${REAL} is absent`);
