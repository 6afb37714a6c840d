// Frame buffers reused from frame to frame: the hot folder reads files into them and the pipeline
// decodes grey PNG frames into them. A fresh 5-8 MB buffer for every frame costs twice: the
// kernel maps and zero-fills its pages on first touch, and V8 answers the external memory with
// major collections (0.45 a frame in process). Reusing the file buffers took a third off the
// daemon's CPU a frame on 2048² TIFF, the pixel buffers another 7% on PNG (docs/robustness.md,
// tenth session). A buffer goes back only through give(), after the last stage that reads it.

const GRAIN = 1 << 20;

export class FrameBufferPool {
  private readonly free: ArrayBuffer[] = [];

  /**
   * `keep`: how many idle buffers to hold on to; `keepBytes`: and how many bytes at most, so that
   * an idle daemon on 8192² frames does not sit on half a gigabyte. In a flood the buffers are
   * rarely idle: each one returned is taken by the next read at once.
   */
  constructor(
    private readonly keep = 4,
    private readonly keepBytes = 256 * GRAIN,
  ) {}

  /** A view of `size` bytes, in a reused buffer when one is large enough. Its content is stale. */
  take(size: number): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength >= size);
    const buffer = i >= 0 ? this.free.splice(i, 1)[0]! : new ArrayBuffer(Math.max(GRAIN, Math.ceil(size / GRAIN) * GRAIN));
    return new Uint8Array(buffer, 0, size);
  }

  /** Hands a view's buffer back: its bytes may be overwritten by the next take(). */
  give(view: Uint8Array): void {
    const { buffer } = view;
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0 || this.free.includes(buffer)) return;
    const held = this.free.reduce((n, b) => n + b.byteLength, 0);
    if (this.free.length < this.keep && held + buffer.byteLength <= this.keepBytes) this.free.push(buffer);
  }

  get idle(): number {
    return this.free.length;
  }
}
