// Typed errors. Each says what is wrong and, where it can, what to do about it.
import type { ErrorReason } from './types.ts';

/** Bad command line or configuration: the CLI exits 2 with this message. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A frame that cannot be judged: becomes one ERROR result with this reason. */
export class FrameError extends Error {
  override name = 'FrameError';
  constructor(
    readonly reason: ErrorReason,
    message: string,
  ) {
    super(message);
  }
}
