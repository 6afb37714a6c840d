// The shipped model's measured bias per pole (the model card's `poleOffsets`): decoded with DARK,
// its heatmaps put the outermost sheets' poles 0.13-0.16 half pitch inside the stack, on its own
// training frames as on held-out ones (argmax shows no such bias). The bias measured on training
// frames (training/pole_offsets.py) is subtracted here, for the decoder it was measured with.
// Offsets are in canonical orientation and in half pitches (the sheet-to-sheet spacing), so they
// hold at any scale; this frame's half pitch comes from its own confident poles.

/** Per pole [dx, dy] to add, in half pitches, canonical orientation; one pair per keypoint. */
export type PoleOffsets = readonly (readonly [number, number])[];

/**
 * The frame's half pitch: the median spacing of neighbouring confident poles along the stack
 * (canonical y). Null with fewer than 3 such pairs: too little to scale an offset by.
 */
export function halfPitch(yc: ArrayLike<number>, conf: ArrayLike<number>, minConfidence: number): number | null {
  const gaps: number[] = [];
  for (let i = 0; i + 1 < yc.length; i++) {
    if (conf[i]! >= minConfidence && conf[i + 1]! >= minConfidence) gaps.push(yc[i + 1]! - yc[i]!);
  }
  if (gaps.length < 3) return null;
  gaps.sort((a, b) => a - b);
  const m = gaps.length >> 1;
  const h = gaps.length % 2 ? gaps[m]! : (gaps[m - 1]! + gaps[m]!) / 2;
  return h > 0 ? h : null;
}

/** Adds each pole's offset, scaled by this frame's half pitch, in place (canonical coordinates). */
export function applyPoleOffsets(
  xc: Float64Array,
  yc: Float64Array,
  conf: ArrayLike<number>,
  offsets: PoleOffsets,
  minConfidence: number,
): void {
  if (offsets.length !== xc.length) throw new RangeError(`applyPoleOffsets: ${offsets.length} offsets for ${xc.length} poles`);
  const h = halfPitch(yc, conf, minConfidence);
  if (h === null) return;
  for (let i = 0; i < xc.length; i++) {
    xc[i]! += offsets[i]![0] * h;
    yc[i]! += offsets[i]![1] * h;
  }
}
