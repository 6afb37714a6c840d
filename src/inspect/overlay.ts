// The annotated PNG of `xpole inspect --overlay`: the frame (contrast-stretched to 8 bits for
// display only), ROI box, corners, CNN poles and refined poles in distinct colours, overhang
// values beside the cathodes and a verdict banner, so a technician reads it at a glance.
// Marks are drawn into an RGB typed array; text is an SVG composited by sharp.
import sharp from 'sharp';
import type { Image, Result } from '../types.ts';
import type { Analysis, PoleSet } from './pipeline.ts';

export interface OverlayInput {
  result: Result;
  image?: Image;
  analysis?: Analysis;
  cnn?: PoleSet;
  /** Poles below it are drawn red (POLE_MISSING). */
  minConfidence: number;
}

type Rgb = [number, number, number];

export const OVERLAY_COLOURS = {
  roi: [0, 200, 255] as Rgb,
  corner: [255, 220, 0] as Rgb,
  cnn: [255, 60, 255] as Rgb,
  refined: [40, 255, 40] as Rgb,
  missing: [255, 40, 40] as Rgb,
  PASS: '#1f9d3a',
  FAIL: '#d42a2a',
  ERROR: '#e69500',
};

/** The frame as display RGB: 1st..99th percentile stretched to 0..255. */
export function displayRgb(img: Image): Uint8Array {
  const n = img.width * img.height;
  const max = img.depth === 16 ? 65535 : 255;
  const hist = new Uint32Array(max + 1);
  for (let i = 0; i < n; i++) hist[img.pixels[i]!]!++;
  const at = (q: number) => {
    let acc = 0;
    for (let v = 0; v <= max; v++) if ((acc += hist[v]!) >= q * n) return v;
    return max;
  };
  const lo = at(0.01);
  const hi = Math.max(at(0.99), lo + 1);
  const rgb = new Uint8Array(n * 3);
  const scale = 255 / (hi - lo);
  for (let i = 0; i < n; i++) {
    const v = Math.max(0, Math.min(255, Math.round((img.pixels[i]! - lo) * scale)));
    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v;
  }
  return rgb;
}

class Canvas {
  constructor(
    readonly width: number,
    readonly height: number,
    readonly rgb: Uint8Array,
  ) {}

  dot(x: number, y: number, c: Rgb): void {
    const u = Math.round(x);
    const v = Math.round(y);
    if (u < 0 || v < 0 || u >= this.width || v >= this.height) return;
    const k = 3 * (v * this.width + u);
    this.rgb[k] = c[0];
    this.rgb[k + 1] = c[1];
    this.rgb[k + 2] = c[2];
  }

  rect(x: number, y: number, w: number, h: number, c: Rgb, t: number): void {
    for (let d = 0; d < t; d++) {
      for (let u = x - d; u <= x + w + d; u++) {
        this.dot(u, y - d, c);
        this.dot(u, y + h + d, c);
      }
      for (let v = y - d; v <= y + h + d; v++) {
        this.dot(x - d, v, c);
        this.dot(x + w + d, v, c);
      }
    }
  }

  cross(x: number, y: number, r: number, c: Rgb): void {
    for (let d = -r; d <= r; d++) {
      this.dot(x + d, y + d, c);
      this.dot(x + d, y - d, c);
    }
  }

  circle(x: number, y: number, r: number, c: Rgb): void {
    const steps = Math.max(16, Math.ceil(2 * Math.PI * r));
    for (let s = 0; s < steps; s++) {
      const a = (2 * Math.PI * s) / steps;
      this.dot(x + r * Math.cos(a), y + r * Math.sin(a), c);
    }
  }
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** PNG bytes of the annotated frame; null when there is no decoded frame to draw on. */
export async function renderOverlay(input: OverlayInput): Promise<Buffer | null> {
  const img = input.analysis?.image ?? input.image;
  if (!img) return null;
  const { width, height } = img;
  const canvas = new Canvas(width, height, displayRgb(img));
  const scale = Math.max(1, Math.round(Math.max(width, height) / 800));
  const r = input.result;
  if (r.roi) canvas.rect(Math.round(r.roi[0]), Math.round(r.roi[1]), Math.round(r.roi[2]), Math.round(r.roi[3]), OVERLAY_COLOURS.roi, scale);
  const a = input.analysis;
  if (a) for (let i = 0; i < a.corners.count; i++) canvas.cross(a.corners.x[i]!, a.corners.y[i]!, scale, OVERLAY_COLOURS.corner);
  if (input.cnn) {
    for (let i = 0; i < input.cnn.x.length; i++) canvas.cross(input.cnn.x[i]!, input.cnn.y[i]!, 2 * scale + 1, OVERLAY_COLOURS.cnn);
  }
  const texts: string[] = [];
  const font = 10 + 4 * scale;
  for (const p of r.poles) {
    const colour = p.conf < input.minConfidence ? OVERLAY_COLOURS.missing : p.source === 'refined' ? OVERLAY_COLOURS.refined : OVERLAY_COLOURS.cnn;
    canvas.circle(p.x, p.y, 3 * scale + 1, colour);
  }
  // Overhang labels beside each cathode pole (recipe order: A0 C0 A1 ... so cathode j is pole 2j + 1).
  r.overhangMm.forEach((mm, j) => {
    const p = r.poles[2 * j + 1];
    if (!p) return;
    const text = mm === null ? 'n/a' : `${mm.toFixed(2)} mm`;
    texts.push(
      `<text x="${p.x + 6 * scale}" y="${p.y + font / 3}" font-size="${font}" fill="#ffffff" stroke="#000000" stroke-width="${scale}" paint-order="stroke">${escapeXml(text)}</text>`,
    );
  });
  const banner = Math.round(font * 2);
  const label = `${r.verdict}${r.reasons.length ? ' ' + r.reasons.join(', ') : ''}  ${r.frame.split('/').pop()}${r.error ? ' - ' + r.error : ''}`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<rect x="0" y="0" width="${width}" height="${banner}" fill="${OVERLAY_COLOURS[r.verdict]}" opacity="0.9"/>
<text x="${font / 2}" y="${banner * 0.7}" font-size="${font * 1.2}" font-family="sans-serif" font-weight="bold" fill="#ffffff">${escapeXml(label.slice(0, 200))}</text>
<g font-family="sans-serif">${texts.join('\n')}</g>
</svg>`;
  // The text layer is rasterized alone and blended here, so the PNG stays plain RGB.
  const layer = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  if (layer.info.width !== width || layer.info.height !== height) throw new Error(`overlay text layer is ${layer.info.width}x${layer.info.height}, frame ${width}x${height}`);
  blend(canvas.rgb, layer.data, width * height);
  return sharp(Buffer.from(canvas.rgb.buffer, canvas.rgb.byteOffset, canvas.rgb.byteLength), { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** Alpha-blends an RGBA layer over an RGB image of the same size, in place. */
function blend(rgb: Uint8Array, rgba: Uint8Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const a = rgba[4 * i + 3]!;
    if (a === 0) continue;
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = Math.round((rgba[4 * i + c]! * a + rgb[3 * i + c]! * (255 - a)) / 255);
  }
}
