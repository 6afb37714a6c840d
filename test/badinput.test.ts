// Bad input, decode level: every frame of the corpus is refused with the right typed reason,
// quickly and without touching memory its header merely claims.
import { describe, expect, it } from 'vitest';
import { FrameError } from '../src/errors.ts';
import { decodeFrame } from '../src/frame/decode.ts';
import { badFrames, validFrames } from './helpers/bad-frames.ts';

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
