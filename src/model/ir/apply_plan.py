#!/usr/bin/env python3
"""Apply an autoprune plan.json to your own PyTorch model, so you keep training it in your pipeline.

autoprune searched channel counts on the ONNX export of your model; plan.json lists, for every
convolution, linear layer and batch norm it cut, the ONNX node it came from, the module path
(derived from torch.onnx.export's node names, e.g. /layer1/layer1.0/conv1/Conv -> layer1.0.conv1)
and the kept output and input channel indices. This script slices those modules' weights in place
(Conv2d, Linear, BatchNorm2d, depthwise Conv2d groups) and the BatchNorm2d right after each sliced
convolution (torch.onnx.export folds it into the convolution, so it is not in plan.json): it is
found by running the model once on a dummy input and matching tensors.

As a library:

    from apply_plan import apply_plan
    model = MyNet(num_classes=10)
    model.load_state_dict(torch.load("my_weights.pt"))
    apply_plan(model, "plan.json")          # in place; also returns the model
    torch.save(model, "pruned_model.pt")    # the whole module: its shapes differ from MyNet's

From the command line (the builder is a dotted path to a function or class returning the module):

    python3 apply_plan.py plan.json --builder torchvision.models.resnet18 --kwargs '{"num_classes": 10}' \
        --state my_weights.pt --out pruned_model.pt

The pruned module is saved whole (pickled); torch >= 2.6 loads it with
torch.load(path, weights_only=False). Needs torch (any version with nn.Module forward hooks).
"""

import argparse
import importlib
import json

import torch
import torch.nn as nn


def _index(keep):
    return torch.as_tensor(keep, dtype=torch.long)


def _set(module, name, tensor):
    old = getattr(module, name)
    if isinstance(old, nn.Parameter):
        setattr(module, name, nn.Parameter(tensor.clone(), requires_grad=old.requires_grad))
    else:
        module.register_buffer(name, tensor.clone())


def _slice_conv(m, entry):
    keep_out, keep_in = _index(entry["keepOut"]), _index(entry["keepIn"])
    groups = m.groups
    if groups == 1:
        w = m.weight.data[keep_out][:, keep_in]
        m.in_channels = len(entry["keepIn"])
    elif groups == m.in_channels and m.weight.shape[1] == 1:
        # Depthwise (possibly with a channel multiplier): output channel o reads input channel o // mult.
        mult = m.out_channels // m.in_channels
        if mult != 1 or entry["keepIn"] != entry["keepOut"]:
            raise ValueError(f"apply_plan: depthwise {entry['module']}: expected the same kept channels in and out (multiplier 1)")
        w = m.weight.data[keep_out]
        m.in_channels = m.groups = len(entry["keepOut"])
    else:
        if entry["keepIn"] != list(range(m.in_channels)) or entry["keepOut"] != list(range(m.out_channels)):
            raise ValueError(f"apply_plan: {entry['module']} is a grouped convolution ({groups} groups); expected it uncut")
        return
    _set(m, "weight", w)
    m.out_channels = len(entry["keepOut"])
    if m.bias is not None:
        _set(m, "bias", m.bias.data[keep_out])


def _slice_linear(m, entry):
    keep_out, keep_in = _index(entry["keepOut"]), _index(entry["keepIn"])
    _set(m, "weight", m.weight.data[keep_out][:, keep_in])
    if m.bias is not None:
        _set(m, "bias", m.bias.data[keep_out])
    m.out_features, m.in_features = len(entry["keepOut"]), len(entry["keepIn"])


def _slice_bn(m, keep):
    idx = _index(keep)
    for name in ("weight", "bias", "running_mean", "running_var"):
        t = getattr(m, name, None)
        if t is not None:
            _set(m, name, t.data[idx])
    m.num_features = len(keep)


def _bn_after_convs(model, input_shape):
    """{conv module path: BatchNorm2d module} for each BatchNorm2d that reads a Conv2d's output directly."""
    names = {m: n for n, m in model.named_modules()}
    produced = {}  # id(output tensor) -> conv module path
    pairs = {}
    alive = []  # keeps tensors alive so ids are not reused during the pass

    def conv_hook(m, _inp, out):
        alive.append(out)
        produced[id(out)] = names[m]

    def bn_hook(m, inp, _out):
        src = produced.get(id(inp[0]))
        if src is not None:
            pairs[src] = m

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(bn_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            p = next(model.parameters(), None)
            model(torch.zeros((1, *input_shape), dtype=p.dtype if p is not None else torch.float32, device=p.device if p is not None else "cpu"))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return pairs


def apply_plan(model, plan):
    """Slices `model` (an nn.Module) to the plan (a dict or a path to plan.json), in place; returns it."""
    if not isinstance(plan, dict):
        with open(plan) as f:
            plan = json.load(f)
    if plan.get("format") != "autoprune-plan" or plan.get("version") != 1:
        raise ValueError("apply_plan: expected an autoprune plan.json (format autoprune-plan, version 1)")
    modules = dict(model.named_modules())
    missing = [e["source"] for e in plan["nodes"] if e.get("module") not in modules]
    if missing:
        raise ValueError(f"apply_plan: no module for ONNX node(s) {missing[:5]}; expected a model of the architecture that was exported to ONNX")
    bn_of = _bn_after_convs(model, plan["input"]["shape"])
    for e in plan["nodes"]:
        m = modules[e["module"]]
        if isinstance(m, nn.Conv2d):
            bn = bn_of.get(e["module"])
            if bn is not None and bn.num_features == m.out_channels:
                _slice_bn(bn, e["keepOut"])
            _slice_conv(m, e)
        elif isinstance(m, nn.Linear):
            _slice_linear(m, e)
        elif isinstance(m, nn.BatchNorm2d):
            if m.num_features != len(e["keepOut"]):
                _slice_bn(m, e["keepOut"])
        else:
            raise ValueError(f"apply_plan: module {e['module']} is a {type(m).__name__}; expected Conv2d, Linear or BatchNorm2d")
    return model


def _build(builder, kwargs):
    module, _, name = builder.replace(":", ".").rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def main():
    p = argparse.ArgumentParser(description="Apply an autoprune plan.json to a PyTorch model.")
    p.add_argument("plan", help="plan.json written by `autoprune export`")
    p.add_argument("--builder", required=True, help="dotted path of a function or class that builds the model, e.g. torchvision.models.resnet18")
    p.add_argument("--kwargs", default="{}", help="JSON keyword arguments for the builder")
    p.add_argument("--state", help="state_dict (.pt) to load before slicing")
    p.add_argument("--out", required=True, help="where to torch.save the pruned module")
    args = p.parse_args()
    model = _build(args.builder, json.loads(args.kwargs))
    if args.state:
        model.load_state_dict(torch.load(args.state, map_location="cpu"))
    apply_plan(model, args.plan)
    torch.save(model, args.out)
    params = sum(t.numel() for t in model.parameters())
    print(f"apply_plan: wrote {args.out} ({params} parameters)")


if __name__ == "__main__":
    main()
