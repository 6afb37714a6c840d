// What the daemon needs from a frame source. A new source (GigE Vision / GenICam, a vendor SDK)
// implements this and nothing else changes: the daemon pulls frames when it has room (that is
// the backpressure) and acknowledges each one after its result is durably recorded.
import type { FrameError } from '../errors.ts';
import type { Image, Verdict } from '../types.ts';

/** The frame's content: encoded file bytes, an already decoded image, or why the source refused it. */
export type FrameInput = { bytes: Uint8Array } | { image: Image } | { error: FrameError };

export interface SourceFrame {
  /** The frame's name as results report it (the file name for the hot folder). */
  frame: string;
  cellId: string | null;
  input: FrameInput;
  /** performance.now() when the source first saw the frame: latency is measured from here. */
  arrivedAt: number;
  /**
   * True when the frame was taken before a restart and may already be in the history
   * (the daemon checks, so that a crash never judges a frame twice).
   */
  recovered: boolean;
  /** When the frame was written (file mtime, epoch ms), where the source knows it. */
  writtenAt?: number;
  /** Called once, after the frame's result is in the history: the source may now let it go. */
  ack(verdict: Verdict): Promise<void>;
  /** Called once the pipeline is done with `input` (before ack): its bytes may be reused. */
  release?(): void;
}

export interface Source {
  /** Short name for status and logs: 'hotfolder', 'simulator'. */
  readonly kind: string;
  /** Prepares the source (folders, first scan); throws a UsageError when it cannot. */
  open(): Promise<void>;
  /**
   * The next frame, waiting until there is one; null once stop() was called. Frames the
   * source has not returned yet stay with it (the hot folder leaves them in its folder).
   * One call at a time: the daemon asks again only after the previous call returned.
   */
  next(): Promise<SourceFrame | null>;
  /** Makes a pending and every later next() return null. */
  stop(): void;
  /** True while next() is waiting and nothing is pending: the source is idle and healthy. */
  readonly idle: boolean;
  /** Counters for stats (e.g. dropped frames, refused files). */
  counters(): Record<string, number>;
}
