"""Recover a training checkpoint from a shipped ONNX model, to fine-tune a model whose checkpoint
was not kept (39625a5f, the fourth session's).

The export folds every BatchNorm into the convolution before it, so the ONNX file holds one
weight and bias per conv. The HRNet is rebuilt with those folded weights and each BatchNorm set
to the identity plus the folded bias (weight 1, running mean 0, running variance 1 - eps).
Fine-tune such a checkpoint with `train.py --freeze-bn`: batch statistics would undo the fold.

    /usr/bin/python3 training/from_onnx.py --onnx models/xpole-hrnet.onnx --out CKPT.pt
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

from hrnet import HRNet


def conv_bn_pairs(net):
    """Every Conv2d in execution order with the BatchNorm2d that follows it (None for the head)."""
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m)) for m in net.modules() if isinstance(m, nn.Conv2d)]
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 1, 256, 128))
    for h in hooks:
        h.remove()
    following = {}
    mods = list(net.modules())
    # A conv's BatchNorm is the next module registered after it (conv_bn, BasicBlock, Bottleneck, fuse rows).
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            following[m] = nxt if isinstance(nxt, nn.BatchNorm2d) else None
    return [(c, following[c]) for c in order]


def load_folded(onnx_path, card):
    arch = card['architecture']
    net = HRNet(keypoints=arch['keypoints'], width=arch['width'], stem=arch['stem'],
                stage1_blocks=arch['stage1']['bottlenecks'], stage1_planes=arch['stage1']['planes'])
    model = onnx.load(onnx_path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == 'Conv']
    pairs = conv_bn_pairs(net)
    if len(convs) != len(pairs):
        raise SystemExit(f'{onnx_path}: {len(convs)} Conv nodes, the HRNet of its card has {len(pairs)} convolutions')
    for node, (conv, bn) in zip(convs, pairs):
        w = inits[node.input[1]]
        b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise SystemExit(f'shape mismatch: ONNX {node.name} {w.shape} vs torch {tuple(conv.weight.shape)}')
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w))
            if bn is None:
                conv.bias.copy_(torch.from_numpy(b))
            else:
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    return net


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--onnx', default='models/xpole-hrnet.onnx')
    p.add_argument('--card', help='default: the .json beside the .onnx')
    p.add_argument('--out', required=True)
    a = p.parse_args()
    card_path = a.card or os.path.splitext(a.onnx)[0] + '.json'
    with open(card_path) as f:
        card = json.load(f)
    net = load_folded(a.onnx, card)
    # The rebuilt net must reproduce the ONNX model's heatmaps (run by onnxruntime-node, as evaluate.py does).
    x = np.random.default_rng(0).standard_normal((2, 1, 256, 128)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, 'in.f32'), os.path.join(tmp, 'out.f32')
        x.tofile(inp)
        subprocess.run(['node', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'run_onnx.mjs'),
                        a.onnx, inp, str(len(x)), out], check=True)
        want = np.fromfile(out, np.float32)
    net.eval()
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy().ravel()
    diff = float(np.abs(got - want).max())
    print(f'largest heatmap difference torch vs ONNX: {diff:.2e}')
    if diff > 1e-3:
        raise SystemExit('the recovered weights do not reproduce the ONNX model')
    cfg = {'keypoints': card['architecture']['keypoints'], 'width': card['architecture']['width'],
           'stem': card['architecture']['stem'], 'stage1_blocks': card['architecture']['stage1']['bottlenecks'],
           'stage1_planes': card['architecture']['stage1']['planes']}
    torch.save({'model': net.state_dict(), 'config': cfg, 'sigma': card['heatmap']['sigma'], 'foldedBn': True,
                'from': {'onnx': os.path.basename(a.onnx), 'sha256': card['sha256']}}, a.out)
    print(f'wrote {a.out} (model {card["sha256"][:8]}, BatchNorm folded: fine-tune with --freeze-bn)')


if __name__ == '__main__':
    main()
