// ORB (one pyramid level) as the judge of the Harris ranking and the intensity-centroid angle.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeFrame } from '../src/frame/decode.ts';
import type { Corners, Image } from '../src/types.ts';
import { detectCorners } from '../src/vision/corners.ts';
import { opencvMissing, rng, runOpenCv, type PeerImage } from './peers/opencv.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const REAL = path.resolve(here, '../../shared/real-frames/images');
const missing = opencvMissing();
if (missing) console.warn(`SKIPPED the ORB comparison: ${missing}`);
if (!existsSync(REAL)) console.warn(`SKIPPED the ORB comparison on real frames: ${REAL} is absent`);

const EDGE = 31; // ORB's default edgeThreshold: every patch lies inside the frame

function angleDiff(a: number, b: number) {
  return Math.abs((((a - b) % 360) + 540) % 360 - 180);
}

/** Same points; Harris responses equal to float rounding; angles within 1 degree (OpenCV's fastAtan2 is approximate). */
function expectLikeOrb(ours: Corners, orb: number[][], what: string) {
  const mine = new Map<string, number>();
  for (let i = 0; i < ours.count; i++) mine.set(`${ours.x[i]},${ours.y[i]}`, i);
  const missingPts = orb.filter(([x, y]) => !mine.has(`${x},${y}`)).map(([x, y]) => `${x},${y}`);
  expect(missingPts.slice(0, 10), `${what}: points ORB has and we lack`).toEqual([]);
  expect(ours.count, `${what}: corner count`).toBe(orb.length);
  let worstAngle = 0;
  for (const [x, y, response, angle] of orb) {
    const i = mine.get(`${x},${y}`)!;
    expect(Math.abs(ours.harris[i]! - response!), `${what}: harris at ${x},${y}`).toBeLessThanOrEqual(Math.abs(response!) * 1e-5 + 1e-12);
    worstAngle = Math.max(worstAngle, angleDiff(ours.angle[i]!, angle!));
  }
  expect(worstAngle, `${what}: worst angle difference (degrees)`).toBeLessThan(1);
}

async function frames(n: number): Promise<(Image & PeerImage)[]> {
  if (!existsSync(REAL)) return [];
  const files = readdirSync(REAL).sort();
  const picked = Array.from({ length: n }, (_, i) => files[Math.floor((i * files.length) / n)]!);
  return Promise.all(picked.map(async (f) => (await decodeFrame(readFileSync(path.join(REAL, f)))) as Image & PeerImage));
}

function synthetic(seed: number): Image & PeerImage {
  const r = rng(seed);
  const width = 160, height = 120;
  const pixels = new Uint8Array(width * height);
  const rects = Array.from({ length: 25 }, () => [r() * width, r() * height, 4 + r() * 20, 3 + r() * 12, r() * 120]);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 60 + r() * 10;
      for (const [rx, ry, w, h, a] of rects) if (x >= rx! && x < rx! + w! && y >= ry! && y < ry! + h!) v += a!;
      pixels[y * width + x] = Math.min(255, v);
    }
  }
  return { width, height, depth: 8, pixels };
}

describe.skipIf(missing !== null)('Harris ranking and angle against OpenCV ORB (nlevels=1)', () => {
  it('gives every corner inside ORB\'s edge the same Harris response and angle', async () => {
    const imgs = [synthetic(7), synthetic(8), ...(await frames(4))];
    const t = 20;
    const orb = runOpenCv(imgs.map((img) => ({ img, op: 'orb', threshold: t, nfeatures: 1 << 24, edge: EDGE })));
    imgs.forEach((img, i) => {
      const ours = detectCorners(img, { threshold: t, border: EDGE });
      expect(ours.count).toBeGreaterThan(20);
      expectLikeOrb(ours, orb[i]!, `image ${i} (${img.width}x${img.height})`);
    });
  });

  it('keeps the same N best as ORB (FAST-score preselection of 2N, then Harris, ties kept)', async () => {
    const imgs = [synthetic(9), ...(await frames(3))];
    const jobs = imgs.flatMap((img) => [25, 128, 500].map((n) => ({ img, n, t: 12 })));
    const orb = runOpenCv(jobs.map(({ img, n, t }) => ({ img, op: 'orb', threshold: t, nfeatures: n, edge: EDGE })));
    jobs.forEach(({ img, n, t }, i) => {
      const ours = detectCorners(img, { threshold: t, maxCorners: n, border: EDGE });
      expect(ours.count).toBeGreaterThanOrEqual(Math.min(n, orb[i]!.length));
      expectLikeOrb(ours, orb[i]!, `image ${img.width}x${img.height} N=${n}`);
      // Ranked best first.
      for (let k = 1; k < ours.count; k++) expect(ours.harris[k - 1]!).toBeGreaterThanOrEqual(ours.harris[k]!);
    });
  });
});
