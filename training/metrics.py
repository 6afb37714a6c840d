"""The contract's heatmap decoding and SPEC's metrics (NME, PCK, PCS in percent of the bbox diagonal)."""
import numpy as np


def decode(heat):
    """Argmax + a quarter cell toward the higher neighbour (HRNet's reference decoding).
    heat [N, K, H, W] -> hx, hy (continuous heatmap coordinates, cell centres at integers), conf."""
    n, k, h, w = heat.shape
    flat = heat.reshape(n, k, -1)
    idx = flat.argmax(-1)
    conf = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    ix, iy = idx % w, idx // w
    hx, hy = ix.astype(np.float64), iy.astype(np.float64)
    nn_, kk = np.meshgrid(np.arange(n), np.arange(k), indexing='ij')
    inner = (ix > 0) & (ix < w - 1)
    right = heat[nn_, kk, iy, np.minimum(ix + 1, w - 1)]
    left = heat[nn_, kk, iy, np.maximum(ix - 1, 0)]
    hx += np.where(inner, 0.25 * np.sign(right - left), 0)
    inner = (iy > 0) & (iy < h - 1)
    down = heat[nn_, kk, np.minimum(iy + 1, h - 1), ix]
    up = heat[nn_, kk, np.maximum(iy - 1, 0), ix]
    hy += np.where(inner, 0.25 * np.sign(down - up), 0)
    return hx, hy, conf


def heatmap_to_canonical(hx, hy, boxes, hm_w, hm_h):
    """Continuous heatmap position -> canonical point through the crop's box [N, 4] (heatmaps hm_w x hm_h)."""
    bx, by, bw, bh = (boxes[:, i:i + 1] for i in range(4))
    return bx + (hx + 0.5) * bw / hm_w, by + (hy + 0.5) * bh / hm_h


def errors_percent(hx, hy, pts, sizes, diag, stride, in_w=128, in_h=256):
    """e = 100 * |pred - gt| / diag with gt in input pixels pts [N, K, 3] of a crop of canonical size sizes [N, 2],
    predictions decoded from heatmaps at `stride` input pixels a cell."""
    px = (hx + 0.5) * stride - 0.5
    py = (hy + 0.5) * stride - 0.5
    dx = (px - pts[:, :, 0]) * sizes[:, 0:1] / in_w
    dy = (py - pts[:, :, 1]) * sizes[:, 1:2] / in_h
    return 100 * np.hypot(dx, dy) / diag[:, None]


def summary(e, vis):
    """SPEC's figures over labelled keypoints (vis): NME, PCK@0.5/1.0, PCS@0.5/1.0."""
    ev = e[vis]
    worst = np.array([e[i][vis[i]].max() if vis[i].any() else 0.0 for i in range(len(e))])
    return {'nme': float(ev.mean()), 'pck@0.5': float((ev <= 0.5).mean()), 'pck@1.0': float((ev <= 1.0).mean()),
            'pcs@0.5': float((worst <= 0.5).mean()), 'pcs@1.0': float((worst <= 1.0).mean())}
