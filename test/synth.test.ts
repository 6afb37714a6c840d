// The synthetic renderer: pixel convention, ground truth vs geometry, orientations, defects, formats.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { fromCanonical, toCanonical } from '../src/frame/orientation.ts';
import { DEFAULT_RECIPE } from '../src/inspect/recipe.ts';
import { judge } from '../src/inspect/verdict.ts';
import { addSeparators, apexOf, layoutStack } from '../src/synth/cell.ts';
import { addNoise, jpegRoundTrip } from '../src/synth/detector.ts';
import { referenceBox } from '../src/synth/dataset.ts';
import { renderFrame, SPEC_MARGIN_MM, type SynthFrame } from '../src/synth/frame.ts';
import { Rng, frameSeed } from '../src/synth/prng.ts';
import { rasterize, stackFineTest, stackScene, type Affine } from '../src/synth/raster.ts';
import { place, shapeAttenuation } from '../src/synth/shapes.ts';
import { ORIENTATIONS, type Orientation } from '../src/types.ts';

const IDENTITY: Affine = { a: 1, b: 0, c: 0, d: 0, e: 1, f: 0 };
/** A clean frame: no noise, blur, clutter or JPEG, 16-bit, so pixels show the geometry. */
const CLEAN = { snr: Number.POSITIVE_INFINITY, blurSigma: 0, clutter: false, jpegQuality: 0, depth: 16 as const };

function centroid(t: Float32Array, w: number, h: number): [number, number] {
  let s = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const a = 1 - t[y * w + x]!;
      s += a;
      sx += a * x;
      sy += a * y;
    }
  }
  return [sx / s, sy / s];
}

describe('pixel convention (pixel centres at integers, (0,0) the centre of the top-left pixel)', () => {
  // A faint disc: 1 - exp(-mu c) is proportional to coverage c, so the centroid of darkness is the centroid of coverage.
  const disc = place({ kind: 'disc', cx: 20.3, cy: 17.8, r: 5.2, mu: 1e-4 });
  const scene = (u: number, v: number, w: number) => shapeAttenuation(disc, u, v, w);

  it.each([1, 4])('a disc rendered with %i samples per pixel side has its centroid at its geometric centre', (ss) => {
    const t = rasterize(48, 40, IDENTITY, scene, () => true, ss);
    const [x, y] = centroid(t, 48, 40);
    expect(Math.abs(x - 20.3)).toBeLessThan(0.01);
    expect(Math.abs(y - 17.8)).toBeLessThan(0.01);
  });

  it('coverage sums to the disc area', () => {
    const t = rasterize(48, 40, IDENTITY, scene, () => true, 4);
    let s = 0;
    for (const v of t) s += (1 - v) / 1e-4;
    expect(s).toBeCloseTo(Math.PI * 5.2 * 5.2, 0);
  });

  it('a half-plane edge at x = 10 leaves pixel 10 half covered (pixel 10 spans 9.5..10.5)', () => {
    const edge = place({ kind: 'halfplane', nx: -1, ny: 0, d: -10, mu: 1 }); // covered where x < 10
    const t = rasterize(20, 4, IDENTITY, (u, v, w) => shapeAttenuation(edge, u, v, w), () => true, 4);
    expect(t[9]).toBeCloseTo(Math.exp(-1), 5);
    expect(t[10]).toBeCloseTo((1 + Math.exp(-1)) / 2, 5);
    expect(t[11]).toBeCloseTo(1, 5);
  });
});

describe('keypoints land on the rendered tips', () => {
  it('every sheet ends at its apex: dark just inside, nothing beyond (no separators)', () => {
    const rng = new Rng(11);
    const stack = layoutStack(rng, { recipe: DEFAULT_RECIPE, pitch: 14, centreY: 150, tipX: 200 });
    // Separators continue past the tips by design; leave them out to see the sheets' own ends.
    addSeparators(rng, stack);
    stack.separators.forEach((s) => (s.mu = 0));
    const t = rasterize(320, 300, IDENTITY, stackScene(stack), stackFineTest(stack), 4);
    const att = (x: number, y: number) => -Math.log(t[y * 320 + x]!);
    for (const s of stack.sheets) {
      const [kx, ky] = apexOf(s);
      // The pixel holding the apex's row: beyond the apex pixel nothing of the sheet remains...
      const row = Math.round(ky);
      for (let x = Math.floor(kx + 0.5) + 1; x < Math.floor(kx + 0.5) + 6; x++) expect(att(x, row)).toBeLessThan(1e-6);
      // ...and along the last pixels before it the sheet's attenuation rises toward its full value.
      let inside = 0;
      for (let x = Math.round(kx) - 3; x <= Math.round(kx) - 1; x++) inside = Math.max(inside, att(x, row));
      expect(inside).toBeGreaterThan(0.1 * s.mu);
    }
  });
});

describe('renderFrame', () => {
  it.each(['tips-right', 'tips-down'] as const)('puts each rendered anode end at its keypoint (%s, rotated 4 degrees)', (o) => {
    const size = 400;
    const theta = (4 * Math.PI) / 180;
    const f = renderFrame({ ...CLEAN, seed: 8, width: size, height: size, orientation: o, rotationDeg: 4, defectRate: 0 });
    const px = f.image.pixels;
    let max = 0;
    for (const v of px) max = Math.max(max, v);
    const at = (x: number, y: number) => {
      // bilinear, pixel centres at integers
      const x0 = Math.floor(x);
      const y0 = Math.floor(y);
      const fx = x - x0;
      const fy = y - y0;
      const p = (xx: number, yy: number) => px[yy * size + xx]!;
      return (p(x0, y0) * (1 - fx) + p(x0 + 1, y0) * fx) * (1 - fy) + (p(x0, y0 + 1) * (1 - fx) + p(x0 + 1, y0 + 1) * fx) * fy;
    };
    let ends = 0;
    let anodes = 0;
    for (let k = 0; k < DEFAULT_RECIPE.keypoints.length; k += 2) {
      anodes++;
      const [xc, yc] = toCanonical(f.keypoints[3 * k]!, f.keypoints[3 * k + 1]!, size, size, o);
      // Along the sheet (canonical +x turned by the rotation): 2 px inside, 3 px beyond the apex.
      const inside = fromCanonical(xc - 2 * Math.cos(theta), yc - 2 * Math.sin(theta), size, size, o);
      const beyond = fromCanonical(xc + 3 * Math.cos(theta), yc + 3 * Math.sin(theta), size, size, o);
      if ((at(...beyond) - at(...inside)) / max > 0.02) ends++;
    }
    // Bent ends and separators crossing the line can spoil a few; a wrong transform spoils most.
    expect(ends / anodes).toBeGreaterThanOrEqual(0.9);
  });

  it('is deterministic by seed', () => {
    const a = renderFrame({ seed: 42, width: 320, height: 300, defectRate: 0.5 });
    const b = renderFrame({ seed: 42, width: 320, height: 300, defectRate: 0.5 });
    const c = renderFrame({ seed: 43, width: 320, height: 300, defectRate: 0.5 });
    expect(Buffer.from(a.image.pixels.buffer).equals(Buffer.from(b.image.pixels.buffer))).toBe(true);
    expect(Array.from(a.keypoints)).toEqual(Array.from(b.keypoints));
    expect(Array.from(a.keypoints)).not.toEqual(Array.from(c.keypoints));
    expect(frameSeed(1, 0)).not.toBe(frameSeed(1, 1));
    expect(frameSeed(1, 5)).toBe(frameSeed(1, 5));
  });

  it('maps pixels and ground truth through the same orientation transform', () => {
    const size = 300;
    const base = renderFrame({ ...CLEAN, seed: 5, width: size, height: size, orientation: 'tips-right', rotationDeg: 3, defectRate: 0 });
    for (const o of ORIENTATIONS.filter((q) => q !== 'tips-right') as Orientation[]) {
      const f = renderFrame({ ...CLEAN, seed: 5, width: size, height: size, orientation: o, rotationDeg: 3, defectRate: 0 });
      expect(f.orientation).toBe(o);
      for (let k = 0; k < DEFAULT_RECIPE.keypoints.length; k++) {
        const [xc, yc] = toCanonical(f.keypoints[3 * k]!, f.keypoints[3 * k + 1]!, size, size, o);
        expect(xc).toBeCloseTo(base.keypoints[3 * k]!, 6);
        expect(yc).toBeCloseTo(base.keypoints[3 * k + 1]!, 6);
      }
      let maxDiff = 0;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const [xc, yc] = toCanonical(x, y, size, size, o);
          maxDiff = Math.max(maxDiff, Math.abs(f.image.pixels[y * size + x]! - base.image.pixels[yc * size + xc]!));
        }
      }
      expect(maxDiff).toBeLessThanOrEqual(2); // rounding of floating-point sums only
    }
  });

  it('labels defects consistently with the geometry (judge() on the keypoints gives the expected verdict)', () => {
    const verdicts = new Set<string>();
    const defects = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const f = renderFrame({ ...CLEAN, seed: frameSeed(9, i), width: 300, height: 300, defectRate: 0.5 });
      const { width, height } = f.image;
      const poles = DEFAULT_RECIPE.keypoints.map((_, k) => {
        const v = f.keypoints[3 * k + 2]!;
        if (v === 0) {
          expect(f.keypoints[3 * k]).toBe(0);
          expect(f.keypoints[3 * k + 1]).toBe(0);
          return { x: Number.NaN, conf: 0 };
        }
        return { x: toCanonical(f.keypoints[3 * k]!, f.keypoints[3 * k + 1]!, width, height, f.orientation)[0], conf: 1 };
      });
      const j = judge(poles, { ...DEFAULT_RECIPE, pixelPitchMm: f.pixelPitchMm });
      expect(j.verdict).toBe(f.expectedVerdict);
      expect(j.reasons).toEqual(f.defects);
      for (const mm of j.overhangMm) {
        if (mm === null) continue;
        // Every overhang keeps a resolvable distance from the limits, inside or outside.
        expect(Math.abs(mm - DEFAULT_RECIPE.overhangMinMm)).toBeGreaterThanOrEqual(SPEC_MARGIN_MM - 1e-9);
        expect(Math.abs(mm - DEFAULT_RECIPE.overhangMaxMm)).toBeGreaterThanOrEqual(SPEC_MARGIN_MM - 1e-9);
      }
      verdicts.add(f.expectedVerdict);
      f.defects.forEach((d) => defects.add(d));
      if (f.expectedVerdict === 'PASS') expect(f.defects).toEqual([]);
    }
    expect([...verdicts].sort()).toEqual(['FAIL', 'PASS']);
    expect([...defects].sort()).toEqual(['OVERHANG_HIGH', 'OVERHANG_LOW', 'POLE_MISSING']);
  });

  it('writes 8-bit and 16-bit frames of the requested size, keypoints inside the frame', () => {
    const f8 = renderFrame({ seed: 3, width: 400, height: 280, depth: 8 });
    const f16 = renderFrame({ seed: 3, width: 400, height: 280, depth: 16 });
    expect(f8.image.pixels).toBeInstanceOf(Uint8Array);
    expect(f16.image.pixels).toBeInstanceOf(Uint16Array);
    expect([f8.image.width, f8.image.height, f8.image.depth]).toEqual([400, 280, 8]);
    expect(Math.max(...f16.image.pixels)).toBeGreaterThan(255);
    for (const f of [f8, f16]) {
      for (let k = 0; k < f.keypoints.length; k += 3) {
        if (f.keypoints[k + 2] === 0) continue;
        expect(f.keypoints[k]).toBeGreaterThanOrEqual(0);
        expect(f.keypoints[k]).toBeLessThanOrEqual(399);
        expect(f.keypoints[k + 1]).toBeGreaterThanOrEqual(0);
        expect(f.keypoints[k + 1]).toBeLessThanOrEqual(279);
      }
    }
  });
});

describe('reference box (SPEC "Datasets")', () => {
  it('is the tight box of labelled keypoints grown by 0.1 * max(w, h) per side', () => {
    // keypoints (10, 20), (50, 30), a missing one at (0, 0) that must not count
    expect(referenceBox([10, 20, 2, 0, 0, 0, 50, 30, 2])).toEqual([6, 16, 48, 18]);
  });
});

describe('8-bit JPEG export', () => {
  it("matches libjpeg's lossy step (sharp encode + decode) at the same quality", async () => {
    const w = 64;
    const h = 48;
    const px = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = Math.round(128 + 60 * Math.sin(x / 3) + 30 * Math.cos(y / 5) + ((x * 7 + y * 13) % 11));
    for (const q of [50, 90]) {
      const mine = px.slice();
      jpegRoundTrip(mine, w, h, q);
      const jpg = await sharp(px, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').jpeg({ quality: q }).toBuffer();
      const ref = await sharp(jpg).extractChannel(0).raw().toBuffer();
      let diff = 0;
      let lossy = 0;
      for (let i = 0; i < w * h; i++) {
        diff += Math.abs(mine[i]! - ref[i]!);
        lossy += Math.abs(px[i]! - ref[i]!);
      }
      expect(diff / (w * h)).toBeLessThan(0.3); // IDCT rounding differences only
      expect(lossy / (w * h)).toBeGreaterThan(1); // and JPEG did change the frame
    }
  });
});

describe('renderFrame options', () => {
  it.each([
    [{ seed: -1 }, /seed/],
    [{ seed: 1.5 }, /seed/],
    [{ seed: 1, width: 100 }, /width/],
    [{ seed: 1, height: 9000 }, /height/],
    [{ seed: 1, defectRate: 2 }, /defectRate/],
    [{ seed: 1, supersample: 0 }, /supersample/],
    [{ seed: 1, jpegQuality: 101 }, /jpegQuality/],
    [{ seed: 1, snr: 0 }, /snr/],
    [{ seed: 1, cathodeScatterPx: [3, 1] as [number, number] }, /cathodeScatterPx/],
    [{ seed: 1, cathodeThickness: [0.05, 1] as [number, number] }, /cathodeThickness/],
    [{ seed: 1, cathodeContrast: [2, 1] as [number, number] }, /cathodeContrast/],
    [{ seed: 1, hiddenMissing: 1.5 }, /hiddenMissing/],
  ])('refuses %j naming the option', (opts, name) => {
    expect(() => renderFrame(opts)).toThrow(name);
  });

  it('keeps every pole inside frames of any shape', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 12; i++) {
      const width = rng.int(256, 420);
      const height = rng.int(256, 420);
      // Geometry only matters here: no noise or blur keeps the frames cheap.
      const f = renderFrame({ ...CLEAN, seed: frameSeed(21, i), width, height, defectRate: 0.5 });
      for (let k = 0; k < f.keypoints.length; k += 3) {
        if (f.keypoints[k + 2] === 0) continue;
        expect(f.keypoints[k]).toBeGreaterThanOrEqual(4);
        expect(f.keypoints[k]).toBeLessThanOrEqual(width - 5);
        expect(f.keypoints[k + 1]).toBeGreaterThanOrEqual(4);
        expect(f.keypoints[k + 1]).toBeLessThanOrEqual(height - 5);
      }
    }
  });

  it('cathodeScatterPx spreads the overhangs of a PASS frame across the spec; its default is the straight cathode line', () => {
    const spread = (scatter?: [number, number]) => {
      const sds: number[] = [];
      for (let i = 0; i < 8; i++) {
        const f = renderFrame({ ...CLEAN, seed: frameSeed(31, i), width: 600, height: 600, defectRate: 0, cathodeScatterPx: scatter });
        expect(f.expectedVerdict).toBe('PASS');
        const ov = f.overhangMm.filter((v): v is number => v !== null);
        for (const v of ov) {
          expect(v).toBeGreaterThanOrEqual(DEFAULT_RECIPE.overhangMinMm + SPEC_MARGIN_MM - 1e-9);
          expect(v).toBeLessThanOrEqual(DEFAULT_RECIPE.overhangMaxMm - SPEC_MARGIN_MM + 1e-9);
        }
        const mean = ov.reduce((a, b) => a + b, 0) / ov.length;
        sds.push(Math.sqrt(ov.reduce((a, b) => a + (b - mean) ** 2, 0) / ov.length));
      }
      return sds.reduce((a, b) => a + b, 0) / sds.length;
    };
    const straight = spread();
    const wide = spread([8, 12]);
    // 8-12 px at 0.02 mm/px is 0.16-0.24 mm; the default line scatters 0.15-1.5 px plus the anodes'.
    expect(wide).toBeGreaterThan(0.12);
    expect(wide).toBeGreaterThan(2 * straight);
    // The default is the range it names: the same frame either way.
    const a = renderFrame({ ...CLEAN, seed: 41, width: 600, height: 600 });
    const b = renderFrame({ ...CLEAN, seed: 41, width: 600, height: 600, cathodeScatterPx: [0.15, 1.5] });
    expect(Array.from(b.keypoints)).toEqual(Array.from(a.keypoints));
  });

  it('cathodeThickness and cathodeContrast lighten the overlap zone without moving the anodes', () => {
    // Mean of the overlap zone (behind every cathode tip, between the outer anodes) in a clean frame.
    const zone = (f: SynthFrame) => {
      const k = f.keypoints;
      const { width, pixels } = f.image;
      let tipLine = Infinity;
      for (let i = 1; i < 31; i += 2) tipLine = Math.min(tipLine, k[3 * i]!);
      let sum = 0;
      let n = 0;
      for (let y = Math.ceil(k[1]!); y <= Math.floor(k[3 * 30 + 1]!); y++) {
        for (let x = Math.floor(tipLine - 40); x < tipLine - 10; x++, n++) sum += pixels[y * width + x]!;
      }
      return sum / n;
    };
    const same = { ...CLEAN, width: 700, height: 700, orientation: 'tips-right' as const, rotationDeg: 0, defectRate: 0 };
    for (const seed of [51, 52, 53]) {
      // Equal bounds still draw, so both frames share every other draw.
      const full = renderFrame({ ...same, seed, cathodeThickness: [1, 1], cathodeContrast: [2, 2] });
      const faint = renderFrame({ ...same, seed, cathodeThickness: [0.25, 0.25], cathodeContrast: [0.4, 0.4] });
      for (let i = 0; i < 31; i += 2) expect(faint.keypoints.slice(3 * i, 3 * i + 3)).toEqual(full.keypoints.slice(3 * i, 3 * i + 3));
      expect(zone(faint)).toBeGreaterThan(1.3 * zone(full));
    }
  });

  it('hiddenMissing keeps the overlap zone dark across a missing cathode; without it the zone shows a gap', () => {
    const same = { ...CLEAN, width: 500, height: 500, orientation: 'tips-right' as const, rotationDeg: 0, defectRate: 1 };
    // Seeds whose FAIL frame lacks a cathode between two anodes, absent or torn back (not folded).
    for (const seed of [11, 19, 34]) {
      // A tiny share draws like 1 but hides nothing: the two frames differ only there.
      const gap = renderFrame({ ...same, seed, hiddenMissing: 1e-12 });
      const hidden = renderFrame({ ...same, seed, hiddenMissing: 1 });
      const k = gap.keypoints;
      const c = [...Array(15).keys()].map((j) => 2 * j + 1).find((i) => k[3 * i + 2] === 0 && k[3 * (i - 1) + 2] === 2 && k[3 * (i + 1) + 2] === 2);
      expect(c).toBeDefined();
      expect(Array.from(hidden.keypoints)).toEqual(Array.from(k));
      let tipLine = Infinity;
      for (let i = 1; i < 31; i += 2) if (k[3 * i + 2] === 2) tipLine = Math.min(tipLine, k[3 * i]!);
      const y = Math.round((k[3 * (c! - 1) + 1]! + k[3 * (c! + 1) + 1]!) / 2);
      const mean = (f: SynthFrame) => {
        let sum = 0;
        for (let x = Math.floor(tipLine - 25); x < tipLine - 5; x++) sum += f.image.pixels[y * f.image.width + x]!;
        return sum / 20;
      };
      expect(mean(hidden)).toBeLessThan(0.8 * mean(gap));
      expect(hidden.expectedVerdict).toBe('FAIL');
      expect(hidden.defects).toContain('POLE_MISSING');
    }
  });

  it('reports what it drew: the options given, and the anode pitch its keypoints show', () => {
    const f = renderFrame({ seed: 77, width: 600, height: 600, blurSigma: 1.25, snr: 60, rotationDeg: -2.5, depth: 16, jpegQuality: 0 });
    expect(f.drawn).toMatchObject({ blurSigma: 1.25, snr: 60, depth: 16 });
    expect(f.drawn.rotationDeg).toBeCloseTo(-2.5, 12);
    // The tapered ends: from half a pixel (blunt) up to needles several pitches long.
    expect(f.drawn.capPx).toBeGreaterThanOrEqual(0.5);
    expect(f.drawn.capPx).toBeLessThan(200);
    // Drawn pitches, not options: consecutive anodes (even keypoints) sit one pitch apart.
    for (const seed of [5, 6, 7, 8]) {
      const g = renderFrame({ ...CLEAN, seed, width: 900, height: 900, defectRate: 0 });
      expect(g.drawn.pitchPx).toBeGreaterThanOrEqual(8);
      expect(g.drawn.pitchPx).toBeLessThanOrEqual(30);
      const gaps: number[] = [];
      for (let a = 0; a + 6 < g.keypoints.length; a += 6) {
        gaps.push(Math.hypot(g.keypoints[a + 6]! - g.keypoints[a]!, g.keypoints[a + 7]! - g.keypoints[a + 1]!));
      }
      gaps.sort((p, q) => p - q);
      expect(Math.abs(gaps[gaps.length >> 1]! - g.drawn.pitchPx)).toBeLessThan(1.5);
    }
  });
});

describe('detector noise', () => {
  const stats = (a: Float32Array) => {
    let m = 0;
    for (const v of a) m += v;
    m /= a.length;
    let s = 0;
    for (const v of a) s += (v - m) ** 2;
    return [m, Math.sqrt(s / a.length)] as const;
  };

  it('gives the open field the requested SNR (shot noise) plus read noise', () => {
    const snr = 50;
    const [m, sd] = stats(addNoise(new Float32Array(200_000).fill(1), snr * snr, 10, new Rng(1)));
    expect(m).toBeCloseTo(2500, -1);
    expect(sd).toBeCloseTo(Math.sqrt(2500 + 100), 0); // 51.0
  });

  it('is Poisson where few photons arrive (variance = mean)', () => {
    const [m, sd] = stats(addNoise(new Float32Array(200_000).fill(0.004), 1000, 0, new Rng(2)));
    expect(m).toBeCloseTo(4, 1);
    expect(sd * sd).toBeCloseTo(4, 1);
  });
});
