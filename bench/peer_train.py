"""PyTorch peer for the bench's training section: ResNet-20 (CIFAR-style, He et al. 2016, option-B
1x1 projection shortcuts, as src/model/zoo.ts builds it) on random 28x28x1 batches, SGD with
momentum. Prints one JSON line: {"imagesPerSecond": ..., "threads": ..., "torch": ...}.

    /usr/bin/python3 bench/peer_train.py --width 1 --batch 64 --steps 30 --threads 2
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def cbr(cin, cout, k, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = cbr(cin, cout, 3, stride)
        self.b = cbr(cout, cout, 3, 1)
        self.short = cbr(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.b(F.relu(self.a(x)))
        return F.relu(y + (self.short(x) if self.short is not None else x))


class ResNet20(nn.Module):
    def __init__(self, width, classes=10):
        super().__init__()
        ch = lambda c: max(4, round(c * width))
        self.stem = cbr(1, ch(16), 3, 1)
        blocks, cin = [], ch(16)
        for s, base in enumerate([16, 32, 64]):
            for i in range(3):
                blocks.append(Block(cin, ch(base), 2 if s > 0 and i == 0 else 1))
                cin = ch(base)
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem(x)))
        return self.fc(x.mean((2, 3)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ResNet20(a.width)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    seconds = time.perf_counter() - t0
    print(json.dumps({"imagesPerSecond": a.steps * a.batch / seconds, "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
