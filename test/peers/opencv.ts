// Runs test/peers/opencv_fast.py (Debian's python3-opencv) on 8-bit images written to a temp dir.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prng } from '../helpers/prng.ts';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'opencv_fast.py');

/** Why OpenCV cannot be the judge here, or null when it can. */
export function opencvMissing(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import cv2, numpy'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} cannot run: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} cannot import cv2 (install python3-opencv): ${r.stderr.trim().split('\n').pop()}`;
  return null;
}

export interface PeerImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

export type PeerJob =
  | { img: PeerImage; op: 'fast'; threshold: number }
  | { img: PeerImage; op: 'orb'; threshold: number; nfeatures: number; edge: number };

/** One list per job of [x, y, response, angle]. */
export function runOpenCv(jobs: PeerJob[]): number[][][] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xpole-peer-'));
  try {
    const files = new Map<PeerImage, string>();
    const spec = jobs.map((j) => {
      let file = files.get(j.img);
      if (!file) {
        file = path.join(dir, `${files.size}.raw`);
        writeFileSync(file, j.img.pixels);
        files.set(j.img, file);
      }
      const { img, ...rest } = j;
      return { ...rest, file, width: img.width, height: img.height };
    });
    const jobsFile = path.join(dir, 'jobs.json');
    writeFileSync(jobsFile, JSON.stringify(spec));
    const r = spawnSync(PYTHON, [SCRIPT, jobsFile], { encoding: 'utf8', maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`opencv peer failed (${r.status}): ${r.stderr}`);
    return (JSON.parse(r.stdout) as { kp: number[][] }[]).map((e) => e.kp);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
export { prng as rng };
