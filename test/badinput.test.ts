// Bad input: every frame of the corpus is refused with the right typed reason, by decodeFrame
// (quickly, without allocating what a header merely claims) and by pipeline.judge (one ERROR
// result, and the next good frame is judged exactly as before).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameError } from '../src/errors.ts';
import { decodeFrame, encodePng } from '../src/frame/decode.ts';
import { Pipeline } from '../src/inspect/pipeline.ts';
import { DEFAULT_RECIPE } from '../src/inspect/recipe.ts';
import { renderFrame } from '../src/synth/frame.ts';
import type { Result } from '../src/types.ts';
import { badFrames, validFrames, type BadFrame } from './helpers/bad-frames.ts';

// The fixture model (random weights): error paths and "the next frame is judged as before" do not need a trained one.
const TINY_MODEL = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/tiny-model.onnx');

const corpus = await badFrames();

describe('decodeFrame on the bad-input corpus', () => {
  it.each(corpus.filter((f) => f.decode !== null).map((f) => [f.name, f] as const))('%s is refused', async (_name, f) => {
    const rssBefore = process.memoryUsage().rss;
    const err = await decodeFrame(f.bytes).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, f.why).toBeInstanceOf(FrameError);
    expect((err as FrameError).reason, `${f.why}: ${(err as Error).message}`).toBe(f.decode);
    expect((err as Error).message.length).toBeGreaterThan(10);
    // A bomb must be refused on its header: no allocation of the claimed size (20 GB for 100000² x 16 bit).
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 2 ** 20);
  });

  it.each(corpus.filter((f) => f.decode === null).map((f) => [f.name, f] as const))('%s decodes (a later stage must refuse it)', async (_name, f) => {
    const img = await decodeFrame(f.bytes);
    expect(img.depth).toBe(16);
    expect(img.pixels.length).toBe(img.width * img.height);
  });

  it('decodes each valid container exactly after the bad ones', async () => {
    for (const v of await validFrames()) {
      const img = await decodeFrame(v.bytes);
      expect([v.name, img.width, img.height, img.depth]).toEqual([v.name, v.width, v.height, v.depth]);
    }
  });

  it('refuses a truncated 16-bit TIFF instead of filling the missing rows with zeros', async () => {
    const f = corpus.find((c) => c.name === 'truncated.tif')!;
    await expect(decodeFrame(f.bytes)).rejects.toMatchObject({ reason: 'DECODE_ERROR', message: expect.stringMatching(/scanline|truncated|damaged/) });
  });
});

// ---------------------------------------------------------------- the pipeline on the same corpus

/**
 * Frames the pipeline does not yet refuse as the corpus expects. Each still must give exactly one
 * result and never PASS (a frame with no cell passing would be an escape). Listed in
 * docs/robustness.md for their owners.
 */
const KNOWN_GAPS: Record<string, string> = {
  // The ROI stage finds a "stack" in uniform noise (thousands of corners); the shipped model then sees
  // too few poles and the frame is ROI_NOT_FOUND (test/pipeline.test.ts). This corpus runs on the
  // random-weight fixture model, which is confident everywhere.
  'noise.png': 'the fixture model is confident everywhere, so the stack gate does not fire (the shipped model: ROI_NOT_FOUND)',
};

describe('pipeline.judge on the bad-input corpus', () => {
  let pipeline: Pipeline;
  let good: { name: string; bytes: Uint8Array };
  let reference: Result;
  const ids = (seq: number) => ({ id: `bad-${seq}`, seq, ts: '2026-01-01T00:00:00.000Z' });
  const stable = (r: Result) => ({ verdict: r.verdict, reasons: r.reasons, poles: r.poles, roi: r.roi, overhangMm: r.overhangMm });

  beforeAll(async () => {
    pipeline = await Pipeline.load({ modelPath: TINY_MODEL, providers: ['cpu'], intraOpNumThreads: 1, recipe: { ...DEFAULT_RECIPE, minConfidence: 0.3 } });
    const f = renderFrame({ seed: 3, width: 1000, height: 1000, depth: 16, orientation: 'tips-right' });
    good = { name: 'good.png', bytes: await encodePng(f.image) };
    reference = await pipeline.judge({ frame: good.name, cellId: 'c', bytes: good.bytes }, ids(0));
  });
  afterAll(() => pipeline?.close());

  it('judges the good frame (PASS or FAIL, not ERROR) before any bad one', () => {
    expect(reference.verdict).not.toBe('ERROR');
  });

  it.each(corpus.map((f) => [f.name, f] as const))('%s: one ERROR result with its reason, then the next good frame as before', async (_n, f) => {
    const r = await pipeline.judge({ frame: f.name, cellId: null, bytes: f.bytes }, ids(1));
    expect(r.frame).toBe(f.name);
    expect(r.id).toBe('bad-1');
    if (KNOWN_GAPS[f.name]) {
      console.warn(`known gap, ${f.name}: ${r.verdict} ${r.reasons.join(',')} (${KNOWN_GAPS[f.name]})`);
      expect(r.verdict).not.toBe('PASS');
    } else {
      expect([r.verdict, r.reasons], `${f.why}: ${r.error}`).toEqual(['ERROR', [f.judge]]);
      expect(r.error).toBeTruthy();
      expect(r.poles).toEqual([]);
      expect(r.timingsMs.total).toBeGreaterThanOrEqual(0);
    }
    const next = await pipeline.judge({ frame: good.name, cellId: 'c', bytes: good.bytes }, ids(2));
    expect(stable(next)).toEqual(stable(reference));
  });

  it('judges the whole corpus interleaved with good frames, two in flight, one result each', async () => {
    const inputs = corpus.flatMap((f) => [f, { ...f, name: good.name, bytes: good.bytes }]);
    const results: Result[] = [];
    // Two in flight, as the daemon keeps them.
    for (let i = 0; i < inputs.length; i += 2) {
      const pair = inputs.slice(i, i + 2);
      results.push(...(await Promise.all(pair.map((f, k) => pipeline.judge({ frame: f.name, cellId: null, bytes: f.bytes }, ids(10 + i + k))))));
    }
    expect(results.map((r) => r.seq)).toEqual(inputs.map((_, i) => 10 + i));
    results.forEach((r, i) => {
      if (inputs[i]!.name === good.name) expect(stable(r)).toEqual(stable(reference));
      else if (!KNOWN_GAPS[inputs[i]!.name]) expect(r.reasons).toEqual([(inputs[i] as BadFrame).judge]);
    });
  });
});
