"""Test-set metrics of a checkpoint with the contract's crop and decode, written into the model card.

Crops come from the reference bbox (and, with --rois, from the ROI stage's boxes); decoding is
argmax + quarter offset. The pipeline's own figures (ROI stage, corner refinement, verdicts) come
from `xpole eval` (INFERENCE); these are the model's alone. Also checks that the exported ONNX
file gives the same heatmaps as torch, by running it through onnxruntime-node.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import dataset as ds
import xpole_crop as xc
from export import build, input_size
from metrics import decode, heatmap_to_canonical, summary

HERE = os.path.dirname(os.path.abspath(__file__))


def crops(samples, boxes_for):
    xs, kcs, boxes, diags, keep = [], [], [], [], []
    for i, s in enumerate(samples):
        frame = ds.read_frame(s['file'])
        h, w = frame.shape
        box = boxes_for(s)
        if box is None:
            continue
        cbox = xc.box_to_canonical(box, w, h, s['orientation'])
        xs.append(xc.crop(frame, cbox, s['orientation']))
        kcs.append(ds.keypoints_canonical(s['keypoints'], w, h, s['orientation']))
        boxes.append(cbox)
        diags.append(np.hypot(s['bbox'][2], s['bbox'][3]))
        keep.append(i)
    return np.stack(xs)[:, None], np.stack(kcs), np.array(boxes), np.array(diags), keep


def predict(net, x, batch=32):
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            out.append(net(torch.from_numpy(x[s:s + batch])).numpy())
    return np.concatenate(out)


def verdicts(px, conf, vis_pred_thr, pitch, lo=0.4, hi=1.6):
    """SPEC's verdict from canonical x of the poles (A0 C0 ... A15): PASS, or FAIL when a pole is
    below confidence or an overhang is out of spec."""
    out = []
    for i in range(len(px)):
        if (conf[i] < vis_pred_thr).any():
            out.append('FAIL')
            continue
        a, c = px[i][0::2], px[i][1::2]
        over = np.minimum(a[:-1] - c, a[1:] - c) * pitch[i]
        out.append('PASS' if ((over >= lo) & (over <= hi)).all() else 'FAIL')
    return out


def evaluate(net, samples, boxes_for, min_conf=0.3):
    x, kc, boxes, diag, keep = crops(samples, boxes_for)
    heat = predict(net, x)
    hx, hy, conf = decode(heat)
    px, py = heatmap_to_canonical(hx, hy, boxes, heat.shape[3], heat.shape[2])
    e = 100 * np.hypot(px - kc[:, :, 0], py - kc[:, :, 1]) / diag[:, None]
    vis = kc[:, :, 2] > 0
    m = summary(e, vis)
    m['images'] = len(keep)
    m['labelledBelowMinConfidence'] = float((conf[vis] < min_conf).mean())
    m['absentAboveMinConfidence'] = float((conf[~vis] >= min_conf).mean()) if (~vis).any() else 0.0
    m['absentKeypoints'] = int((~vis).sum())
    sel = [samples[i] for i in keep]
    exp = [s['expectedVerdict'] for s in sel]
    got = verdicts(px, conf, min_conf, np.array([s['pixelPitchMm'] for s in sel]))
    passes = [g for g, w in zip(got, exp) if w == 'PASS']
    fails = [g for g, w in zip(got, exp) if w == 'FAIL']
    if passes:
        m['overkill'] = float(np.mean([g != 'PASS' for g in passes]))
    if fails:
        m['escape'] = float(np.mean([g == 'PASS' for g in fails]))
    m['passExpected'], m['failExpected'] = len(passes), len(fails)
    return m, x


def onnx_check(onnx_path, net, x):
    """Max |torch - onnxruntime-node| over a few crops."""
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, 'in.f32')
        out = os.path.join(tmp, 'out.f32')
        x.astype('<f4').tofile(inp)
        subprocess.run(['node', os.path.join(HERE, 'run_onnx.mjs'), onnx_path, inp, str(len(x)), out], check=True,
                       cwd=os.path.dirname(HERE))
        got = np.fromfile(out, '<f4')
    want = predict(net, x).ravel()
    return float(np.abs(got - want).max())


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dataset', required=True)
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--rois', help="the ROI stage's dump for this dataset")
    p.add_argument('--onnx', default='models/xpole-hrnet.onnx')
    p.add_argument('--card', default='models/xpole-hrnet.json')
    p.add_argument('--limit', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--min-confidence', type=float, default=0.5, help="POLE_MISSING below this (the recipe's default)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ckpt = torch.load(a.checkpoint)
    want = input_size(ckpt)
    if want != [xc.INPUT_W, xc.INPUT_H]:
        sys.exit(f'{a.checkpoint} takes {want[0]} x {want[1]} inputs, the crop makes {xc.INPUT_W} x {xc.INPUT_H}: '
                 f'set XPOLE_INPUT_HEIGHT={want[1]}')
    net = build(ckpt)
    _, samples = ds.load_coco(a.dataset)
    if a.limit:
        samples = samples[:a.limit]
    t = time.time()
    result = {'dataset': os.path.abspath(a.dataset), 'decode': 'argmax + quarter offset',
              'epoch': ckpt['epoch'] + 1, 'minConfidence': a.min_confidence}
    result['referenceBox'], x = evaluate(net, samples, lambda s: s['bbox'], a.min_confidence)
    if a.rois:
        from rois import load_rois
        rois = load_rois(a.rois)
        result['roiStageBox'], _ = evaluate(net, samples, lambda s: rois.get(s['name']), a.min_confidence)
    result['seconds'] = round(time.time() - t)
    if a.onnx and os.path.exists(a.onnx):
        result['onnxMaxAbsDiffVsTorch'] = onnx_check(a.onnx, net, x[:8])
    print(json.dumps(result, indent=2))
    if a.card and os.path.exists(a.card):
        with open(a.card) as f:
            card = json.load(f)
        card.setdefault('metrics', {})['test'] = result
        card['metrics']['note'] = ('model alone on the test set (training never read it), Python decode; '
                                   "the pipeline's figures (ROI stage, corners, verdicts) are `xpole eval`'s, "
                                   'run by xpole eval (docs/inference.md)')
        with open(a.card, 'w') as f:
            json.dump(card, f, indent=2)
            f.write('\n')


if __name__ == '__main__':
    main()
