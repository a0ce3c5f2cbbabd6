"""PyTorch peers for nabla's se-resnet20, vgg-small and inception-mini (src/models/), built
layer for layer as nabla builds them, on Fashion-MNIST 1x28x28, batch 128, Adam 1e-3: training
img/s over --steps steps after 20 warm-up steps, batch-1000 inference img/s, peak RSS. The same
protocol as ../shared/peers/bench_torch_resnet.py (which covers resnet20/32/56). RESULT {json}
last. Outside the repository's dependencies: run it from a virtualenv with torch and numpy.

    OMP_NUM_THREADS=2 python scripts/peers/bench_torch_zoo.py --model vgg-small --channels-last

One difference that changes values but not cost: Keras' "same" padding of inception-mini's
3x3/2 max-pools pads 0 before and 1 after; PyTorch pads 1 on both sides (same output size).
"""
import argparse, gzip, json, os, resource, time
import numpy as np, torch, torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument('--model', required=True, choices=['se-resnet20', 'vgg-small', 'inception-mini'])
p.add_argument('--steps', type=int, default=100); p.add_argument('--batch', type=int, default=128)
p.add_argument('--channels-last', action='store_true'); p.add_argument('--threads', type=int, default=2)
a = p.parse_args(); torch.set_num_threads(a.threads); torch.manual_seed(1)
D = os.environ.get('DATA', os.path.join(os.environ.get('NABLA_DATA', '../shared/data'), 'fashion-mnist'))
def idx(f, off): return np.frombuffer(gzip.open(os.path.join(D, f)).read(), np.uint8, offset=off)
x = torch.from_numpy(idx('train-images-idx3-ubyte.gz', 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255)
y = torch.from_numpy(idx('train-labels-idx1-ubyte.gz', 8).astype(np.int64))

def cbn(i, o, k, s=1):  # blocks.rs conv_bn: conv without bias, pad k // 2, BN eps 1e-5 momentum 0.1
    return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o, eps=1e-5, momentum=0.1))
def cbr(i, o, k, s=1): return nn.Sequential(cbn(i, o, k, s), nn.ReLU())

class SE(nn.Module):  # blocks.rs se_block, ratio 16
    def __init__(s, c):
        super().__init__(); r = max(c // 16, 1); s.f = nn.Sequential(nn.Linear(c, r), nn.ReLU(), nn.Linear(r, c), nn.Sigmoid())
    def forward(s, z): return z * s.f(z.mean((2, 3))).view(z.shape[0], -1, 1, 1)

class Block(nn.Module):  # blocks.rs basic_block with SE
    def __init__(s, i, o, st):
        super().__init__(); s.a = cbr(i, o, 3, st); s.b = cbn(o, o, 3); s.se = SE(o)
        s.sc = nn.Identity() if (st == 1 and i == o) else cbn(i, o, 1, st)
    def forward(s, z): return torch.relu(s.sc(z) + s.se(s.b(s.a(z))))

class Inception(nn.Module):  # blocks.rs inception_module
    def __init__(s, i, b1, b3r, b3, b5r, b5, pp):
        super().__init__(); s.b1 = cbr(i, b1, 1); s.b3 = nn.Sequential(cbr(i, b3r, 1), cbr(b3r, b3, 3))
        s.b5 = nn.Sequential(cbr(i, b5r, 1), cbr(b5r, b5, 5)); s.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), cbr(i, pp, 1))
    def forward(s, z): return torch.cat([s.b1(z), s.b3(z), s.b5(z), s.bp(z)], 1)

def build(name):
    if name == 'se-resnet20':
        layers, c = [cbr(1, 16, 3)], 16
        for f, st in [(16, 1), (32, 2), (64, 2)]:
            for b in range(3): layers.append(Block(c, f, st if b == 0 else 1)); c = f
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    if name == 'vgg-small':  # vgg.rs vgg_small
        layers, c = [], 1
        for f in [64, 128, 256]: layers += [cbr(c, f, 3), cbr(f, f, 3), nn.MaxPool2d(2)]; c = f
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(256 * 3 * 3, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))
    q = lambda *v: [t // 4 for t in v]  # inception.rs: GoogLeNet's widths / 4
    def mod(i, *v): m = Inception(i, *q(*v)); return m, sum(q(*v)[k] for k in (0, 2, 4, 5))
    m3a, c = mod(32, 64, 96, 128, 16, 32, 32); m3b, c2 = mod(c, 128, 128, 192, 32, 96, 64)
    m4a, c3 = mod(c2, 192, 96, 208, 16, 48, 64); m5a, c4 = mod(c3, 256, 160, 320, 32, 128, 128)
    return nn.Sequential(cbr(1, 32, 3), m3a, m3b, nn.MaxPool2d(3, 2, 1), m4a, nn.MaxPool2d(3, 2, 1), m5a,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(c4, 10))

net = build(a.model)
if a.channels_last: net = net.to(memory_format=torch.channels_last)
opt = torch.optim.Adam(net.parameters(), 1e-3); lf = nn.CrossEntropyLoss()
perm = torch.randperm(len(x)); net.train()
def step(i):
    idx_ = perm[(i * a.batch) % (len(x) - a.batch):][:a.batch]; xb = x[idx_]
    if a.channels_last: xb = xb.contiguous(memory_format=torch.channels_last)
    opt.zero_grad(); l = lf(net(xb), y[idx_]); l.backward(); opt.step(); return l
for i in range(20): step(i)
t0 = time.perf_counter()
for i in range(20, 20 + a.steps): step(i)
train = a.steps * a.batch / (time.perf_counter() - t0)
net.eval(); xt = x[:10000]
if a.channels_last: xt = xt.contiguous(memory_format=torch.channels_last)
with torch.no_grad():
    net(xt[:1000]); t0 = time.perf_counter()
    for i in range(0, 10000, 1000): net(xt[i:i + 1000])
inf = 10000 / (time.perf_counter() - t0)
print('RESULT ' + json.dumps({'framework': 'pytorch', 'model': a.model, 'channels_last': a.channels_last,
      'train_img_per_s': round(train, 1), 'infer_b1000_img_per_s': round(inf, 1),
      'params': sum(p.numel() for p in net.parameters()),
      'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
