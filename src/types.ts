// The data that flows between pipeline stages (see ARCHITECTURE.md). Plain typed arrays, no I/O.

export type Depth = 8 | 16;

/** One grayscale channel in the frame's own pixels, rows packed (stride = width). */
export interface Image {
  width: number;
  height: number;
  depth: Depth;
  pixels: Uint8Array | Uint16Array;
}

/** How a station's frames are brought into canonical orientation (tips pointing +x). SPEC "Geometry". */
export type Orientation = 'tips-right' | 'tips-left' | 'tips-up' | 'tips-down';
export const ORIENTATIONS: readonly Orientation[] = ['tips-right', 'tips-left', 'tips-up', 'tips-down'];

/** oFAST corners from the native addon, frame pixel coordinates (integer positions). */
export interface Corners {
  count: number;
  x: Float32Array;
  y: Float32Array;
  /** FAST score as OpenCV reports it. */
  score: Float32Array;
  /** ORB's Harris response (0 when not computed). */
  harris: Float32Array;
  /** Intensity-centroid angle in degrees [0, 360), as ORB (0 when not computed). */
  angle: Float32Array;
}

/** Axis-aligned box in frame pixels, [x, y, w, h] as SPEC: x,y of the top-left corner. */
export type Box = [x: number, y: number, w: number, h: number];

export interface Roi {
  /** The box in frame pixels as delivered. */
  box: Box;
  orientation: Orientation;
}

export type PoleSource = 'cnn' | 'refined';

export interface Pole {
  name: string;
  x: number;
  y: number;
  conf: number;
  source: PoleSource;
}

export type Verdict = 'PASS' | 'FAIL' | 'ERROR';
export type FailReason = 'OVERHANG_LOW' | 'OVERHANG_HIGH' | 'POLE_MISSING';
export type ErrorReason =
  | 'DECODE_ERROR'
  | 'FRAME_TOO_LARGE'
  | 'BAD_FRAME'
  | 'ROI_NOT_FOUND'
  | 'MODEL_ERROR'
  | 'INTERNAL';
export type Reason = FailReason | ErrorReason;

/** SPEC "MQTT": the result object, published on {root}/result and stored as a history row. */
export interface Result {
  schema: 'xpole.result/1';
  id: string;
  seq: number;
  ts: string;
  frame: string;
  cellId: string | null;
  verdict: Verdict;
  reasons: Reason[];
  /** One entry per cathode in recipe order; null where a neighbouring pole is missing. */
  overhangMm: (number | null)[];
  poles: Pole[];
  roi: Box | null;
  timingsMs: Record<string, number>;
  model: { name: string; sha256: string; provider: string };
  /** Human-readable detail for ERROR results (what went wrong), absent otherwise. */
  error?: string;
}
