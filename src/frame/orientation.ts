// SPEC "Geometry": canonical orientation has the tips pointing +x. Orientation is applied as a
// coordinate transform (never by copying the frame). Pixel centres are integers, so a frame of
// width W maps x -> W - 1 - x when mirrored.
import type { Box, Orientation } from '../types.ts';

/** Size of the frame once brought into canonical orientation. */
export function canonicalSize(width: number, height: number, o: Orientation): [number, number] {
  return o === 'tips-up' || o === 'tips-down' ? [height, width] : [width, height];
}

/** Frame point (as delivered) -> canonical point. tips-up turns 90 deg clockwise, tips-down 90 deg counter-clockwise. */
export function toCanonical(x: number, y: number, width: number, height: number, o: Orientation): [number, number] {
  switch (o) {
    case 'tips-right':
      return [x, y];
    case 'tips-left':
      return [width - 1 - x, y];
    case 'tips-up':
      return [height - 1 - y, x];
    case 'tips-down':
      return [y, width - 1 - x];
  }
}

/** Canonical point -> frame point (as delivered); the inverse of toCanonical. */
export function fromCanonical(xc: number, yc: number, width: number, height: number, o: Orientation): [number, number] {
  switch (o) {
    case 'tips-right':
      return [xc, yc];
    case 'tips-left':
      return [width - 1 - xc, yc];
    case 'tips-up':
      return [yc, height - 1 - xc];
    case 'tips-down':
      return [width - 1 - yc, xc];
  }
}

/**
 * Boxes [x, y, w, h] are continuous regions in SPEC coordinates (a point p is inside when
 * x <= p.x <= x + w), so they map through their two corners like points.
 */
function mapBox(b: Box, map: (x: number, y: number) => [number, number]): Box {
  const [ax, ay] = map(b[0], b[1]);
  const [bx, by] = map(b[0] + b[2], b[1] + b[3]);
  return [Math.min(ax, bx), Math.min(ay, by), Math.abs(bx - ax), Math.abs(by - ay)];
}

export function boxToCanonical(b: Box, width: number, height: number, o: Orientation): Box {
  return mapBox(b, (x, y) => toCanonical(x, y, width, height, o));
}

export function boxFromCanonical(b: Box, width: number, height: number, o: Orientation): Box {
  return mapBox(b, (x, y) => fromCanonical(x, y, width, height, o));
}

/** Canonical -> frame as an affine map (the four orientations are all affine): f = o + xc * ex + yc * ey. */
export interface CanonicalAffine {
  ox: number;
  oy: number;
  exx: number;
  exy: number;
  eyx: number;
  eyy: number;
}

export function canonicalAffine(width: number, height: number, o: Orientation): CanonicalAffine {
  const [ox, oy] = fromCanonical(0, 0, width, height, o);
  const [ax, ay] = fromCanonical(1, 0, width, height, o);
  const [bx, by] = fromCanonical(0, 1, width, height, o);
  return { ox, oy, exx: ax - ox, exy: ay - oy, eyx: bx - ox, eyy: by - oy };
}

/** The map as the addon takes it: Float64Array [ox, oy, exx, exy, eyx, eyy]. */
export function canonicalAffineArray(width: number, height: number, o: Orientation): Float64Array {
  const a = canonicalAffine(width, height, o);
  return new Float64Array([a.ox, a.oy, a.exx, a.exy, a.eyx, a.eyy]);
}
