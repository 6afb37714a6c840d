"""Predictions on the real frames (../shared/real-frames) inside the authors' ROI boxes: a montage of
the crops with the decoded poles (anodes green, cathodes red, dim when below min confidence) and
per-frame confidence figures. Usage: real_frames.py --checkpoint CKPT [--out montage.png]."""
import argparse
import json
import os

import cv2
import numpy as np
import torch

import dataset as ds
import xpole_crop as xc
from export import build
from metrics import decode

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.path.normpath(os.path.join(HERE, '..', '..', 'shared', 'real-frames'))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--real', default=REAL)
    p.add_argument('--orientation', default='tips-right')
    p.add_argument('--out', default='/tmp/xpole-real-montage.png')
    p.add_argument('--min-conf', type=float, default=0.3)
    a = p.parse_args()
    torch.set_num_threads(2)
    net = build(torch.load(a.checkpoint))
    boxes = json.load(open(os.path.join(a.real, 'roi-boxes.json')))['boxes']
    tiles, rows = [], []
    for name, box in sorted(boxes.items()):
        frame = ds.read_frame(os.path.join(a.real, 'images', name))
        h, w = frame.shape
        cbox = xc.box_to_canonical(box, w, h, a.orientation)
        x = xc.crop(frame, cbox, a.orientation)
        with torch.no_grad():
            heat = net(torch.from_numpy(x[None, None])).numpy()
        hx, hy, conf = decode(heat)
        hx, hy, conf = hx[0], hy[0], conf[0]
        u8 = np.clip(x * 40 + 128, 0, 255).astype(np.uint8)
        c = cv2.cvtColor(cv2.resize(u8, (256, 512), interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2BGR)
        for i in range(len(hx)):
            px, py = ((hx[i] + 0.5) * 4 - 0.5) * 2, ((hy[i] + 0.5) * 4 - 0.5) * 2
            col = (0, 200, 0) if i % 2 == 0 else (0, 0, 255)
            if conf[i] < a.min_conf:
                col = tuple(v // 3 for v in col)
            cv2.circle(c, (int(round(px)), int(round(py))), 3, col, -1)
        cv2.putText(c, name[:14], (2, 12), 0, 0.4, (255, 255, 0), 1)
        tiles.append(c)
        rows.append({'frame': name, 'minConf': float(conf.min()), 'meanConf': float(conf.mean()),
                     'below': int((conf < a.min_conf).sum()),
                     'orderOk': bool(np.all(np.diff(hy) > 0))})
        print(json.dumps(rows[-1]))
    per_row = 9
    blank = np.zeros_like(tiles[0])
    lines = [np.concatenate(tiles[i:i + per_row] + [blank] * (per_row - len(tiles[i:i + per_row])), 1)
             for i in range(0, len(tiles), per_row)]
    cv2.imwrite(a.out, np.concatenate(lines, 0))
    print(json.dumps({'frames': len(rows), 'meanConf': float(np.mean([r['meanConf'] for r in rows])),
                      'framesAllAboveMinConf': sum(r['below'] == 0 for r in rows),
                      'framesOrderOk': sum(r['orderOk'] for r in rows), 'montage': a.out}))


if __name__ == '__main__':
    main()
