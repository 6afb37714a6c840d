"""SPEC's COCO datasets -> in-memory context crops -> augmented model inputs and heatmap targets.

Each frame is cropped once at load time (the contract's mapping, training/xpole_crop.py) around
an ROI box grown by CTX on every side, at the model's scale, so per-epoch augmentation (an affine
warp back to the model's input size, flip, intensity, noise, blur) has room and stays cheap.
"""
import json
import math
import os

import cv2
import numpy as np

import xpole_crop as xc

IN_W, IN_H = xc.INPUT_W, xc.INPUT_H
# The context crop is the ROI box grown by 1/8 of its size on every side: 160 x 320 at model scale
# for a 128 x 256 input.
CTX = 0.125
CTX_W, CTX_H = round(IN_W * (1 + 2 * CTX)), round(IN_H * (1 + 2 * CTX))
OFF_X, OFF_Y = IN_W * CTX, IN_H * CTX  # context pixel -> input pixel is a shift by these


def load_coco(root):
    with open(os.path.join(root, 'annotations.json')) as f:
        coco = json.load(f)
    names = coco['categories'][0]['keypoints']
    by_image = {a['image_id']: a for a in coco['annotations']}
    samples = []
    for im in coco['images']:
        ann = by_image.get(im['id'])
        if ann is None:
            continue
        meta = im.get('xpole', {})
        samples.append({
            'id': im['id'],
            'file': os.path.join(root, 'images', im['file_name']),
            'name': im['file_name'],
            'orientation': meta['orientation'],
            'expectedVerdict': meta.get('expectedVerdict'),
            'pixelPitchMm': meta.get('pixelPitchMm', 0.02),
            'keypoints': np.asarray(ann['keypoints'], np.float64).reshape(-1, 3),
            'bbox': [float(v) for v in ann['bbox']],
        })
    return names, samples


def read_frame(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f'cannot read {path}')
    if img.ndim == 3:  # grey stored as RGB
        img = img[:, :, 0]
    return img


def jitter_box(box, kps_c, rng, strong):
    """A canonical box moved/scaled like an ROI-stage error, still holding the labelled keypoints."""
    bx, by, bw, bh = box
    cx, cy = bx + bw / 2, by + bh / 2
    for _ in range(20):
        if strong:
            s = rng.uniform(0.85, 1.3)
            a = math.exp(rng.uniform(-0.2, 0.2))
            w, h = bw * s * a, bh * s / a
            x = cx + rng.uniform(-0.15, 0.15) * bw - w / 2
            y = cy + rng.uniform(-0.06, 0.06) * bh - h / 2
        else:
            s = rng.uniform(0.95, 1.1)
            a = math.exp(rng.uniform(-0.05, 0.05))
            w, h = bw * s * a, bh * s / a
            x = cx + rng.uniform(-0.04, 0.04) * bw - w / 2
            y = cy + rng.uniform(-0.02, 0.02) * bh - h / 2
        if contains([x, y, w, h], kps_c):
            return [x, y, w, h]
    return list(box)


# The pipeline's second pass looks at the box around the first pass's confident poles, reaching at
# least pipeline.secondPassBackReach x overhangMaxMm behind the outermost tip (src/inspect/pipeline.ts:
# 1.25 x 1.6 mm / 0.02 mm/px = 100 px at the default recipe), grown by 0.1 of its larger side.
# Training draws the reach from 80-150 px so that a wider reach (deeper recessed cathodes, up to
# 2.6 mm in the synthetic FAIL frames) stays within what the model has seen.
SECOND_PASS_BACK_PX = (80, 150)


def second_pass_box(kps_c, rng):
    """A second-pass canonical box for these keypoints, its edges moved by a first pass's error."""
    x0, y0 = kps_c[:, 0].min(), kps_c[:, 1].min()
    x1, y1 = kps_c[:, 0].max(), kps_c[:, 1].max()
    h = y1 - y0
    # First-pass poles are off by a few pixels, and an outermost pole may be missed at the ends.
    x0 += rng.normal(0, 2.0)
    x1 += rng.normal(0, 2.0)
    y0 += rng.normal(0, 0.01 * h)
    y1 += rng.normal(0, 0.01 * h)
    x0 = min(x0, x1 - rng.uniform(*SECOND_PASS_BACK_PX))
    m = 0.1 * max(x1 - x0, y1 - y0)
    box = [x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m]
    return box if contains(box, kps_c) else [x0 - 1.2 * m, y0 - 1.2 * m, x1 - x0 + 2.4 * m, y1 - y0 + 2.4 * m]


def contains(box, pts):
    x, y, w, h = box
    return len(pts) == 0 or bool((pts[:, 0].min() >= x) & (pts[:, 0].max() <= x + w)
                                 & (pts[:, 1].min() >= y) & (pts[:, 1].max() <= y + h))


def keypoints_canonical(kps, width, height, o):
    x, y = xc.to_canonical(kps[:, 0], kps[:, 1], width, height, o)
    return np.stack([x, y, kps[:, 2]], axis=1)


def context_crop(frame, cbox, o):
    """Raw context crop (float32, scaled to 0..1) around canonical box cbox and its geometry."""
    bx, by, bw, bh = cbox
    ctx_box = [bx - CTX * bw, by - CTX * bh, bw * (1 + 2 * CTX), bh * (1 + 2 * CTX)]
    scale = 255.0 if frame.dtype == np.uint8 else 65535.0
    raw = xc.crop_raw(frame, ctx_box, o, CTX_W, CTX_H) / scale
    return raw.astype(np.float32)


def to_input_pixels(kps_c, cbox):
    """Canonical keypoints -> continuous input-pixel coordinates of the 128 x 256 crop of cbox."""
    bx, by, bw, bh = cbox
    px = (kps_c[:, 0] - bx) * IN_W / bw - 0.5
    py = (kps_c[:, 1] - by) * IN_H / bh - 0.5
    return np.stack([px, py], axis=1)


def prepare(samples, rois=None, variants=2, seed=0, log=print, second_pass=False):
    """Context crops for every sample: variant 0 from the ROI stage's box (when given for the
    frame, else the reference box with mild jitter), the others from strongly jittered reference
    boxes; with second_pass the last variant is the pipeline's second-pass box (second_pass_box),
    and a single variant is only that. Returns images [N, V, CTX_H, CTX_W] float32, keypoints
    [N, V, K, 3] in input pixels, the canonical box sizes [N, V, 2] (bw, bh) and how many crops
    came from the ROI stage."""
    rng = np.random.default_rng(seed)
    n, k = len(samples), len(samples[0]['keypoints'])
    images = np.zeros((n, variants, CTX_H, CTX_W), np.float32)
    points = np.zeros((n, variants, k, 3), np.float32)
    sizes = np.zeros((n, variants, 2), np.float32)
    used_roi = 0
    for i, s in enumerate(samples):
        frame = read_frame(s['file'])
        h, w = frame.shape
        o = s['orientation']
        kc = keypoints_canonical(s['keypoints'], w, h, o)
        vis = kc[kc[:, 2] > 0]
        ref = xc.box_to_canonical(s['bbox'], w, h, o)
        for v in range(variants):
            if second_pass and v == variants - 1:
                cbox = second_pass_box(vis, rng)
            else:
                roi = rois.get(s['name']) if (rois and v == 0) else None
                cbox = xc.box_to_canonical(roi, w, h, o) if roi is not None else None
                # An ROI that misses labelled poles teaches nothing the model could act on.
                if cbox is not None and contains(cbox, vis):
                    used_roi += 1
                else:
                    cbox = jitter_box(ref, vis, rng, strong=v > 0)
            images[i, v] = context_crop(frame, cbox, o)
            points[i, v, :, :2] = to_input_pixels(kc, cbox)
            points[i, v, :, 2] = kc[:, 2] > 0
            sizes[i, v] = cbox[2:]
        if (i + 1) % 500 == 0:
            log(f'  prepared {i + 1}/{n}')
    return images, points, sizes, used_roi


def heatmap_size(stride):
    """[width, height] of the heatmaps at `stride` input pixels a cell."""
    return IN_W // stride, IN_H // stride


def targets(pts, sigma, stride=4):
    """Gaussian heatmaps [K, H, W] (64 x 32 at stride 4), peak 1 at each keypoint's continuous heatmap
    position; v = 0 -> zeros."""
    hm_w, hm_h = heatmap_size(stride)
    hx = (pts[:, 0] + 0.5) / stride - 0.5
    hy = (pts[:, 1] + 0.5) / stride - 0.5
    gx = np.arange(hm_w, dtype=np.float32)
    gy = np.arange(hm_h, dtype=np.float32)
    ex = np.exp(-((gx[None, :] - hx[:, None]) ** 2) / (2 * sigma * sigma))
    ey = np.exp(-((gy[None, :] - hy[:, None]) ** 2) / (2 * sigma * sigma))
    t = ey[:, :, None] * ex[:, None, :]
    t *= pts[:, 2][:, None, None]
    return t.astype(np.float32)


def zscore(img):
    return (img - img.mean()) / max(float(img.std()), 1e-6)


class Augmenter:
    """The paper's rotation, reflection and affine, plus intensity, noise and blur."""

    def __init__(self, rng, enabled=True):
        self.rng = rng
        self.enabled = enabled

    def __call__(self, ctx, pts):
        r = self.rng
        k = len(pts)
        c = np.array([(IN_W - 1) / 2, (IN_H - 1) / 2])
        if self.enabled:
            ang = math.radians(r.uniform(-8, 8))
            sx = math.exp(r.uniform(-0.1, 0.1))
            sy = sx * math.exp(r.uniform(-0.05, 0.05))
            sh = r.uniform(-0.08, 0.08)
            t = np.array([r.uniform(-3, 3), r.uniform(-3, 3)])
            rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
            a = rot @ np.array([[sx, sh], [0, sy]])
        else:
            a, t = np.eye(2), np.zeros(2)
        # input pixel p = c + A (q - OFF - c) + t for context pixel q
        off = np.array([OFF_X, OFF_Y])
        b = c + t - a @ (off + c)
        m = np.concatenate([a, b[:, None]], axis=1)
        img = cv2.warpAffine(ctx, m, (IN_W, IN_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        p = pts.copy()
        p[:, :2] = (pts[:, :2] + off) @ a.T + b  # pts are input pixels of the unwarped crop
        if not self.enabled:
            return zscore(img), p
        if r.random() < 0.5:  # top <-> bottom: the A C ... A stack reverses its order
            img = img[::-1].copy()
            p[:, 1] = IN_H - 1 - p[:, 1]
            p = p[::-1].copy()
        img = np.clip(img, 0, None)
        lo, hi = float(img.min()), float(img.max())
        if hi > lo:
            img = (img - lo) / (hi - lo)
            img = img ** math.exp(r.uniform(-0.5, 0.5))  # gamma
            if r.random() < 0.5:  # uneven field: a gain ramp
                gy, gx = np.mgrid[0:IN_H, 0:IN_W].astype(np.float32)
                g = 1 + r.uniform(-0.3, 0.3) * (gx / IN_W - 0.5) + r.uniform(-0.3, 0.3) * (gy / IN_H - 0.5)
                img = img * g
        if r.random() < 0.5:
            sig = r.uniform(0.3, 1.5)
            img = cv2.GaussianBlur(img, (0, 0), sig)
        img = img.astype(np.float32)
        std = float(img.std()) + 1e-6
        if r.random() < 0.7:
            img = img + r.normal(0, r.uniform(0.02, 0.25) * std, img.shape).astype(np.float32)
        if r.random() < 0.1:  # a few dead / hot pixels
            n = r.integers(1, 6)
            ys, xs = r.integers(0, IN_H, n), r.integers(0, IN_W, n)
            img[ys, xs] = np.where(r.random(n) < 0.5, img.min(), img.max())
        assert len(p) == k
        return zscore(img), p
