"""HRNet (Sun et al., CVPR 2019; the pose variant of its reference code), sized for a 2-core CPU.

Stem: two 3x3 stride-2 convs (1/4 of the input). Stage 1: bottlenecks at 1/4. Stages 2, 3, 4
keep 2, 3, 4 parallel branches at 1/4, 1/8, 1/16, 1/32 with widths W, 2W, 4W, 8W; every module
ends in a multi-scale fusion (exchange unit: each branch receives the sum of all branches,
upsampled by 1x1 conv + nearest upsampling or downsampled by strided 3x3 convs). The head is a
1x1 conv on the highest-resolution branch: K heatmaps at 1/4 of the input. With head_stride 2 an
upsampling block comes first (a learnt 4x4 transposed conv, stride 2, and a 3x3 conv): heatmaps at
1/2 of the input, where the finest stacks' neighbouring tips lie 3-4 cells apart instead of 1.6-2.
"""
import torch
import torch.nn as nn

BN_MOMENTUM = 0.1


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def conv_bn(cin, cout, k, stride, relu):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks followed by the multi-scale fusion."""

    def __init__(self, widths, blocks, multi_scale_output=True):
        super().__init__()
        self.n = len(widths)
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(w, w) for _ in range(blocks)]) for w in widths)
        outs = self.n if multi_scale_output else 1
        self.fuse = nn.ModuleList()
        for i in range(outs):
            row = nn.ModuleList()
            for j in range(self.n):
                if j > i:  # lower resolution -> up
                    row.append(nn.Sequential(
                        nn.Conv2d(widths[j], widths[i], 1, bias=False),
                        nn.BatchNorm2d(widths[i], momentum=BN_MOMENTUM),
                        nn.Upsample(scale_factor=2 ** (j - i), mode='nearest')))
                elif j == i:
                    row.append(nn.Identity())
                else:  # higher resolution -> down by strided 3x3 convs
                    steps = [conv_bn(widths[j], widths[j], 3, 2, True) for _ in range(i - j - 1)]
                    steps.append(conv_bn(widths[j], widths[i], 3, 2, False))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs):
        xs = [b(x) for b, x in zip(self.branches, xs)]
        out = []
        for row in self.fuse:
            y = row[0](xs[0])
            for j in range(1, self.n):
                y = y + row[j](xs[j])
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    def __init__(self, keypoints=31, width=18, stem=64, stage1_blocks=1, stage1_planes=64,
                 blocks=2, modules=(1, 1, 1), head_stride=4):
        super().__init__()
        if head_stride not in (2, 4):
            raise ValueError(f'head_stride {head_stride}: 4 (the backbone\'s finest branch) or 2 (one upsampling block)')
        self.config = dict(width=width, stem=stem, stage1={'bottlenecks': stage1_blocks, 'planes': stage1_planes},
                           stages=[{'branches': b + 2, 'modules': m, 'basicBlocksPerBranch': blocks}
                                   for b, m in enumerate(modules)],
                           keypoints=keypoints, headStride=head_stride)
        self.stem = nn.Sequential(conv_bn(1, stem, 3, 2, True), conv_bn(stem, stem, 3, 2, True))
        c1 = stage1_planes * Bottleneck.expansion
        down = nn.Sequential(nn.Conv2d(stem, c1, 1, bias=False), nn.BatchNorm2d(c1, momentum=BN_MOMENTUM))
        layers = [Bottleneck(stem, stage1_planes, downsample=down)]
        layers += [Bottleneck(c1, stage1_planes) for _ in range(stage1_blocks - 1)]
        self.layer1 = nn.Sequential(*layers)

        widths = [width * 2 ** i for i in range(4)]
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = [c1]
        for s, n_modules in enumerate(modules):
            cur = widths[:s + 2]
            trans = nn.ModuleList()
            for i, w in enumerate(cur):
                if i < len(prev):
                    trans.append(conv_bn(prev[i], w, 3, 1, True) if prev[i] != w else nn.Identity())
                else:  # a new, lower-resolution branch from the lowest existing one
                    trans.append(conv_bn(prev[-1], w, 3, 2, True))
            self.transitions.append(trans)
            last = s == len(modules) - 1
            self.stages.append(nn.Sequential(*[
                HighResolutionModule(cur, blocks, multi_scale_output=not (last and m == n_modules - 1))
                for m in range(n_modules)]))
            prev = cur
        self.up = None
        if head_stride == 2:
            self.up = nn.Sequential(nn.ConvTranspose2d(widths[0], widths[0], 4, 2, 1, bias=False), nn.ReLU(inplace=True),
                                    nn.Conv2d(widths[0], widths[0], 3, 1, 1), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(widths[0], keypoints, 1)
        self._init()
        if self.up is not None:
            self.init_up_as_bilinear()

    def init_up_as_bilinear(self):
        """The upsampling block as plain bilinear upsampling of each channel: the branch's features
        are non-negative (they leave a ReLU), so both ReLUs pass them, and a 1/4-stride head's
        weights, loaded into `head`, start out giving its own heatmaps upsampled."""
        deconv, conv = self.up[0], self.up[2]
        w = torch.tensor([0.25, 0.75, 0.75, 0.25])
        kernel = w[:, None] * w[None, :]
        with torch.no_grad():
            deconv.weight.zero_()
            conv.weight.zero_()
            conv.bias.zero_()
            for c in range(deconv.weight.shape[0]):
                deconv.weight[c, c] = kernel
                conv.weight[c, c, 1, 1] = 1.0

    def _init(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        xs = [x]
        for trans, stage in zip(self.transitions, self.stages):
            ys = []
            for i, t in enumerate(trans):
                src = xs[i] if i < len(xs) else xs[-1]
                ys.append(t(src))
            xs = ys
            for module in stage:
                xs = module(xs)
        x = xs[0] if self.up is None else self.up(xs[0])
        return self.head(x)


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def count_macs(model, shape=(1, 1, 256, 128)):
    """Multiply-accumulates of the convolutions for one input (BN, ReLU, adds and upsampling excluded)."""
    total = [0]

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):  # each input cell meets every kernel tap once
            k //= m.stride[0] * m.stride[1]
        total[0] += out.numel() // out.shape[0] * (m.in_channels // m.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(shape))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total[0]


if __name__ == '__main__':
    import sys
    import time
    torch.set_num_threads(2)
    width = int(sys.argv[1]) if len(sys.argv) > 1 else 18
    net = HRNet(width=width)
    out = net(torch.zeros(2, 1, 256, 128))
    macs = count_macs(net)
    print(f'width {width}: params {count_params(net):,}, MACs {macs / 1e9:.3f} G, FLOPs {2 * macs / 1e9:.3f} G, out {tuple(out.shape)}')
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(32, 1, 256, 128)
    for i in range(3):
        t = time.time()
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f'train step batch 32: {time.time() - t:.2f} s')
