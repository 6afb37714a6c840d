"""Train the xpole HRNet on SPEC's COCO datasets (see docs/training.md).

Weighted MSE on Gaussian heatmaps, Adam, cosine learning rate with a short warm-up. Every epoch
writes a checkpoint and a JSON log line; every improvement of the validation NME is exported at
once to ONNX + model card, so a shippable model always exists while training runs.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import random
import time

import cv2
import numpy as np
import torch

import dataset as ds
from export import export
from hrnet import HRNet
from metrics import decode, errors_percent


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_split(root, rois_path, variants, seed, cache_dir, log, second_pass=False):
    names, samples = ds.load_coco(root)
    rois = None
    if rois_path and os.path.exists(rois_path):
        from rois import load_rois
        rois = load_rois(rois_path)
    key = (f'{os.path.basename(os.path.normpath(root))}-v{variants}-s{seed}-r{1 if rois else 0}-n{len(samples)}'
           + ('-p2' if second_pass else '') + (f'-h{ds.IN_H}' if ds.IN_H != 256 else ''))
    cache = os.path.join(cache_dir, key + '.npz') if cache_dir else None
    diag = np.array([math.hypot(s['bbox'][2], s['bbox'][3]) for s in samples], np.float32)
    if cache and os.path.exists(cache):
        z = np.load(cache)
        log(f'{root}: {len(samples)} frames from cache {cache}')
        return names, samples, z['images'], z['points'], z['sizes'], diag
    t = time.time()
    images, points, sizes, used = ds.prepare(samples, rois, variants, seed, log, second_pass)
    log(f'{root}: {len(samples)} frames prepared in {time.time() - t:.0f} s ({used} crops from the ROI stage)')
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        np.savez(cache, images=images, points=points, sizes=sizes)
    return names, samples, images, points, sizes, diag


def anode_pitch(kps):
    """Anode-to-anode pitch in frame px: the median over labelled anode pairs (anodes are the even keypoints)."""
    a = [(i // 2, kps[i, :2]) for i in range(0, len(kps), 2) if kps[i, 2] > 0]
    d = [np.hypot(*(q - p)) / (j - i) for (i, p), (j, q) in zip(a, a[1:])]
    return float(np.median(d)) if d else float('inf')


def missing_balance(absent):
    """Per frame, the mean over its absent poles of (mean absence count / that pole's count); 1 for a
    frame with every pole. A pole absent more often than the others is not learnt as one that goes missing."""
    count = absent.sum(0).astype(np.float64)
    mean = count.sum() / max(int((count > 0).sum()), 1)  # over the poles ever absent (none: no warning)
    rarity = np.where(count > 0, mean / np.maximum(count, 1), 0.0)
    n_absent = absent.sum(1)
    return np.where(n_absent > 0, (absent * rarity).sum(1) / np.maximum(n_absent, 1), 1.0)


def save_atomic(obj, path):
    """A run stopped while saving (a session's end) leaves the previous checkpoint whole."""
    torch.save(obj, path + '.part')
    os.replace(path + '.part', path)


# Arguments a resumed run may give differently from the run it continues.
RESUME_MAY_CHANGE = {'resume', 'deadline', 'threads', 'log', 'val_every'}
# What last.pt holds beyond a model checkpoint, for --resume.
RESUME_STATE = ('optimizer', 'step', 'best', 'rng', 'torchRng', 'args')


def load_resume(a):
    """The state of the run --resume continues, checked before any data is loaded: the same
    arguments (but RESUME_MAY_CHANGE) and the same input size."""
    state = torch.load(a.resume)
    if 'optimizer' not in state:
        raise SystemExit(f'{a.resume} has no optimizer state: only a last.pt from this version of train.py can be resumed')
    changed = {key: (state['args'].get(key), val) for key, val in vars(a).items()
               if key not in RESUME_MAY_CHANGE and state['args'].get(key) != val}
    if changed:
        raise SystemExit(f'--resume {a.resume}: give the run its own arguments again; these differ (was, now): {changed}')
    if state['input'] != [ds.IN_W, ds.IN_H]:
        raise SystemExit(f"--resume {a.resume}: the run's input is {state['input'][0]}x{state['input'][1]}, this one "
                         f'{ds.IN_W}x{ds.IN_H}: set XPOLE_INPUT_HEIGHT={state["input"][1]}')
    return state


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--train', required=True, help='comma-separated dataset dirs, or a glob: new matches join at each epoch')
    p.add_argument('--val', required=True)
    p.add_argument('--rois-train')
    p.add_argument('--rois-val')
    p.add_argument('--work', default='/work/data/run', help='checkpoints and the data cache')
    p.add_argument('--models', default='models')
    p.add_argument('--log', default='training/logs/train-log.jsonl')
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--sigma', type=float, default=1.5, help='target Gaussian sigma in heatmap cells')
    p.add_argument('--head-stride', type=int, default=4, choices=(2, 4),
                   help='input pixels a heatmap cell: 4, or 2 with an upsampling block (fine-tuned from a stride-4 '
                        'checkpoint, the block starts as bilinear upsampling)')
    p.add_argument('--width', type=int, default=18)
    p.add_argument('--stem', type=int, default=32)
    p.add_argument('--stage1-planes', type=int, default=32)
    p.add_argument('--stage1-blocks', type=int, default=1)
    p.add_argument('--fg-weight', type=float, default=10.0, help='MSE weight 1 + fg * target')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--deadline', type=float, default=0, help='unix time: stop after the epoch that passes it')
    p.add_argument('--minutes', type=float, default=0,
                   help='train for this wall time instead of --epochs: the cosine schedule follows the clock '
                        '(not reproducible; for a shared, loaded machine)')
    p.add_argument('--val-every', type=float, default=150, help='seconds between validations (at least one per epoch beyond)')
    p.add_argument('--init', help='start from this checkpoint (fine-tuning)')
    p.add_argument('--resume', help="continue a stopped run from its last.pt (model, optimizer, step, RNG state); "
                                    "the run's other arguments must be given again unchanged")
    p.add_argument('--warmup', type=int, default=100)
    p.add_argument('--defect-boost', type=float, default=1.0,
                   help='sampling weight of the other FAIL frames (an outlying overhang), against 1 for PASS frames')
    p.add_argument('--missing-boost', type=float, default=3.0,
                   help='sampling weight of frames with an absent pole (POLE_MISSING is rare otherwise)')
    p.add_argument('--missing-balance', action='store_true',
                   help='scale each such frame\'s weight by how rare its absent poles are in the training set, so '
                        'every pole is seen absent about equally often (C10 is absent 17 times in 3000 frames, A3 4)')
    p.add_argument('--pitch-boost', type=float, default=1.0,
                   help='sampling weight of frames whose anode pitch is below --pitch-below (fine stacks, where most errors are)')
    p.add_argument('--pitch-below', type=float, default=13.0, help='anode-to-anode pitch in frame px for --pitch-boost')
    p.add_argument('--presence-weight', type=float, default=100.0,
                   help='weight of the presence loss: (heatmap peak - v)^2 per keypoint; 0 turns it off')
    p.add_argument('--absent-weight', type=float, default=10.0,
                   help='extra weight of absent keypoints inside the presence loss')
    p.add_argument('--second-pass', action='store_true',
                   help="train on a third crop per frame, the pipeline's second-pass box, and validate on that box")
    p.add_argument('--freeze-bn', action='store_true',
                   help='keep BatchNorm in inference mode (needed for a checkpoint from training/from_onnx.py)')
    p.add_argument('--data-seeds', default='{}', help='JSON recorded in the model card')
    p.add_argument('--keep-epochs', action='store_true',
                   help='also export every validated epoch to WORK/epochs/NN/ (model and card), so a check the '
                        'validation set cannot make (the real frames: training/real_gate.sh) can pick among them')
    a = p.parse_args()

    resumed = load_resume(a) if a.resume else None
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)
    seed_everything(a.seed)
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(os.path.dirname(a.log), exist_ok=True)
    os.makedirs(a.models, exist_ok=True)
    logf = open(a.log, 'a')

    def log(msg, **fields):
        line = {'t': time.strftime('%H:%M:%S'), 'msg': msg, **fields}
        print(json.dumps(line), flush=True)
        logf.write(json.dumps(line) + '\n')
        logf.flush()

    log('start', args=vars(a))
    cache = os.path.join(a.work, 'cache')
    loaded = {}

    def train_dirs():
        dirs = []
        for part in a.train.split(','):
            dirs += sorted(d for d in glob.glob(part)
                           if not d.endswith('.part') and os.path.exists(os.path.join(d, 'annotations.json')))
        return dirs

    def refresh():
        new = [d for d in train_dirs() if d not in loaded]
        for j, d in enumerate(new):
            loaded[d] = load_split(d, a.rois_train and a.rois_train.replace('{dir}', d), 3 if a.second_pass else 2,
                                   a.seed + 11 + 1000 * len(loaded), cache, log, a.second_pass)
        parts = list(loaded.values())
        return (parts[0][0], [s for p_ in parts for s in p_[1]], np.concatenate([p_[2] for p_ in parts]),
                np.concatenate([p_[3] for p_ in parts]))

    names, train_s, train_x, train_p = refresh()
    _, val_s, val_x, val_p, val_size, val_diag = load_split(a.val, a.rois_val, 1, a.seed + 12, cache, log, a.second_pass)
    k = len(names)

    net = HRNet(keypoints=k, width=a.width, stem=a.stem, stage1_blocks=a.stage1_blocks,
                stage1_planes=a.stage1_planes, head_stride=a.head_stride)
    init_info = None
    if a.init:
        init = torch.load(a.init)
        head_k = init['model']['head.weight'].shape[0]
        if head_k != k:
            # Another recipe: the backbone carries over; each new head channel starts as the old one
            # of the same kind of sheet (anodes even, cathodes odd) at the nearest relative height.
            state = {n_: v for n_, v in init['model'].items() if not n_.startswith('head.')}
            net.load_state_dict(state, strict=False)
            with torch.no_grad():
                for j in range(k):
                    at = j / (k - 1) * (head_k - 1)
                    i = min(range(j % 2, head_k, 2), key=lambda c: abs(c - at))
                    net.head.weight[j] = init['model']['head.weight'][i]
                    net.head.bias[j] = init['model']['head.bias'][i]
            log('init head mapped', fromKeypoints=head_k, toKeypoints=k)
        elif a.head_stride != init.get('config', {}).get('head_stride', 4):
            if any(n_.startswith('up.') for n_ in init['model']):
                raise SystemExit(f'{a.init} has a stride-2 head: fine-tune it with --head-stride 2')
            # From stride 4 to 2: everything loads but the upsampling block, which starts as bilinear.
            keys = net.load_state_dict(init['model'], strict=False)
            if keys.unexpected_keys or any(not n_.startswith('up.') for n_ in keys.missing_keys):
                raise SystemExit(f'{a.init} is not this architecture: missing {keys.missing_keys}, '
                                 f'unexpected {keys.unexpected_keys}')
            log('init upsampling block added', bilinear=keys.missing_keys)
        else:
            net.load_state_dict(init['model'])
        if init.get('foldedBn') and not a.freeze_bn:
            raise SystemExit(f'{a.init} has its BatchNorm folded into the convs (training/from_onnx.py): add --freeze-bn')
        with open(a.init, 'rb') as f:
            init_info = {'checkpoint': os.path.basename(a.init), 'sha256': hashlib.sha256(f.read()).hexdigest()}
        if 'from' in init:
            init_info['from'] = init['from']
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    n = len(train_s)
    total = n // a.batch * a.epochs
    warm = a.warmup

    def progress(step):
        if a.minutes:
            return min(1.0, (time.time() - t0) / (a.minutes * 60))
        return min(1.0, step / max(1, total))

    def lr_at(step):
        if step < warm:
            return a.lr * (step + 1) / warm
        return 1e-5 + 0.5 * (a.lr - 1e-5) * (1 + math.cos(math.pi * progress(step)))

    config = {'keypoints': k, 'width': a.width, 'stem': a.stem, 'stage1_blocks': a.stage1_blocks,
              'stage1_planes': a.stage1_planes, 'head_stride': a.head_stride}
    hm_w, hm_h = ds.heatmap_size(a.head_stride)
    rng = np.random.default_rng(a.seed)
    aug = ds.Augmenter(rng, enabled=True)
    plain = ds.Augmenter(rng, enabled=False)

    # Validation inputs are fixed: variant 0 (the ROI stage's box or a mildly jittered reference box;
    # with --second-pass the second pass's box, the crop the final poles come from).
    vx = np.zeros((len(val_s), 1, ds.IN_H, ds.IN_W), np.float32)
    vp = np.zeros((len(val_s), k, 3), np.float32)
    for i in range(len(val_s)):
        img, pts = plain(val_x[i, 0], val_p[i, 0])
        vx[i, 0], vp[i] = img, pts
    vt = np.stack([ds.targets(pts, a.sigma, a.head_stride) for pts in vp])

    def weighted_mse(pred, target):
        return ((pred - target) ** 2 * (1 + a.fg_weight * target)).mean() * 1000

    # The heatmap peak is the pole's confidence and decides POLE_MISSING. The pixel MSE alone barely
    # punishes a confident peak on a folded or absent sheet (one channel of 31, weight 1 per pixel),
    # so absent poles kept peaks of 0.55-0.85. This term trains the peak itself: 1 present, 0 absent.
    def presence_loss(pred, present):
        peak = pred.flatten(2).amax(2)
        w = 1 + (a.absent_weight - 1) * (1 - present)
        return ((peak - present) ** 2 * w).mean() * a.presence_weight

    def loss_fn(pred, target, present):
        loss = weighted_mse(pred, target)
        return loss + presence_loss(pred, present) if a.presence_weight else loss

    best = float('inf')
    step = 0
    t0 = time.time()
    epoch = -1
    last_val = 0.0
    if resumed:
        # A run that spans sessions: everything the loop carries from epoch to epoch comes back, so
        # the run goes on as if it had not stopped (the learning-rate schedule follows `step`).
        net.load_state_dict(resumed['model'])
        opt.load_state_dict(resumed['optimizer'])
        step, epoch, best = resumed['step'], resumed['epoch'], resumed['best']
        rng.bit_generator.state = resumed['rng']
        torch.set_rng_state(resumed['torchRng'])
        init_info = resumed['card']['training']['init']
        t0 -= resumed['card']['training']['minutes'] * 60
        log('resumed', checkpoint=a.resume, epoch=epoch, step=step, best=best)
    while True:
        epoch += 1
        if a.minutes:
            if progress(step) >= 1.0:
                break
            names, train_s, train_x, train_p = refresh()
            n = len(train_s)
        elif epoch >= a.epochs:
            break
        steps_per_epoch = n // a.batch
        net.train()
        if a.freeze_bn:
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
        if a.missing_boost != 1.0 or a.defect_boost != 1.0 or a.pitch_boost != 1.0 or a.missing_balance:
            failing = np.array([s.get('expectedVerdict') == 'FAIL' for s in train_s])
            absent = train_p[:, 0, :, 2] == 0
            w = np.where(absent.any(1), a.missing_boost, np.where(failing, a.defect_boost, 1.0))
            if a.missing_balance:
                w = w * missing_balance(absent)
            w = w * np.where(np.array([anode_pitch(s['keypoints']) for s in train_s]) < a.pitch_below, a.pitch_boost, 1.0)
            perm = rng.choice(n, n, p=w / w.sum())
        else:
            perm = rng.permutation(n)
        te = time.time()
        losses = []
        for b in range(steps_per_epoch):
            idx = perm[b * a.batch:(b + 1) * a.batch]
            xb = np.zeros((len(idx), 1, ds.IN_H, ds.IN_W), np.float32)
            tb = np.zeros((len(idx), k, hm_h, hm_w), np.float32)
            pb = np.zeros((len(idx), k), np.float32)
            for j, i in enumerate(idx):
                v = rng.integers(0, train_x.shape[1])
                img, pts = aug(train_x[i, v], train_p[i, v])
                xb[j, 0] = img
                tb[j] = ds.targets(pts, a.sigma, a.head_stride)
                pb[j] = pts[:, 2] > 0
            for g in opt.param_groups:
                g['lr'] = lr_at(step)
            if a.minutes and progress(step) >= 1.0:
                break
            loss = loss_fn(net(torch.from_numpy(xb)), torch.from_numpy(tb), torch.from_numpy(pb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if b % 20 == 0:
                print(f'epoch {epoch} step {b}/{steps_per_epoch} loss {np.mean(losses[-20:]):.4f} '
                      f'{(time.time() - te) / (b + 1):.2f} s/step lr {lr_at(step):.2e}', flush=True)
        train_time = time.time() - te
        final = progress(step) >= 1.0 if a.minutes else epoch == a.epochs - 1
        # Small epochs (while data chunks still arrive) would spend most of the time validating.
        if not final and time.time() - last_val < a.val_every:
            continue
        last_val = time.time()

        net.eval()
        preds = []
        vl = []
        with torch.no_grad():
            for s in range(0, len(vx), 64):
                out = net(torch.from_numpy(vx[s:s + 64]))
                vpres = torch.from_numpy((vp[s:s + 64, :, 2] > 0).astype(np.float32))
                vl.append(loss_fn(out, torch.from_numpy(vt[s:s + 64]), vpres).item() * len(out))
                preds.append(out.numpy())
        heat = np.concatenate(preds)
        hx, hy, conf = decode(heat)
        # input pixels -> frame pixels through the crop box size, then percent of the reference diagonal
        e = errors_percent(hx, hy, vp, val_size[:, 0], val_diag, a.head_stride)
        vis = vp[:, :, 2] > 0
        ev = e[vis]
        m = {
            'epoch': epoch, 'trainLoss': float(np.mean(losses)), 'valLoss': float(sum(vl) / len(vx)),
            'valNme': float(ev.mean()), 'valPck05': float((ev <= 0.5).mean()), 'valPck10': float((ev <= 1.0).mean()),
            'valPcs10': float(np.mean([(e[i][vis[i]] <= 1.0).all() for i in range(len(e))])),
            'valMissingOk': float(((conf < 0.3) == ~vis).mean()),
            'valAbsentAboveMinConf': float((conf[~vis] >= 0.3).mean()) if (~vis).any() else 0.0,
            'valLabelledBelowMinConf': float((conf[vis] < 0.3).mean()),
            'lr': lr_at(step), 'epochSeconds': round(train_time), 'elapsedMinutes': round((time.time() - t0) / 60, 1),
        }
        improved = m['valNme'] < best
        best = min(best, m['valNme'])
        ckpt = {'model': net.state_dict(), 'config': config, 'sigma': a.sigma, 'epoch': epoch, 'metrics': m,
                'optimizer': opt.state_dict(), 'step': step, 'best': best, 'rng': rng.bit_generator.state,
                'torchRng': torch.get_rng_state(), 'args': vars(a),
                'input': [ds.IN_W, ds.IN_H],
                'card': {'dataSeeds': json.loads(a.data_seeds),
                         'training': {'epochs': a.epochs if not a.minutes else None, 'minutesBudget': a.minutes or None,
                                      'epochsDone': epoch + 1, 'steps': step, 'batch': a.batch, 'lr': a.lr,
                                      'loss': f'MSE weighted 1 + {a.fg_weight} * target'
                                              + (f' + {a.presence_weight} * presence (peak - v)^2, absent x{a.absent_weight}'
                                                 if a.presence_weight else ''),
                                      'secondPassCrops': a.second_pass, 'frozenBn': a.freeze_bn,
                                      'missingBoost': a.missing_boost, 'missingBalance': a.missing_balance, 'defectBoost': a.defect_boost, 'pitchBoost': a.pitch_boost, 'pitchBelow': a.pitch_below, 'seed': a.seed, 'init': init_info,
                                      'trainFrames': n, 'valFrames': len(val_s),
                                      'minutes': round((time.time() - t0) / 60, 1)},
                         'validation': m}}
        save_atomic(ckpt, os.path.join(a.work, 'last.pt'))
        if improved:
            # The best checkpoint is what gets kept (training/init/): without the loop's state, a third of the size.
            save_atomic({key: v for key, v in ckpt.items() if key not in RESUME_STATE}, os.path.join(a.work, 'best.pt'))
            export(ckpt, os.path.join(a.models, 'xpole-hrnet.onnx'), os.path.join(a.models, 'xpole-hrnet.json'))
            m['exported'] = True
        if a.keep_epochs:
            kept = os.path.join(a.work, 'epochs', f'{epoch:02d}')
            os.makedirs(kept, exist_ok=True)
            export(ckpt, os.path.join(kept, 'xpole-hrnet.onnx'), os.path.join(kept, 'xpole-hrnet.json'))
        log('epoch', **m)
        if a.deadline and time.time() > a.deadline:
            log('deadline reached', epoch=epoch)
            break
    log('done', best=best, minutes=round((time.time() - t0) / 60, 1))


if __name__ == '__main__':
    main()
