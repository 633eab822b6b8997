#!/usr/bin/python3
"""ONNX fixtures exported from PyTorch, with PyTorch's own logits as the reference.

Each model is built with random but seeded weights (no downloads), its BatchNorm statistics and
affine parameters randomised too (so that a wrong BN fold shows in the logits), put in eval mode and
exported with torch.onnx.export's defaults (BN folded into the convolutions, constants folded) at a
3x32x32 input, 10 classes, a dynamic batch axis. Next to each NAME.onnx it writes:

  NAME.input.npy   a fixed seeded input batch, float32 [2, 3, 32, 32]
  NAME.logits.npy  PyTorch's logits for it, float32 [2, 10]
  NAME.pt          the state_dict (for applying a pruning plan back onto the nn.Module)
  NAME.json        how to rebuild the nn.Module: builder, kwargs, opset, input/output names

Usage:
  /usr/bin/python3 scripts/torch-fixtures.py --set small --out test/fixtures/onnx
  /usr/bin/python3 scripts/torch-fixtures.py --set large --out .tmp/torch-fixtures
  /usr/bin/python3 scripts/torch-fixtures.py --set extra --out .tmp/torch-fixtures-extra
  /usr/bin/python3 scripts/torch-fixtures.py --apply plan.json --fixture DIR/NAME --logits-out out.npy

`--apply` rebuilds fixture NAME from NAME.json and NAME.pt, slices it with src/model/ir/apply_plan.py
and writes its logits for NAME.input.npy (the test that a plan carries a cut back into PyTorch).

`small` (committed, each file well under 2 MB) covers the patterns with little data; `large` is
the torchvision models at full width, generated when torch is present (resnet18 alone is 45 MB).
Needs torch and torchvision (Debian: python3-torchvision); numpy writes the .npy files.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

SEED = 1234
BATCH = 2
SHAPE = (3, 32, 32)
CLASSES = 10


class TinyNet(nn.Module):
    """A small net that exercises the patterns the ONNX importer maps, in one forward pass."""

    def __init__(self, num_classes=CLASSES):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.LeakyReLU(0.1))
        self.branch_a = nn.Sequential(nn.Conv2d(8, 6, 1), nn.ELU())
        self.branch_b = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(8, 4, 2), nn.Tanh())
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.expand = nn.Sequential(nn.Conv2d(10, 12, 1, bias=False), nn.BatchNorm2d(12), nn.SiLU())
        self.se_reduce = nn.Conv2d(12, 4, 1)
        self.se_expand = nn.Conv2d(4, 12, 1)
        self.res = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12))
        self.hs = nn.Sequential(nn.Conv2d(12, 12, 1), nn.Hardswish())
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.fc1 = nn.Linear(12 * 2 * 2, 16)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.dw(self.stem(x))  # 8 x 16 x 16
        x = torch.cat([self.branch_a(x), self.branch_b(x)], 1)  # 10 x 16 x 16
        x = self.expand(self.pool(x))  # 12 x 8 x 8 (ceil mode)
        gate = torch.sigmoid(self.se_expand(F.relu(self.se_reduce(x.mean((2, 3), keepdim=True)))))
        x = x * gate
        x = F.relu(x + self.res(x))
        x = self.avg(self.hs(x))  # 12 x 4 x 4
        x = F.avg_pool2d(x, 2)  # 12 x 2 x 2
        x = x.view(x.size(0), -1)  # Shape/Gather/Unsqueeze/Concat/Reshape with a dynamic batch
        return self.fc2(self.drop(F.relu(self.fc1(x))))


# name -> (builder, kwargs, opset). Builders are looked up by dotted path so a consumer can rebuild
# the module from NAME.json alone.
SMALL = {
    "tiny-opset9": ("TinyNet", {}, 9),
    "tiny-opset11": ("TinyNet", {}, 11),
    "mobilenet_v3_small-025-opset13": ("torchvision.models.mobilenet_v3_small", {"width_mult": 0.25, "reduced_tail": True}, 13),
    "mobilenet_v3_small-025-opset17": ("torchvision.models.mobilenet_v3_small", {"width_mult": 0.25, "reduced_tail": True}, 17),
}
LARGE = {
    "resnet18": ("torchvision.models.resnet18", {}, 13),
    "mobilenet_v2": ("torchvision.models.mobilenet_v2", {}, 13),
    "squeezenet1_1": ("torchvision.models.squeezenet1_1", {}, 11),
    "mobilenet_v3_small": ("torchvision.models.mobilenet_v3_small", {}, 13),
    "efficientnet_b0": ("torchvision.models.efficientnet_b0", {}, 17),
}
# More architectures, generated on request only (not by the tests): the importer reads all but
# ShuffleNet, whose channel shuffle it refuses.
EXTRA = {
    "densenet121": ("torchvision.models.densenet121", {}, 13),
    "googlenet": ("torchvision.models.googlenet", {"aux_logits": False, "init_weights": True}, 13),
    "mnasnet0_5": ("torchvision.models.mnasnet0_5", {}, 13),
    "regnet_x_400mf": ("torchvision.models.regnet_x_400mf", {}, 13),
    "shufflenet_v2_x0_5": ("torchvision.models.shufflenet_v2_x0_5", {}, 13),
}


def build(builder, kwargs):
    if builder == "TinyNet":
        return TinyNet(num_classes=CLASSES, **kwargs)
    module, _, fn = builder.rpartition(".")
    mod = torchvision.models if module == "torchvision.models" else __import__(module)
    return getattr(mod, fn)(weights=None, num_classes=CLASSES, **kwargs)


def randomise_bn(model, gen):
    """Trained-looking BN: statistics and affine parameters away from 0/1."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.2)


def export(name, builder, kwargs, opset, out):
    torch.manual_seed(SEED)
    model = build(builder, kwargs)
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        randomise_bn(model, gen)
    model.eval()
    x = torch.rand((BATCH, *SHAPE), generator=torch.Generator().manual_seed(SEED + 2))
    with torch.no_grad():
        logits = model(x)
        path = os.path.join(out, f"{name}.onnx")
        # Traced at batch 1: the batch axis must come out symbolic for the batch-2 reference to run.
        torch.onnx.export(
            model,
            x[:1],
            path,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    np.save(os.path.join(out, f"{name}.input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}.logits.npy"), logits.numpy().astype(np.float32))
    torch.save(model.state_dict(), os.path.join(out, f"{name}.pt"))
    meta = {"builder": builder, "kwargs": kwargs, "classes": CLASSES, "shape": list(SHAPE), "opset": opset, "input": "input", "output": "logits"}
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    size = os.path.getsize(path)
    print(f"{name}: opset {opset}, {size / 1e6:.2f} MB, max|logit| {logits.abs().max().item():.3g}")


def apply(plan, fixture, logits_out):
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("apply_plan", os.path.join(here, "..", "src", "model", "ir", "apply_plan.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(f"{fixture}.json") as f:
        meta = json.load(f)
    model = build(meta["builder"], meta["kwargs"])
    model.load_state_dict(torch.load(f"{fixture}.pt"))
    model.eval()
    mod.apply_plan(model, plan)
    x = torch.from_numpy(np.load(f"{fixture}.input.npy"))
    with torch.no_grad():
        logits = model(x)
    np.save(logits_out, logits.numpy().astype(np.float32))
    print(f"apply: {sum(t.numel() for t in model.parameters())} parameters")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", choices=["small", "large", "extra", "all"], default="small")
    p.add_argument("--out")
    p.add_argument("--only", nargs="*", help="names to export (default: the whole set)")
    p.add_argument("--apply", metavar="PLAN", action="append", help="slice a fixture with this plan.json and write its logits (repeatable)")
    p.add_argument("--fixture", action="append", help="with --apply: the fixture's path without extension")
    p.add_argument("--logits-out", action="append", help="with --apply: where to write the logits (.npy)")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.apply:
        if not (len(args.apply) == len(args.fixture or []) == len(args.logits_out or [])):
            sys.exit("torch-fixtures: give one --fixture and one --logits-out per --apply")
        for plan, fixture, out in zip(args.apply, args.fixture, args.logits_out):
            apply(plan, fixture, out)
        return
    if not args.out:
        sys.exit("torch-fixtures: --out is required")
    models = {
        **(SMALL if args.set in ("small", "all") else {}),
        **(LARGE if args.set in ("large", "all") else {}),
        **(EXTRA if args.set in ("extra", "all") else {}),
    }
    if args.only:
        unknown = [n for n in args.only if n not in models]
        if unknown:
            sys.exit(f"torch-fixtures: unknown model(s) {unknown}; expected some of {sorted(models)}")
        models = {n: models[n] for n in args.only}
    os.makedirs(args.out, exist_ok=True)
    for name, (builder, kwargs, opset) in models.items():
        export(name, builder, kwargs, opset, args.out)


if __name__ == "__main__":
    main()
