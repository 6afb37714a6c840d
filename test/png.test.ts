// The addon's grey PNG path (src/frame/png.ts, native/png.cc): every PNG row filter at 8 and 16
// bits, chunking, and damaged files, against PNGs written here byte by byte.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameError } from '../src/errors.ts';
import { decodeFrame, encodePng } from '../src/frame/decode.ts';
import { greyPngWorkBytes, nativePng } from '../src/frame/png.ts';
import { greyPngLayout } from '../src/frame/png-format.ts';
import { ADDON_FILE, native } from '../src/native.ts';
import { renderFrame } from '../src/synth/frame.ts';
import type { Image } from '../src/types.ts';
import { pngClaiming } from './helpers/bad-frames.ts';
import { pngWithFilters } from './helpers/png-writer.ts';

function testImage(width: number, height: number, depth: 8 | 16, seed: number): Image {
  const pixels = depth === 8 ? new Uint8Array(width * height) : new Uint16Array(width * height);
  let s = seed;
  const max = depth === 8 ? 255 : 65535;
  for (let i = 0; i < pixels.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    // Smooth structure plus noise, and the extremes, so every filter's wrap-around is exercised.
    const x = i % width, y = Math.floor(i / width);
    pixels[i] = i % 97 === 0 ? max : i % 89 === 0 ? 0 : Math.min(max, Math.round(((x * 7 + y * 3) % 200) * (max / 255)) + (s >>> 24));
  }
  return { width, height, depth, pixels };
}

async function decodeError(bytes: Uint8Array): Promise<FrameError> {
  try {
    await decodeFrame(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return err as FrameError;
  }
  throw new Error('decoded without an error');
}

describe.skipIf(!nativePng)('grey PNG through the addon (built with libdeflate)', () => {
  for (const depth of [8, 16] as const) {
    it(`undoes every row filter (${depth}-bit): rows cycle through 0-4, 3 IDAT chunks`, async () => {
      const img = testImage(300, 260, depth, depth);
      const png = pngWithFilters(img, (y) => y % 5, 3);
      expect(greyPngLayout(png)?.idat.length).toBe(6);
      const out = await decodeFrame(png);
      expect([out.width, out.height, out.depth]).toEqual([300, 260, depth]);
      expect(out.pixels).toBeInstanceOf(depth === 8 ? Uint8Array : Uint16Array);
      expect(Buffer.from(out.pixels.buffer, out.pixels.byteOffset, out.pixels.byteLength).equals(Buffer.from(img.pixels.buffer))).toBe(true);
    });
  }

  it('undoes each filter on every row, at widths around the 16-byte blocks of the Sub prefix sum', async () => {
    // Rows of one filter each, so a filter's carry across blocks and its tail both matter; widths
    // 256-272 (the smallest frames) give every row length modulo 16 at both depths.
    for (const depth of [8, 16] as const) {
      for (let width = 256; width <= 272; width++) {
        const img = testImage(width, 256, depth, width * depth);
        for (const f of [1, 2, 3, 4]) {
          const out = await decodeFrame(pngWithFilters(img, () => f));
          const same = Buffer.from(out.pixels.buffer, out.pixels.byteOffset, out.pixels.byteLength).equals(Buffer.from(img.pixels.buffer));
          expect(same, `filter ${f}, ${depth}-bit, width ${width}`).toBe(true);
        }
      }
    }
  });

  it('gives the same samples with the scalar row filters an ARM build runs (XPOLE_SIMD=generic)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xpole-png-scalar-'));
    const cases = [8, 16].flatMap((depth) =>
      [1, 2, 3, 4].map((f) => {
        const img = testImage(263, 256, depth as 8 | 16, f + depth);
        const png = pngWithFilters(img, () => f);
        const file = path.join(dir, `f${f}-${depth}`);
        writeFileSync(`${file}.png`, png);
        writeFileSync(`${file}.raw`, img.pixels);
        const { idat, width, height } = greyPngLayout(png)!;
        return { file, idat: Array.from(idat), width, height, depth };
      }),
    );
    writeFileSync(path.join(dir, 'cases.json'), JSON.stringify(cases));
    const script = `const m = require(${JSON.stringify(ADDON_FILE)}); const fs = require('fs');
      const cases = JSON.parse(fs.readFileSync(${JSON.stringify(path.join(dir, 'cases.json'))}, 'utf8'));
      Promise.all(cases.map(async (c) => {
        const px = await m.decodeGreyPngAsync(fs.readFileSync(c.file + '.png'), Uint32Array.from(c.idat), c.width, c.height, c.depth);
        return Buffer.from(px.buffer, px.byteOffset, px.byteLength).equals(fs.readFileSync(c.file + '.raw')); }))
      .then((same) => console.log(JSON.stringify(same)));`;
    for (const simd of ['generic', '']) {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, XPOLE_SIMD: simd } });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout), `XPOLE_SIMD=${simd}`).toEqual(Array(8).fill(true));
    }
  });

  it('decodes what sharp writes (a synthetic 16-bit frame) to the same samples', async () => {
    const f = renderFrame({ seed: 11, width: 640, height: 512, depth: 16 });
    const out = await decodeFrame(await encodePng(f.image));
    expect(out.pixels).toEqual(f.image.pixels);
  });

  it('names what is damaged: truncated, corrupt data, bad checksum, unknown filter, too much data', async () => {
    const img = testImage(300, 300, 16, 3);
    const good = pngWithFilters(img, (y) => y % 5);
    expect((await decodeError(good.subarray(0, good.length - 2000))).message).toMatch(/truncated/);
    const corrupt = Buffer.from(good);
    for (let i = 200; i < 260; i++) corrupt[i] ^= 0x5a;
    const e1 = await decodeError(corrupt);
    expect(e1.reason).toBe('DECODE_ERROR');
    expect(e1.message).toMatch(/IDAT|corrupt/);
    const badCrc = Buffer.from(good);
    badCrc[30] ^= 1;
    expect((await decodeError(badCrc)).message).toMatch(/IHDR.*checksum/);
    const e2 = await decodeError(pngWithFilters(img, (y) => (y === 17 ? 7 : 0)));
    expect(e2.message).toMatch(/row 17 has filter type 7/);
    // The header says fewer rows than the data holds: refused, not silently cropped.
    expect((await decodeError(pngWithFilters(img, () => 0, 1, { height: 260 }))).message).toMatch(/more than/);
    // ...or more rows than it holds.
    expect((await decodeError(pngWithFilters(img, () => 0, 1, { height: 340 }))).message).toMatch(/truncated/);
  });

  it('refuses a header claiming 100000 x 100000 before inflating anything', async () => {
    const e = await decodeError(pngClaiming(100000, 100000, 8));
    expect(e.reason).toBe('FRAME_TOO_LARGE');
  });

  it('decodes into a lent buffer, again and again: the same samples as a fresh one, viewing the lent memory', async () => {
    const frames = [11, 12].map((seed) => renderFrame({ seed, width: 400, height: 300, depth: 16 }).image);
    const pngs = await Promise.all(frames.map((f) => encodePng(f)));
    const lent = new ArrayBuffer(greyPngWorkBytes({ width: 400, height: 300, depth: 16 }));
    for (const i of [0, 1, 0]) {
      const out = await decodeFrame(pngs[i]!, undefined, (n) => {
        expect(n).toBe(lent.byteLength);
        return lent;
      });
      expect(out.pixels.buffer).toBe(lent);
      expect(out.pixels).toEqual(frames[i]!.pixels);
    }
  });

  it('in place, keeps the file alive when the caller drops it during the decode', async () => {
    // Without the addon's reference, the collected file's memory would be reused by the garbage
    // allocated below while the pool still inflates from it.
    const img = testImage(1600, 1200, 16, 9);
    const png = pngWithFilters(img, (y) => y % 5, 40);
    const layout = greyPngLayout(png)!;
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'xpole-png-')), 'held.png');
    writeFileSync(file, png);
    const script = `const m = require(${JSON.stringify(ADDON_FILE)}); const bytes = require('fs').readFileSync(${JSON.stringify(file)});
      const idat = Uint32Array.from(${JSON.stringify([...layout.idat])}), sum = (p) => p.reduce((a, v) => a + v, 0);
      const runs = [];
      for (let i = 0; i < 8; i++) runs.push(m.decodeGreyPngAsync(new Uint8Array(bytes), idat, 1600, 1200, 16, undefined, true).then(sum));
      for (let i = 0; i < 8; i++) { globalThis.gc(); new Uint8Array(bytes.length).fill(255); }
      Promise.all(runs).then((r) => console.log(JSON.stringify(r)), (e) => console.log(JSON.stringify(e.message)));`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    let want = 0;
    for (const v of img.pixels) want += v;
    expect(JSON.parse(r.stdout)).toEqual(Array(8).fill(want));
  });

  it('the addon checks its own arguments', () => {
    const png = pngWithFilters(testImage(256, 256, 8, 5), () => 0);
    const layout = greyPngLayout(png)!;
    expect(() => native.decodeGreyPngAsync!(png, layout.idat, 256, 256, 8, new ArrayBuffer(256 * 257 - 1))).toThrow(/out holds 65791 bytes, the decode needs 65792/);
    expect(() => native.decodeGreyPngAsync!(png, layout.idat, 256, 256, 8, new Uint8Array(70000) as unknown as ArrayBuffer)).toThrow(/out must be an ArrayBuffer/);
    expect(() => native.decodeGreyPngAsync!(png, Uint32Array.of(0, png.length + 1), 256, 256, 8)).toThrow(/outside the/);
    expect(() => native.decodeGreyPngAsync!(png, Uint32Array.of(0), 256, 256, 8)).toThrow(/pairs/);
    expect(() => native.decodeGreyPngAsync!(png, Uint32Array.of(0, 1), 256, 256, 12 as 8)).toThrow(/depth/);
  });
});

it('leaves non-grey or sub-byte PNGs to sharp (no layout)', async () => {
  const rgb = await (await import('sharp')).default({ create: { width: 300, height: 300, channels: 3, background: { r: 90, g: 90, b: 90 } } }).png().toBuffer();
  expect(greyPngLayout(rgb)).toBeNull();
  const out = await decodeFrame(rgb);
  expect([out.width, out.depth, out.pixels[0]]).toEqual([300, 8, 90]);
});
