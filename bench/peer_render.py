#!/usr/bin/python3
"""A second, independent renderer of SPEC's frames, to measure xpole on frames it was not made from.

The model learnt from src/synth only, and xpole will be judged on synthetic frames from other
renderers. This one shares no code or parameters with src/synth: it is written from SPEC's
geometry and ranges alone, with simpler physics (capsule-ended sheets, Beer-Lambert lines, one
body term for the overlap zone, Gaussian PSF, Poisson + read noise, JPEG for 8-bit exports).
If xpole's figures on it drop far below those on its own test set, the model has learnt the
renderer rather than the cell.

Usage: /usr/bin/python3 bench/peer_render.py --out DIR [--count N] [--seed S] [--defect-rate R]
                        [--cathode-spread MM] [--hidden-missing P]
Writes SPEC's COCO layout (DIR/annotations.json, DIR/images/*.png); then
`npx xpole eval --dataset DIR` measures it. Needs numpy and OpenCV (python3-opencv).
"""
import argparse
import json
import math
import os

import cv2
import numpy as np

SHEETS = 31  # stack-a16c15: A0 C0 A1 ... C14 A15
NAMES = [('A' if i % 2 == 0 else 'C') + str(i // 2) for i in range(SHEETS)]
PITCH_MM = 0.02
SPEC_MM = (0.40, 1.60)
ORIENTATIONS = ['tips-right', 'tips-left', 'tips-up', 'tips-down']


def overhangs(xs, present):
    """SPEC's overhang (mm) of every cathode, in canonical x; None where a neighbour is absent."""
    out = []
    for j in range(15):
        a0, c, a1 = 2 * j, 2 * j + 1, 2 * j + 2
        if not (present[a0] and present[c] and present[a1]):
            out.append(None)
            continue
        out.append(min(xs[a0] - xs[c], xs[a1] - xs[c]) * PITCH_MM)
    return out


def verdict(xs, present):
    reasons = set()
    if not all(present):
        reasons.add('POLE_MISSING')
    for ov in overhangs(xs, present):
        if ov is None:
            continue
        if ov < SPEC_MM[0]:
            reasons.add('OVERHANG_LOW')
        if ov > SPEC_MM[1]:
            reasons.add('OVERHANG_HIGH')
    return ('FAIL' if reasons else 'PASS'), sorted(reasons)


def draw_geometry(rng, W, H, fail, spread):
    """Sheets in canonical orientation before the small rotation: per sheet its row, thickness,
    tip x, lean and end shape; which sheets are present; the defects drawn."""
    # Anode pitch 8-30 px with the stack (15 pitches) 10-40% of the frame height.
    lo, hi = max(8.0, 0.10 * H / 15), min(30.0, 0.40 * H / 15)
    if lo > hi:
        lo = hi = min(30.0, max(8.0, 0.25 * H / 15))
    p = rng.uniform(lo, hi)
    y0 = rng.uniform(0.08 * H, 0.92 * H - 15 * p)
    x_line = rng.uniform(0.35 * W, 0.85 * W)
    slant = math.tan(math.radians(rng.uniform(-4, 4)))
    bow = rng.uniform(-0.6, 0.6) * p
    ta = rng.uniform(2.0, min(8.0, 0.55 * p))
    tc = rng.uniform(1.5, min(6.0, 0.45 * p))
    ys = np.array([y0 + i * p / 2 for i in range(SHEETS)])
    mid = y0 + 7.5 * p
    xs = np.zeros(SHEETS)
    for a in range(16):
        i = 2 * a
        s = (ys[i] - mid) / (7.5 * p)
        xs[i] = x_line + slant * (ys[i] - mid) + bow * (1 - s * s) + rng.normal(0, 0.12 * p)
    # Cathodes are cut on their own line, a mean overhang behind the anodes' line, each off it by
    # N(0, spread); a defect moves one cathode far off it (or leaves a sheet out).
    mean_ov = rng.uniform(0.6, 1.4)
    for j in range(15):
        c = 2 * j + 1
        s = (ys[c] - mid) / (7.5 * p)
        xs[c] = x_line + slant * (ys[c] - mid) + bow * (1 - s * s) - (mean_ov + rng.normal(0, spread)) / PITCH_MM
    present = [True] * SHEETS
    defects = []
    if fail:
        for _ in range(rng.integers(1, 3)):
            kind = rng.choice(['OVERHANG_LOW', 'OVERHANG_HIGH', 'POLE_MISSING'])
            c = 2 * int(rng.integers(0, 15)) + 1
            if kind == 'OVERHANG_LOW':
                xs[c] = min(xs[c - 1], xs[c + 1]) - rng.uniform(-0.5, 0.28) / PITCH_MM
            elif kind == 'OVERHANG_HIGH':
                xs[c] = min(xs[c - 1], xs[c + 1]) - rng.uniform(1.75, 2.5) / PITCH_MM
            else:
                present[int(rng.integers(0, SHEETS))] = False
            defects.append(str(kind))
    thick = np.array([ta if i % 2 == 0 else tc for i in range(SHEETS)]) * rng.uniform(0.85, 1.15, SHEETS)
    # The end: a lean over the last 10-80 px (up to ~8 degrees, fanning out from the middle) and a
    # cap from round (length = half thickness) to pointed (3x).
    fan = rng.uniform(0, 8)
    lean = np.array([math.tan(math.radians(fan * (ys[i] - mid) / (7.5 * p) + rng.normal(0, 1.5))) for i in range(SHEETS)])
    bend = rng.uniform(10, 80, SHEETS)
    cap = rng.uniform(1.0, 3.0, SHEETS)
    return dict(p=p, ys=ys, xs=xs, thick=thick, lean=lean, bend=bend, cap=cap, present=present, defects=defects)


def centre_y(g, i, u):
    """The sheet's centre line at canonical x = u: straight, then bending over its last `bend` px."""
    b = g['bend'][i]
    d = np.clip(u - (g['xs'][i] - b), 0, None)
    return g['ys'][i] + g['lean'][i] * d * d / (2 * b)


def sheet_cover(g, i, U, V):
    """Share of each pixel covered by sheet i (U, V: canonical coordinates of the pixel centres)."""
    r = g['thick'][i] / 2
    a = r * g['cap'][i]
    tip = g['xs'][i]
    half = np.full(U.shape, r)
    in_cap = U > tip - a
    t = np.clip((U - (tip - a)) / a, 0, 1)
    half = np.where(in_cap, r * np.sqrt(np.clip(1 - t * t, 0, 1)), half)
    d = np.abs(V - centre_y(g, i, U)) - half
    # Beyond the apex the distance is to the apex point.
    yt = centre_y(g, i, np.array(tip))
    d = np.where(U > tip, np.hypot(U - tip, V - yt), d)
    return np.clip(0.5 - d, 0, 1)


def render(seed, fail, spread, hidden=0.0):
    rng = np.random.default_rng(seed)
    W, H = [(1000, 1000), (1000, 1000), (1600, 1600), (2048, 2048), (1536, 864), (864, 1536),
            (int(rng.integers(1000, 2049)), int(rng.integers(1000, 2049)))][int(rng.integers(0, 7))]
    while True:
        g = draw_geometry(rng, W, H, fail, spread)
        rot = math.radians(rng.uniform(-5, 5))
        cx, cy = float(np.mean(g['xs'])), float(np.mean(g['ys']))
        # Keypoints after the small rotation about the stack's tip centre (canonical frame).
        apex_y = np.array([float(centre_y(g, i, np.array(g['xs'][i]))) for i in range(SHEETS)])
        kx = cx + math.cos(rot) * (g['xs'] - cx) - math.sin(rot) * (apex_y - cy)
        ky = cy + math.sin(rot) * (g['xs'] - cx) + math.cos(rot) * (apex_y - cy)
        v, reasons = verdict(kx, g['present'])
        margin_ok = all(o is None or abs(o - SPEC_MM[0]) > 0.05 and abs(o - SPEC_MM[1]) > 0.05 for o in overhangs(kx, g['present']))
        inside = kx.min() > 10 and kx.max() < W - 10 and ky.min() > 10 and ky.max() < H - 10
        if margin_ok and inside and (v == 'FAIL') == fail:
            break
    # Canonical coordinates (before rotation) of every pixel centre.
    X, Y = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    U = cx + math.cos(rot) * (X - cx) + math.sin(rot) * (Y - cy)
    Vv = cy - math.sin(rot) * (X - cx) + math.cos(rot) * (Y - cy)
    mu = np.zeros((H, W))
    p = g['p']
    span = 1.5 * p
    mu_a, mu_c = rng.uniform(0.4, 1.2), rng.uniform(0.3, 0.9)
    # V is linear along a row: its extremes are at the first and last column.
    v_lo, v_hi = np.minimum(Vv[:, 0], Vv[:, -1]), np.maximum(Vv[:, 0], Vv[:, -1])

    def band(v0, v1):
        rows = np.where((v_hi >= v0) & (v_lo <= v1))[0]
        return slice(rows[0], rows[-1] + 1) if len(rows) else None

    for i in range(SHEETS):
        sl = band(g['ys'][i] - span - 12, g['ys'][i] + span + 12)
        if not g['present'][i] or sl is None:
            continue
        mu[sl] += (mu_a if i % 2 == 0 else mu_c) * sheet_cover(g, i, U[sl], Vv[sl])
    # The overlap zone: separators and electrolyte between the sheets, bounded by the cathode tips.
    # Row by row it ends at the cathode tips, linear between them; the zone is the cathodes', so a
    # missing cathode leaves a gap through it, unless (--hidden-missing) the zone closes over it and
    # only the sheet's own line is gone. Drawn only when asked for: the default frames stay as they were.
    cath = [i for i in range(1, SHEETS, 2) if g['present'][i] or not (hidden > 0 and rng.random() < hidden)]
    ctip = np.interp(Vv, g['ys'][cath], [g['xs'][i] if g['present'][i] else -1e6 for i in cath])
    body = (U < ctip - rng.uniform(0, 4)) & (Vv > g['ys'][0]) & (Vv < g['ys'][-1])
    mu += body * rng.uniform(0.5, 1.5)
    # Separators: faint lines between the anodes, past the anode tips, fading out.
    sep_len = rng.uniform(10, 250)
    sep_mu = rng.uniform(0.0, 0.12)
    for a in range(15):
        ysep = (g['ys'][2 * a] + g['ys'][2 * a + 2]) / 2
        x0 = min(g['xs'][2 * a], g['xs'][2 * a + 2]) - 20
        sl = band(ysep - 2, ysep + 2)
        if sl is None:
            continue
        fade = np.clip(1 - (U[sl] - x0) / sep_len, 0, 1) * (U[sl] > x0 - 60)
        mu[sl] += sep_mu * fade * np.clip(1 - np.abs(Vv[sl] - ysep), 0, 1)
    # Fixtures: a tray below or above the stack and a block or two, well away from the tips.
    tray_y = g['ys'][-1] + rng.uniform(0.5, 4) * p if rng.random() < 0.5 else g['ys'][0] - rng.uniform(0.5, 4) * p
    below = tray_y > g['ys'][-1]
    mu += ((Vv > tray_y) if below else (Vv < tray_y)) * rng.uniform(0.5, 2.0)
    for _ in range(rng.integers(0, 3)):
        bx, by = rng.uniform(0, 0.5 * W), rng.uniform(0, H)
        mu += ((np.abs(X - bx) < rng.uniform(20, 120)) & (np.abs(Y - by) < rng.uniform(20, 200))) * rng.uniform(0.5, 2)
    I = np.exp(-mu)
    # Heel effect and gain drift; a circular intensifier field in half the frames.
    I *= 1 + rng.uniform(-0.25, 0.25) * (X / W - 0.5) + rng.uniform(-0.15, 0.15) * (Y / H - 0.5)
    if rng.random() < 0.5:
        fx, fy = float(np.median(kx)), float(np.median(ky))
        rad = max(np.hypot(kx - fx, ky - fy).max() + 80, rng.uniform(0.45, 0.7) * max(W, H))
        I *= np.clip(rad - np.hypot(X - fx, Y - fy), 0, 1)
    sigma = rng.uniform(0.5, 3.0)
    I = cv2.GaussianBlur(I, (0, 0), sigma)
    # Noise: Poisson at an open-field SNR of 5-200 plus read noise.
    snr = math.exp(rng.uniform(math.log(5), math.log(200)))
    n0 = snr * snr
    I = rng.poisson(np.clip(I, 0, None) * n0) / n0 + rng.normal(0, 0.1 / snr, I.shape)
    depth = 8 if rng.random() < 0.6 else 16
    if depth == 16:
        full = [4095, 16383, 65535][int(rng.integers(0, 3))]
        img = np.clip(I * 0.9 * full + rng.uniform(0, 0.05) * full, 0, full).astype(np.uint16)
    else:
        gamma = rng.uniform(0.7, 1.3)
        img = np.clip(255 * np.clip(I, 0, None) ** gamma * rng.uniform(0.9, 1.2), 0, 255).astype(np.uint8)
        if rng.random() < 0.8:
            ok, jpg = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 96))])
            img = cv2.imdecode(jpg, cv2.IMREAD_GRAYSCALE)
    orientation = ORIENTATIONS[int(rng.integers(0, 4))]
    fx_, fy_ = kx.copy(), ky.copy()
    if orientation == 'tips-left':
        img = img[:, ::-1]
        fx_ = W - 1 - kx
    elif orientation == 'tips-up':  # turned 90 degrees clockwise, it is canonical
        img = np.rot90(img, 1)
        fx_, fy_ = ky, W - 1 - kx
    elif orientation == 'tips-down':
        img = np.rot90(img, -1)
        fx_, fy_ = H - 1 - ky, kx
    return np.ascontiguousarray(img), fx_, fy_, g['present'], orientation, v, reasons, dict(pitch=g['p'], blur=sigma, snr=snr, depth=depth)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', required=True)
    ap.add_argument('--count', type=int, default=200)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--defect-rate', type=float, default=0.3)
    ap.add_argument('--cathode-spread', type=float, default=0.05, help='sd (mm) of each cathode tip about the cathodes\' line')
    ap.add_argument('--hidden-missing', type=float, default=0.0, help='share of absent cathodes the dark overlap zone closes over')
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, 'images'), exist_ok=True)
    images, annotations = [], []
    for n in range(a.count):
        seed = a.seed * 1_000_003 + n
        fail = np.random.default_rng([seed, 7]).random() < a.defect_rate
        img, xs, ys, present, orientation, v, reasons, info = render(seed, fail, a.cathode_spread, a.hidden_missing)
        name = f'{n:06d}.png'
        cv2.imwrite(os.path.join(a.out, 'images', name), img)
        kp = []
        for i in range(SHEETS):
            kp += [round(float(xs[i]), 3), round(float(ys[i]), 3), 2] if present[i] else [0, 0, 0]
        lx = [xs[i] for i in range(SHEETS) if present[i]]
        ly = [ys[i] for i in range(SHEETS) if present[i]]
        bw, bh = max(lx) - min(lx), max(ly) - min(ly)
        m = 0.1 * max(bw, bh)
        bbox = [min(lx) - m, min(ly) - m, bw + 2 * m, bh + 2 * m]
        h, w = img.shape
        images.append({'id': n, 'file_name': name, 'width': w, 'height': h,
                       'xpole': {'orientation': orientation, 'pixelPitchMm': PITCH_MM, 'cellId': f'peer-{seed}',
                                 'expectedVerdict': v, 'defects': reasons, 'peer': {k: round(float(x), 3) for k, x in info.items()}}})
        annotations.append({'id': n, 'image_id': n, 'category_id': 1, 'keypoints': kp, 'num_keypoints': len(lx),
                            'bbox': [round(float(b), 3) for b in bbox], 'area': round(float(bbox[2] * bbox[3]), 1), 'iscrowd': 0})
    coco = {'images': images, 'annotations': annotations,
            'categories': [{'id': 1, 'name': 'cell', 'keypoints': NAMES, 'skeleton': []}]}
    with open(os.path.join(a.out, 'annotations.json'), 'w') as f:
        json.dump(coco, f)
    print(f'{a.count} frames in {a.out}: {sum(i["xpole"]["expectedVerdict"] == "FAIL" for i in images)} FAIL')


if __name__ == '__main__':
    main()
