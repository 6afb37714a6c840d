// Fixtures around the cell (clamps, screws, the tray, casing edges, dust) as attenuating shapes
// in scene coordinates. Coverage is the area fraction of a pixel-sized footprint, from a signed
// distance with a linear ramp one sample wide.

export type Shape =
  | { kind: 'box'; x0: number; y0: number; x1: number; y1: number; r: number; mu: number }
  | { kind: 'disc'; cx: number; cy: number; r: number; mu: number }
  /** Covered where nx * x + ny * y > d. */
  | { kind: 'halfplane'; nx: number; ny: number; d: number; mu: number }
  /** A screw shaft along y from y0 to y1, centred on cx, its flanks cut by threads. */
  | { kind: 'thread'; cx: number; y0: number; y1: number; halfWidth: number; pitch: number; depth: number; mu: number }
  /** Soft blob (dust, a weld spot): mu * exp(-r^2 / 2 s^2). */
  | { kind: 'blob'; cx: number; cy: number; s: number; mu: number };

export interface PlacedShape {
  shape: Shape;
  /** Bounds outside which the shape contributes nothing: [x0, y0, x1, y1]. */
  bounds: [number, number, number, number];
}

export function place(shape: Shape): PlacedShape {
  const INF = Number.POSITIVE_INFINITY;
  switch (shape.kind) {
    case 'box':
      return { shape, bounds: [shape.x0 - 1, shape.y0 - 1, shape.x1 + 1, shape.y1 + 1] };
    case 'disc':
      return { shape, bounds: [shape.cx - shape.r - 1, shape.cy - shape.r - 1, shape.cx + shape.r + 1, shape.cy + shape.r + 1] };
    case 'halfplane':
      return { shape, bounds: [-INF, -INF, INF, INF] };
    case 'thread': {
      const w = shape.halfWidth + shape.depth + 1;
      return { shape, bounds: [shape.cx - w, shape.y0 - 1, shape.cx + w, shape.y1 + 1] };
    }
    case 'blob':
      return { shape, bounds: [shape.cx - 4 * shape.s, shape.cy - 4 * shape.s, shape.cx + 4 * shape.s, shape.cy + 4 * shape.s] };
  }
}

/** Area coverage from a signed distance (negative inside) for a footprint `w` wide. */
export function ramp(sd: number, w: number): number {
  const c = 0.5 - sd / w;
  return c <= 0 ? 0 : c >= 1 ? 1 : c;
}

function boxDistance(s: Extract<Shape, { kind: 'box' }>, x: number, y: number): number {
  const hx = (s.x1 - s.x0) / 2;
  const hy = (s.y1 - s.y0) / 2;
  const r = Math.min(s.r, hx, hy);
  const qx = Math.abs(x - (s.x0 + s.x1) / 2) - hx + r;
  const qy = Math.abs(y - (s.y0 + s.y1) / 2) - hy + r;
  const ox = Math.max(qx, 0);
  const oy = Math.max(qy, 0);
  return Math.hypot(ox, oy) + Math.min(Math.max(qx, qy), 0) - r;
}

/** Attenuation (mu * coverage) of one shape at scene point (x, y) for a footprint `w` wide. */
export function shapeAttenuation(p: PlacedShape, x: number, y: number, w: number): number {
  const b = p.bounds;
  if (x < b[0] || x > b[2] || y < b[1] || y > b[3]) return 0;
  const s = p.shape;
  switch (s.kind) {
    case 'box': {
      // Deep inside a large box (the tray, a clamp) the coverage is 1 without the distance.
      const m = s.r + w;
      if (x > s.x0 + m && x < s.x1 - m && y > s.y0 + m && y < s.y1 - m) return s.mu;
      return s.mu * ramp(boxDistance(s, x, y), w);
    }
    case 'disc':
      return s.mu * ramp(Math.hypot(x - s.cx, y - s.cy) - s.r, w);
    case 'halfplane':
      return s.mu * ramp(s.d - (s.nx * x + s.ny * y), w);
    case 'thread': {
      // Triangle-wave flanks, the two sides offset by half a pitch like a real helix seen side-on.
      const phase = (y - s.y0) / s.pitch;
      const side = x < s.cx ? phase : phase + 0.5;
      const tri = Math.abs(side - Math.floor(side) - 0.5) * 2;
      const hw = s.halfWidth + s.depth * (tri - 0.5);
      const sd = Math.max(Math.abs(x - s.cx) - hw, s.y0 - y, y - s.y1);
      return s.mu * ramp(sd, w);
    }
    case 'blob': {
      const dx = x - s.cx;
      const dy = y - s.cy;
      return s.mu * Math.exp(-(dx * dx + dy * dy) / (2 * s.s * s.s));
    }
  }
}
