"""PyTorch CPU peer of the adaptive-BN proxy protocol (bench/proxy-engines.ts runs it side by side).

Usage: /usr/bin/python3 bench/peer_proxy.py '<json spec>'
spec: {"widths": {conv layer name: output channels} of a (pruned) zoo ResNet-20,
       "calibration": [batches, batch_size], "validation": images, "eval_batch": images per forward,
       "threads": intra-op threads}
Serves evaluations so the bench can interleave them with its own (the host's load changes by the
minute): after one warm-up it prints {"ready": ...}; then each line read from stdin runs one
evaluation and prints its seconds per phase as one JSON line. Prints {"skipped": reason} and exits
when torch is not installed. One evaluation = build the pruned model (the
analogue of cutting the weights), reset BN and re-estimate its statistics with momentum=None (the
cumulative mean, as autoprune does) in train mode under no_grad, then top-1 on the validation
images in eval mode. Data are random tensors of the protocol's shapes: speed does not depend on them.
"""
import json
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError as e:  # the bench reports the skip
    print(json.dumps({"skipped": f"torch is not importable ({e})"}))
    sys.exit(0)


class Block(nn.Module):
    def __init__(self, cin, mid, cout, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-3)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-3)) if shortcut else None

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


def resnet20(w, in_ch=1, classes=10):
    layers = [nn.Conv2d(in_ch, w["stem.conv"], 3, 1, 1, bias=False), nn.BatchNorm2d(w["stem.conv"], eps=1e-3), nn.ReLU()]
    cin = w["stem.conv"]
    for s in range(1, 4):
        for i in range(3):
            p = f"stage{s}.block{i}"
            cout = w[f"{p}.2.conv"]
            stride = 2 if s > 1 and i == 0 else 1
            layers.append(Block(cin, w[f"{p}.1.conv"], cout, stride, f"{p}.shortcut.conv" in w))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    batches, batch_size = spec["calibration"]
    gen = torch.Generator().manual_seed(0)
    train = torch.rand(batches * batch_size, 1, 28, 28, generator=gen)
    val = torch.rand(spec["validation"], 1, 28, 28, generator=gen)
    labels = torch.randint(0, 10, (spec["validation"],), generator=gen)

    def evaluate():
        t0 = time.perf_counter()
        model = resnet20(spec["widths"])
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        t1 = time.perf_counter()
        model.train()
        with torch.no_grad():
            for b in range(batches):
                model(train[b * batch_size:(b + 1) * batch_size])
        t2 = time.perf_counter()
        model.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(val), spec["eval_batch"]):
                correct += int((model(val[s:s + spec["eval_batch"]]).argmax(1) == labels[s:s + spec["eval_batch"]]).sum())
        t3 = time.perf_counter()
        return {"build": t1 - t0, "calibrate": t2 - t1, "evaluate": t3 - t2, "total": t3 - t0}

    evaluate()  # warm-up
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for _ in sys.stdin:
        print(json.dumps(evaluate()), flush=True)


main()
