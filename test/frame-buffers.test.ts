import { describe, expect, it } from 'vitest';
import { FrameBufferPool } from '../src/frame/frame-buffers.ts';

describe('FrameBufferPool', () => {
  it('gives a view of the size asked for and reuses a returned buffer that is large enough', () => {
    const pool = new FrameBufferPool(2);
    const a = pool.take(3_000_000);
    expect(a.length).toBe(3_000_000);
    expect(a.buffer.byteLength).toBeGreaterThanOrEqual(3_000_000);
    pool.give(a);
    const b = pool.take(2_500_000);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(2_500_000);
    // Too small for the next frame: a new buffer, the small one stays for later.
    pool.give(b);
    const c = pool.take(8_000_000);
    expect(c.buffer).not.toBe(a.buffer);
    expect(pool.idle).toBe(1);
  });

  it('keeps at most `keep` idle buffers and ignores a buffer given twice', () => {
    const pool = new FrameBufferPool(2);
    const views = [pool.take(10), pool.take(10), pool.take(10)];
    expect(new Set(views.map((v) => v.buffer)).size).toBe(3);
    pool.give(views[0]!);
    pool.give(views[0]!);
    expect(pool.idle).toBe(1);
    pool.give(views[1]!);
    pool.give(views[2]!);
    expect(pool.idle).toBe(2);
  });

  it('holds no more idle bytes than keepBytes', () => {
    const pool = new FrameBufferPool(4, 20 << 20);
    const big = [pool.take(8 << 20), pool.take(8 << 20), pool.take(8 << 20)];
    for (const v of big) pool.give(v);
    expect(pool.idle).toBe(2);
  });
});
