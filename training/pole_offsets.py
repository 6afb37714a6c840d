"""Measures the model's per-pole bias on training frames and writes it into the model card.

Decoded with DARK, the heatmaps put the outermost sheets' poles 0.13-0.16 half pitch inside the
stack, on the model's own training frames as on held-out ones (docs/inference.md). The pipeline
subtracts the bias measured here (src/vision/offsets.ts), for the decoder it was measured with:
per pole, the median of (CNN pole - labelled pole) in canonical orientation, in units of the
frame's half pitch, over PASS-expected frames whose poles are all confident. The CNN poles come
from `xpole inspect` with the corner refinement and any earlier offsets switched off.

  /usr/bin/python3 training/pole_offsets.py --card models/xpole-hrnet.json \
      --dataset /work/data/xpole/train-1001 --dataset /work/data/xpole/train-1002
"""
import argparse, json, os, re, subprocess, sys, tempfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Frame direction -> canonical direction (tips +x): only the rotation part, for differences.
CANON = {'tips-right': lambda x, y: (x, y), 'tips-left': lambda x, y: (-x, y),
         'tips-up': lambda x, y: (-y, x), 'tips-down': lambda x, y: (y, -x)}


def half_pitch(yc, conf, min_conf):
    """As src/vision/offsets.ts halfPitch: median spacing of neighbouring confident poles."""
    gaps = [yc[i + 1] - yc[i] for i in range(len(yc) - 1) if conf[i] >= min_conf and conf[i + 1] >= min_conf]
    if len(gaps) < 3:
        return None
    h = float(np.median(gaps))
    return h if h > 0 else None


def inspect(dataset, model, orientation, files, decode):
    with tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False) as cfg:
        cfg.write(f'orientation: {orientation}\nmodel:\n  path: {model}\n  providers: [cpu]\n'
                  f'pipeline:\n  refine: false\n  poleOffsets: false\n  flipTest: false\n  decode: {decode}\n')
    try:
        out = subprocess.run(['node', os.path.join(ROOT, 'bin/xpole.js'), 'inspect', '--config', cfg.name, '--json',
                              *[os.path.join(dataset, 'images', f) for f in files]],
                             check=False, capture_output=True, text=True)
    finally:
        os.unlink(cfg.name)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{')]


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--card', required=True)
    p.add_argument('--model', help='default: the card path with .onnx')
    p.add_argument('--dataset', action='append', required=True)
    p.add_argument('--min-confidence', type=float, default=0.5)
    p.add_argument('--decode', choices=['dark', 'argmax'], default='dark', help='the decoder the offsets belong to')
    a = p.parse_args()
    model = a.model or a.card[:-5] + '.onnx'
    card = json.load(open(a.card))
    k = len(card['keypoints'])
    rel = []
    for ds in a.dataset:
        ann = json.load(open(os.path.join(ds, 'annotations.json')))
        kp = {x['image_id']: x['keypoints'] for x in ann['annotations']}
        by_name = {im['file_name']: im for im in ann['images']}
        groups = {}
        for im in ann['images']:
            if im['xpole'].get('expectedVerdict') == 'PASS':
                groups.setdefault(im['xpole']['orientation'], []).append(im['file_name'])
        for o, files in groups.items():
            for r in inspect(ds, model, o, files, a.decode):
                poles = r.get('poles') or []
                if len(poles) != k or any(q['conf'] < a.min_confidence for q in poles):
                    continue
                im = by_name[os.path.basename(r['frame'])]
                g = kp[im['id']]
                if any(g[3 * i + 2] == 0 for i in range(k)):
                    continue
                to = CANON[o]
                pc = np.array([to(q['x'], q['y']) for q in poles])
                gc = np.array([to(g[3 * i], g[3 * i + 1]) for i in range(k)])
                h = half_pitch(pc[:, 1] - pc[0, 1], [q['conf'] for q in poles], a.min_confidence)
                if h:
                    rel.append((pc - gc) / h)
    if len(rel) < 50:
        sys.exit(f'only {len(rel)} usable frames: need at least 50 PASS frames with every pole confident')
    bias = np.median(np.stack(rel), axis=0)
    card['poleOffsets'] = {
        'unit': 'half-pitch',
        'decode': a.decode,
        'offsets': [[round(float(-dx), 4), round(float(-dy), 4)] for dx, dy in bias],
        'frames': len(rel),
        'datasets': [os.path.basename(os.path.normpath(d)) for d in a.dataset],
        'command': 'training/pole_offsets.py (median CNN-pole bias, refinement off, on training frames)',
    }
    text = json.dumps(card, indent=2)
    # One [dx, dy] pair a line, as the rest of the card's short lists.
    text = re.sub(r'\[\s+(-?[\d.e-]+),\s+(-?[\d.e-]+)\s+\]', r'[\1, \2]', text)
    with open(a.card, 'w') as f:
        f.write(text + '\n')
    worst = np.abs(bias).max(axis=1)
    print(f'{len(rel)} frames; largest offsets (half pitches):',
          ', '.join(f"{card['keypoints'][i]} {worst[i]:.3f}" for i in np.argsort(-worst)[:6]))


if __name__ == '__main__':
    main()
