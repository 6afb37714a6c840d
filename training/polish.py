"""The pole polisher (src/vision/polish.ts): a small CNN that tells, from a 32 x 32 full-resolution
patch centred on a pole, how far the sheet's apex lies from the patch centre.

  polish.py patches OUT.npz DIR...      patches around the labelled apexes of DIRs' frames, displaced
                                        at random (the errors the heatmaps make and more)
  polish.py train DATA.npz OUT.pt       fixed steps, seeded: same data, same model
  polish.py export CKPT.pt OUT.onnx     ONNX + card (OUT.json) with the held-out patch errors
  polish.py peer --frame RAW --width W --height H --depth 8|16 --orientation O --poles x,y,... \
      --kinds ACA... --out OUT.f32          the model input for those poles (test/polish.test.ts)

The patch contract is polishPatches() in src/vision/polish.ts: canonical orientation (tips +x),
rows across the sheets, columns along them, the grid centred exactly on the pole; channel 0
z-scored per patch with the deviation floored at 1% of the joint range of the frame's patches;
channel 1 +1 for an anode, -1 for a cathode. The target is the apex minus the patch centre in
canonical frame pixels (along, across).
"""
import argparse, hashlib, json, math, os, time
import numpy as np
import cv2
from xpole_crop import ORIENTATIONS, from_canonical

P = 32
ANODE, CATHODE = 1.0, -1.0
MAX_MOVE = 3.0


def canonical_axes(o):
    """Canonical +x (where tips point) and +y as frame-pixel vectors (the maps are affine)."""
    ox, oy = from_canonical(0, 0, 1, 1, o)
    (ax, ay), (bx, by) = from_canonical(1, 0, 1, 1, o), from_canonical(0, 1, 1, 1, o)
    return (ax - ox, ay - oy), (bx - ox, by - oy)


AXES = {o: canonical_axes(o) for o in ORIENTATIONS}


def patches(img, orient, cx, cy):
    """P x P patches centred exactly at (cx, cy), sampled bilinearly, edges clamped."""
    (ax, ay), (vx, vy) = AXES[orient]
    g = np.arange(P, dtype=np.float64) - (P - 1) / 2
    u, v = np.meshgrid(g, g)
    n = len(cx)
    fx = np.clip(cx[:, None, None] + u * ax + v * vx, 0, img.shape[1] - 1)
    fy = np.clip(cy[:, None, None] + u * ay + v * vy, 0, img.shape[0] - 1)
    x0 = np.floor(fx).astype(np.int64); y0 = np.floor(fy).astype(np.int64)
    x1 = np.minimum(x0 + 1, img.shape[1] - 1); y1 = np.minimum(y0 + 1, img.shape[0] - 1)
    wx = fx - x0; wy = fy - y0
    top = img[y0, x0] * (1 - wx) + img[y0, x1] * wx
    bottom = img[y1, x0] * (1 - wx) + img[y1, x1] * wx
    return (top * (1 - wy) + bottom * wy).reshape(n, P, P)


def normalize(p):
    floor = 0.01 * max(float(p.max() - p.min()), 1e-6)
    m = p.mean(axis=(1, 2), keepdims=True)
    s = np.maximum(p.std(axis=(1, 2), keepdims=True), floor)
    return ((p - m) / s).astype(np.float32)


def kinds(names):
    return np.array([ANODE if n.startswith('A') else CATHODE for n in names], np.float32)


def make_patches(args):
    rng = np.random.default_rng(args.seed)
    X, K, Y = [], [], []
    for ds in args.dirs:
        d = json.load(open(os.path.join(ds, 'annotations.json')))
        kind = kinds(d['categories'][0]['keypoints'])
        ann = {a['image_id']: a for a in d['annotations']}
        for im in d['images']:
            kp = np.array(ann[im['id']]['keypoints'], np.float64).reshape(-1, 3)
            idx = np.nonzero(kp[:, 2] == 2)[0]
            if len(idx) == 0:
                continue
            img = cv2.imread(os.path.join(ds, 'images', im['file_name']), cv2.IMREAD_UNCHANGED).astype(np.float64)
            o = im['xpole']['orientation']
            (ax, ay), (vx, vy) = AXES[o]
            for _ in range(args.reps):
                n = len(idx)
                mode = rng.random(n)
                # Half near the apex (the heatmaps' usual error), a third along the sheet up to 5 px
                # (tips short of a faint apex), the rest across up to 2.5 px.
                du = np.where(mode < 0.5, rng.normal(0, 0.8, n), np.where(mode < 0.85, rng.uniform(-5, 5, n), rng.normal(0, 1.5, n)))
                dv = np.where(mode < 0.85, rng.normal(0, 0.8, n), rng.uniform(-2.5, 2.5, n))
                p = patches(img, o, kp[idx, 0] + du * ax + dv * vx, kp[idx, 1] + du * ay + dv * vy)
                X.append(normalize(p).astype(np.float16))
                K.append(kind[idx])
                Y.append(np.stack([-du, -dv], 1).astype(np.float32))
        print(f'{ds}: {sum(len(x) for x in X)} patches', flush=True)
    np.savez(args.out, X=np.concatenate(X), K=np.concatenate(K), Y=np.concatenate(Y))


def net():
    import torch.nn as nn

    def block(i, o, stride=1):
        return [nn.Conv2d(i, o, 3, stride=stride, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
    # 32 -> 16 -> 8 -> 4: about 2.7 M multiply-accumulates a patch.
    return nn.Sequential(*block(2, 12), *block(12, 24, 2), *block(24, 32, 2), *block(32, 48), *block(48, 64, 2),
                         nn.Flatten(), nn.Linear(64 * 16, 64), nn.ReLU(inplace=True), nn.Linear(64, 2))


def inputs(torch, X, K):
    x = torch.from_numpy(np.asarray(X, np.float32))[:, None]
    k = torch.from_numpy(np.asarray(K, np.float32))[:, None, None, None].expand(-1, 1, P, P)
    return torch.cat([x, k], 1)


HELD_OUT = 5000


def held_out_errors(torch, m, X, K, Y):
    m.eval()
    with torch.no_grad():
        pred = torch.cat([m(inputs(torch, X[j:j + 1000], K[j:j + 1000])) for j in range(0, len(X), 1000)]).numpy()
    e = np.hypot(*(pred - Y).T)
    e0 = np.hypot(*Y.T)
    return {'medianPx': round(float(np.median(e)), 3), 'p90Px': round(float(np.quantile(e, 0.9)), 3),
            'displacedMedianPx': round(float(np.median(e0)), 3), 'displacedP90Px': round(float(np.quantile(e0, 0.9)), 3)}


def train(args):
    import torch
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    z = np.load(args.data)
    X, K, Y = z['X'], z['K'], z['Y']
    # The first patches are held out (they come from the first frames of the first folder).
    n = len(X)
    m = net()
    opt = torch.optim.Adam(m.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    step, t0 = 0, time.time()
    while step < args.steps:
        perm = rng.permutation(np.arange(HELD_OUT, n))
        for b in range(0, len(perm) - args.batch + 1, args.batch):
            if step >= args.steps:
                break
            for g in opt.param_groups:
                g['lr'] = 1e-5 + (args.lr - 1e-5) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
            i = np.sort(perm[b:b + args.batch])
            xb = inputs(torch, X[i], K[i])
            yb = Y[i]
            if rng.random() < 0.5:  # top <-> bottom mirror: the across offset changes sign
                xb = torch.flip(xb, [2])
                yb = yb * np.array([1, -1], np.float32)
            m.train()
            loss = torch.nn.functional.smooth_l1_loss(m(xb), torch.from_numpy(yb), beta=0.5)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 1000 == 0 or step == args.steps:
                h = held_out_errors(torch, m, X[:HELD_OUT], K[:HELD_OUT], Y[:HELD_OUT])
                print(json.dumps({'step': step, 'minutes': round((time.time() - t0) / 60, 1), 'loss': round(loss.item(), 4), **h}), flush=True)
    torch.save({'model': m.state_dict(), 'heldOut': h, 'steps': args.steps, 'lr': args.lr, 'batch': args.batch,
                'seed': args.seed, 'data': os.path.basename(args.data)}, args.out)


def export(args):
    import torch
    ck = torch.load(args.checkpoint)
    m = net()
    m.load_state_dict(ck['model'])
    m.eval()
    torch.onnx.export(m, torch.zeros(1, 2, P, P), args.out, input_names=['input'], output_names=['offsets'],
                      dynamic_axes={'input': {0: 'n'}, 'offsets': {0: 'n'}}, opset_version=13)
    sha = hashlib.sha256(open(args.out, 'rb').read()).hexdigest()
    card = {
        'name': os.path.basename(args.out).removesuffix('.onnx') + '-' + sha[:8],
        'file': os.path.basename(args.out),
        'sha256': sha,
        'architecture': 'CNN: conv3x3 2-12, 12-24 /2, 24-32 /2, 32-48, 48-64 /2 (BatchNorm, ReLU), fc 1024-64-2',
        'parameters': sum(p.numel() for p in m.parameters()),
        'input': {'patch': P, 'anode': ANODE, 'cathode': CATHODE,
                  'normalization': 'z-score per patch, deviation floored at 1% of the patches\' joint range'},
        'output': 'apex minus patch centre, canonical frame px (along the sheets, across)',
        'maxMovePx': MAX_MOVE,
        'training': {'command': 'npm run train:polish', 'steps': ck['steps'], 'lr': ck['lr'], 'batch': ck['batch'],
                     'seed': ck['seed'], 'data': args.data_note},
        'heldOut': ck['heldOut'],
    }
    with open(args.out.removesuffix('.onnx') + '.json', 'w') as f:
        json.dump(card, f, indent=2)
        f.write('\n')
    print(json.dumps(card, indent=2))


def peer(args):
    dtype = np.uint8 if args.depth == 8 else np.uint16
    img = np.fromfile(args.frame, dtype=dtype).reshape(args.height, args.width).astype(np.float64)
    xy = np.array([float(v) for v in args.poles.split(',')]).reshape(-1, 2)
    p = normalize(patches(img, args.orientation, xy[:, 0], xy[:, 1]))
    k = kinds(list(args.kinds))
    out = np.concatenate([p[:, None], np.broadcast_to(k[:, None, None, None], p[:, None].shape)], 1)
    out.astype(np.float32).tofile(args.out)


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest='cmd', required=True)
    a = sp.add_parser('patches'); a.add_argument('out'); a.add_argument('dirs', nargs='+')
    a.add_argument('--reps', type=int, default=2); a.add_argument('--seed', type=int, default=0)
    a = sp.add_parser('train'); a.add_argument('data'); a.add_argument('out')
    a.add_argument('--steps', type=int, default=10000); a.add_argument('--batch', type=int, default=256)
    a.add_argument('--lr', type=float, default=2e-3); a.add_argument('--seed', type=int, default=0)
    a.add_argument('--threads', type=int, default=2)
    a = sp.add_parser('export'); a.add_argument('checkpoint'); a.add_argument('out')
    a.add_argument('--data-note', default='')
    a = sp.add_parser('peer'); a.add_argument('--frame', required=True); a.add_argument('--width', type=int, required=True)
    a.add_argument('--height', type=int, required=True); a.add_argument('--depth', type=int, choices=[8, 16], required=True)
    a.add_argument('--orientation', choices=list(AXES), required=True); a.add_argument('--poles', required=True)
    a.add_argument('--kinds', required=True); a.add_argument('--out', required=True)
    args = ap.parse_args()
    {'patches': make_patches, 'train': train, 'export': export, 'peer': peer}[args.cmd](args)
