#!/usr/bin/python3
"""The model contract's crop mapping and normalization (team brief, "The model contract").

The ROI box [bx, by, bw, bh] in canonical coordinates (tips point +x; a continuous region,
pixel centres at integers) is cut into W x H cells. Cell (u, v) is the mean of s x s bilinear
samples at canonical (bx + (u + (i + 0.5) / s) * bw / W, by + (v + (j + 0.5) / s) * bh / H),
s = max(1, ceil(max(bw / W, bh / H))), mapped to the frame with fromCanonical and sampled with
the frame's edge pixels clamped. The crop is then z-scored: (v - mean) / max(std, 1e-6).

Both the training code and INFERENCE's test (which checks the TypeScript preprocessing against
this file) use it, so the two sides cannot drift apart.

CLI (writes the normalized float32 crop, rows of W values, little-endian):
  /usr/bin/python3 training/xpole_crop.py --frame RAW.bin --width W --height H --depth 8|16 \
      --box x,y,w,h --orientation O --out OUT.f32 [--raw]
RAW.bin holds the frame's pixels row by row (uint8, or uint16 little-endian). --box is in
frame pixels as delivered (like Roi.box) and is brought to canonical with boxToCanonical;
--canonical-box x,y,w,h gives it in canonical coordinates instead. --raw skips the z-score
(the anti-aliased crop in raw units). --self-test runs the built-in checks.
"""
import argparse
import math
import os
import sys

import numpy as np

INPUT_W = 128
# The input height is the one size a model may choose (XPOLE_INPUT_HEIGHT, a multiple of 32 for
# HRNet's 1/32 branch): more rows per sheet for fine stacks. The card records what a model uses.
_HEIGHT = os.environ.get('XPOLE_INPUT_HEIGHT', '256')
if not _HEIGHT.isdigit() or int(_HEIGHT) % 32 or not 128 <= int(_HEIGHT) <= 1024:
    sys.exit(f'XPOLE_INPUT_HEIGHT={_HEIGHT!r}: must be a multiple of 32 from 128 to 1024')
INPUT_H = int(_HEIGHT)
ORIENTATIONS = ('tips-right', 'tips-left', 'tips-up', 'tips-down')


def canonical_size(width, height, o):
    return (height, width) if o in ('tips-up', 'tips-down') else (width, height)


def to_canonical(x, y, width, height, o):
    """Frame point (as delivered) -> canonical point; mirrors src/frame/orientation.ts."""
    if o == 'tips-right':
        return x, y
    if o == 'tips-left':
        return width - 1 - x, y
    if o == 'tips-up':
        return height - 1 - y, x
    if o == 'tips-down':
        return y, width - 1 - x
    raise ValueError(f'unknown orientation {o!r}')


def from_canonical(xc, yc, width, height, o):
    """Canonical point -> frame point (as delivered); the inverse of to_canonical."""
    if o == 'tips-right':
        return xc, yc
    if o == 'tips-left':
        return width - 1 - xc, yc
    if o == 'tips-up':
        return yc, height - 1 - xc
    if o == 'tips-down':
        return width - 1 - yc, xc
    raise ValueError(f'unknown orientation {o!r}')


def _map_box(box, fn):
    x, y, w, h = box
    ax, ay = fn(x, y)
    bx, by = fn(x + w, y + h)
    return [min(ax, bx), min(ay, by), abs(bx - ax), abs(by - ay)]


def box_to_canonical(box, width, height, o):
    return _map_box(box, lambda x, y: to_canonical(x, y, width, height, o))


def box_from_canonical(box, width, height, o):
    return _map_box(box, lambda x, y: from_canonical(x, y, width, height, o))


def supersampling(bw, bh, out_w=INPUT_W, out_h=INPUT_H):
    return max(1, math.ceil(max(bw / out_w, bh / out_h)))


def bilinear(frame, x, y):
    """Bilinear samples of a 2-D frame at float arrays x, y; coordinates clamp to the edge pixels."""
    h, w = frame.shape
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = x - x0
    fy = y - y0
    f = frame.astype(np.float64, copy=False)
    top = f[y0, x0] * (1.0 - fx) + f[y0, x1] * fx
    bottom = f[y1, x0] * (1.0 - fx) + f[y1, x1] * fx
    return top * (1.0 - fy) + bottom * fy


def crop_raw(frame, canonical_box, orientation, out_w=INPUT_W, out_h=INPUT_H):
    """The anti-aliased crop in the frame's raw units: float64 [out_h, out_w]."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f'unknown orientation {orientation!r}')
    bx, by, bw, bh = (float(v) for v in canonical_box)
    if not (bw > 0 and bh > 0):
        raise ValueError(f'box must have positive size, got {canonical_box}')
    h, w = frame.shape
    s = supersampling(bw, bh, out_w, out_h)
    # Sample k of cell u sits at u + (i + 0.5) / s with k = u * s + i, i.e. (k + 0.5) / s.
    xs = bx + (np.arange(out_w * s) + 0.5) / s * (bw / out_w)
    ys = by + (np.arange(out_h * s) + 0.5) / s * (bh / out_h)
    xc, yc = np.meshgrid(xs, ys)
    fx, fy = from_canonical(xc, yc, w, h, orientation)
    samples = bilinear(frame, fx, fy)
    return samples.reshape(out_h, s, out_w, s).mean(axis=(1, 3))


def zscore(crop):
    mean = crop.mean()
    std = crop.std()
    return (crop - mean) / max(std, 1e-6)


def crop(frame, canonical_box, orientation, out_w=INPUT_W, out_h=INPUT_H):
    """The model input: z-scored float32 [out_h, out_w]."""
    return zscore(crop_raw(frame, canonical_box, orientation, out_w, out_h)).astype(np.float32)


def _parse_box(text):
    parts = text.split(',')
    if len(parts) != 4:
        raise ValueError(f'box must be x,y,w,h, got {text!r}')
    return [float(p) for p in parts]


def _self_test():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 65536, size=(37, 53)).astype(np.uint16)
    h, w = frame.shape
    # The orientation transforms are inverse to each other.
    for o in ORIENTATIONS:
        x, y = rng.uniform(0, 50, 10), rng.uniform(0, 30, 10)
        cx, cy = to_canonical(x, y, w, h, o)
        bx_, by_ = from_canonical(cx, cy, w, h, o)
        assert np.allclose(bx_, x) and np.allclose(by_, y), o
    # A box of exactly W x H pixels with cells on pixel centres reproduces the frame.
    big = rng.integers(0, 256, size=(INPUT_H + 44, 200)).astype(np.uint8)
    raw = crop_raw(big, [10.5, 20.5, INPUT_W, INPUT_H], 'tips-right')
    assert np.allclose(raw, big[21:21 + INPUT_H, 11:11 + INPUT_W]), 'identity crop'
    # tips-left is the mirror image of tips-right of the mirrored frame.
    a = crop_raw(big, [3.2, 7.9, 150.0, 260.0], 'tips-left')
    b = crop_raw(big[:, ::-1].copy(), [3.2, 7.9, 150.0, 260.0], 'tips-right')
    assert np.allclose(a, b), 'tips-left'
    # tips-up: canonical (xc, yc) = (H-1-y, x): the frame turned clockwise.
    c = crop_raw(big, [3.2, 7.9, 150.0, 180.0], 'tips-up')
    d = crop_raw(np.rot90(big, k=-1).copy(), [3.2, 7.9, 150.0, 180.0], 'tips-right')
    assert np.allclose(c, d), 'tips-up'
    e = crop_raw(big, [3.2, 7.9, 150.0, 180.0], 'tips-down')
    f = crop_raw(np.rot90(big, k=1).copy(), [3.2, 7.9, 150.0, 180.0], 'tips-right')
    assert np.allclose(e, f), 'tips-down'
    # Supersampling: a 2x box averages 2x2 blocks of pixel centres.
    large = rng.integers(0, 65536, size=(2 * INPUT_H, 2 * INPUT_W)).astype(np.uint16)
    g = crop_raw(large, [-0.5, -0.5, 2 * INPUT_W, 2 * INPUT_H], 'tips-right')
    assert supersampling(2 * INPUT_W, 2 * INPUT_H) == 2
    blocks = large.astype(np.float64).reshape(INPUT_H, 2, INPUT_W, 2).mean(axis=(1, 3))
    assert np.allclose(g, blocks), 'supersampling'
    # Edge clamping: a box far outside the frame repeats the corner pixel.
    z = crop_raw(big, [-500.0, -500.0, 10.0, 10.0], 'tips-right')
    assert np.allclose(z, big[0, 0]), 'clamp'
    # Normalization is bit-depth free.
    n8 = crop(big, [5.0, 5.0, 100.0, 200.0], 'tips-down')
    n16 = crop(big.astype(np.uint16) * 257, [5.0, 5.0, 100.0, 200.0], 'tips-down')
    assert np.allclose(n8, n16, atol=1e-5) and abs(n8.mean()) < 1e-4 and abs(n8.std() - 1) < 1e-3
    flat = crop(np.full((10, 10), 7, np.uint8), [0, 0, 5, 5], 'tips-right')
    assert np.allclose(flat, 0, atol=1e-6), 'flat crop'  # bilinear weights may leave ~1e-16 of the flat value
    print('xpole_crop self-test: ok')


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--self-test', action='store_true')
    p.add_argument('--frame')
    p.add_argument('--width', type=int)
    p.add_argument('--height', type=int)
    p.add_argument('--depth', type=int, choices=(8, 16))
    p.add_argument('--box')
    p.add_argument('--canonical-box')
    p.add_argument('--orientation', choices=ORIENTATIONS, default='tips-right')
    p.add_argument('--out-width', type=int, default=INPUT_W)
    p.add_argument('--out-height', type=int, default=INPUT_H)
    p.add_argument('--raw', action='store_true', help='write the crop before the z-score')
    p.add_argument('--out')
    a = p.parse_args(argv)
    if a.self_test:
        _self_test()
        return 0
    missing = [n for n in ('frame', 'width', 'height', 'depth', 'out') if getattr(a, n) is None]
    if missing or (a.box is None) == (a.canonical_box is None):
        p.error('need --frame --width --height --depth --out and exactly one of --box / --canonical-box'
                + (f' (missing: {", ".join(missing)})' if missing else ''))
    dtype = np.dtype('<u2') if a.depth == 16 else np.dtype('u1')
    data = np.fromfile(a.frame, dtype=dtype)
    if data.size != a.width * a.height:
        p.error(f'--frame holds {data.size} pixels, expected {a.width}x{a.height}')
    frame = data.reshape(a.height, a.width)
    if a.canonical_box is not None:
        box = _parse_box(a.canonical_box)
    else:
        box = box_to_canonical(_parse_box(a.box), a.width, a.height, a.orientation)
    raw = crop_raw(frame, box, a.orientation, a.out_width, a.out_height)
    out = raw if a.raw else zscore(raw)
    out.astype('<f4').tofile(a.out)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
