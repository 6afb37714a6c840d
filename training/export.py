"""Export a checkpoint to ONNX (opset 13, dynamic batch) and write the model card beside it."""
import argparse
import hashlib
import json
import os

import onnx
import torch

from hrnet import HRNet, count_macs, count_params


def keypoint_names(anodes=16):
    names = []
    for i in range(anodes):
        names.append(f'A{i}')
        if i < anodes - 1:
            names.append(f'C{i}')
    return names


def build(ckpt):
    cfg = ckpt['config']
    net = HRNet(keypoints=cfg['keypoints'], width=cfg['width'], stem=cfg['stem'],
                stage1_blocks=cfg['stage1_blocks'], stage1_planes=cfg['stage1_planes'],
                head_stride=cfg.get('head_stride', 4))
    net.load_state_dict(ckpt['model'])
    net.eval()
    return net


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def input_size(ckpt):
    """[width, height] of the model input; checkpoints that do not say are 128 x 256."""
    return list(ckpt.get('input', [128, 256]))


def export(ckpt, onnx_path, card_path, extra=None):
    net = build(ckpt)
    in_w, in_h = input_size(ckpt)
    stride = net.config['headStride']
    tmp = onnx_path + '.tmp'
    torch.onnx.export(net, torch.zeros(1, 1, in_h, in_w), tmp, opset_version=13,
                      input_names=['input'], output_names=['heatmaps'],
                      dynamic_axes={'input': {0: 'N'}, 'heatmaps': {0: 'N'}}, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(tmp))
    os.replace(tmp, onnx_path)
    macs = count_macs(net, (1, 1, in_h, in_w))
    arch = dict(net.config)
    arch.update(type='HRNet', params=count_params(net), macs=macs, flops=2 * macs,
                flopsNote=f'2 x multiply-accumulates of all convolutions for one {in_h}x{in_w} input')
    # Recipes interleave A C A: K keypoints are (K + 1) / 2 anodes (the default recipe: 31, 16).
    anodes = (ckpt['config']['keypoints'] + 1) // 2
    card = {
        'name': 'xpole-hrnet',
        'file': os.path.basename(onnx_path),
        'sha256': sha256(onnx_path),
        'architecture': arch,
        'input': {'name': 'input', 'width': in_w, 'height': in_h, 'channels': 1,
                  'normalization': 'zscore-per-crop', 'crop': 'training/xpole_crop.py (model contract)'},
        'output': {'name': 'heatmaps'},
        'heatmap': {'width': in_w // stride, 'height': in_h // stride, 'stride': stride, 'sigma': ckpt['sigma']},
        'recipe': f'stack-a{anodes}c{anodes - 1}',
        'keypoints': keypoint_names(anodes),
        'opset': 13,
    }
    card.update(ckpt.get('card', {}))
    if extra:
        card.update(extra)
    tmpc = card_path + '.tmp'
    with open(tmpc, 'w') as f:
        json.dump(card, f, indent=2)
        f.write('\n')
    os.replace(tmpc, card_path)
    return card


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--onnx', default='models/xpole-hrnet.onnx')
    p.add_argument('--card', default='models/xpole-hrnet.json')
    a = p.parse_args()
    torch.set_num_threads(2)
    c = export(torch.load(a.checkpoint), a.onnx, a.card)
    print(json.dumps({k: c[k] for k in ('file', 'sha256')}))
