"""Inference speed of the jitted Flax AlexNet against torch on the CPU, same weights.

    PYTHONPATH=. python benchmarks/bench_alexnet.py --out bench_alexnet.json

Batch 16 at 224x224, full width by default. Flax, torch (NCHW), torch channels-last and
a large jitted float32 ``jnp.dot`` are timed in turn (one call each, repeated) and the
medians compared, so that load from other processes on a shared machine hits all alike.
Compile time is reported apart. GFLOP/s counts 2 FLOPs per multiply-add of the convs and
dense layers, and is set against the ``jnp.dot``'s rate: the machine's fp32 matmul peak.
Without torch installed the torch column is skipped (with a message) and the Flax model
gets fresh random weights.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.bench import environment, write_json
from glassjax.systems import alexnet
from glassjax.systems.alexnet import weights

try:
    import torch
except ImportError:
    torch = None


def torch_alexnet(widths, hidden, num_classes):
    """torchvision's AlexNet in plain torch.nn (same module indices), eval mode."""
    nn = torch.nn
    c1, c2, c3, c4, c5 = widths
    model = nn.Module()
    model.features = nn.Sequential(
        nn.Conv2d(3, c1, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
    )
    model.avgpool = nn.AdaptiveAvgPool2d((6, 6))
    model.classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(c5 * 36, hidden[0]), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(hidden[0], hidden[1]), nn.ReLU(inplace=True),
        nn.Linear(hidden[1], num_classes),
    )

    def forward(x):
        x = model.avgpool(model.features(x))
        return model.classifier(torch.flatten(x, 1))

    model.forward = forward
    return model.eval()


def alexnet_flops(params, batch: int, size: int) -> float:
    """2 x multiply-adds of every conv and dense layer for a (batch, size, size, 3) input."""
    macs = 0
    hw = size
    for name, (k, stride, pad, pool) in zip(alexnet.CONV_NAMES, alexnet.CONV_GEOMETRY):
        kh, kw, cin, cout = params[name]["kernel"].shape
        hw = (hw + 2 * pad - k) // stride + 1
        macs += hw * hw * kh * kw * cin * cout
        if pool:
            hw = (hw - 3) // 2 + 1
    for name in alexnet.DENSE_NAMES:
        fin, fout = params[name]["kernel"].shape
        macs += fin * fout
    return 2.0 * macs * batch


def matmul_runner(n: int):
    """A function running one jitted float32 (n, n) @ (n, n) (2 n^3 FLOPs) on the default device."""
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
    dot = jax.jit(lambda a, b: jnp.dot(a, b, precision="highest"))

    def run():
        dot(a, b).block_until_ready()

    return run


def layer_runners(params, x: np.ndarray, model) -> dict[str, dict[str, object]]:
    """{layer: {"flax": run, "torch": run}}: each conv (+ bias + ReLU), pool and dense layer alone.

    Each layer gets the activation the full network would feed it, so shapes are real.
    """
    layers = {}
    h = jnp.asarray(x)
    torch_modules = dict(model.named_modules()) if model is not None else {}
    conv_index = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}
    for name, (k, stride, pad, pool) in zip(alexnet.CONV_NAMES, alexnet.CONV_GEOMETRY):
        layer = params[name]
        conv = jax.jit(functools.partial(alexnet._conv, stride=stride, pad=pad))
        layers[name] = {"flax": functools.partial(_block, conv, h, layer["kernel"], layer["bias"])}
        if model is not None:
            i = conv_index[name]
            seq = torch.nn.Sequential(torch_modules[f"features.{i}"], torch_modules[f"features.{i + 1}"])
            layers[name]["torch"] = functools.partial(_torch_call, seq, _to_torch(h))
        h = conv(h, layer["kernel"], layer["bias"])
        if pool:
            pool_fn = jax.jit(alexnet._max_pool)
            layers[f"pool_{name}"] = {"flax": functools.partial(_block, pool_fn, h)}
            if model is not None:
                layers[f"pool_{name}"]["torch"] = functools.partial(
                    _torch_call, torch.nn.MaxPool2d(3, 2), _to_torch(h)
                )
            h = pool_fn(h)
    h = alexnet.adaptive_avg_pool(h).reshape(h.shape[0], -1)
    for name, index in (("fc6", 1), ("fc7", 4), ("fc8", 6)):
        layer = params[name]
        dense = jax.jit(alexnet._dense)
        layers[name] = {"flax": functools.partial(_block, dense, h, layer["kernel"], layer["bias"])}
        if model is not None:
            layers[name]["torch"] = functools.partial(
                _torch_call, torch_modules[f"classifier.{index}"], torch.from_numpy(np.asarray(h).copy())
            )
        h = jax.nn.relu(dense(h, layer["kernel"], layer["bias"]))
    return layers


def _block(fn, *args):
    fn(*args).block_until_ready()


def _to_torch(h: jax.Array):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(h).transpose(0, 3, 1, 2)))


def _torch_call(module, x):
    with torch.inference_mode():
        module(x)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (default: full width)")
    parser.add_argument("--repeats", type=int, default=40, help="timed calls of each framework")
    parser.add_argument("--matmul", type=int, default=2048, help="side of the square matmul that measures peak")
    parser.add_argument("--layers", action="store_true", help="also time every layer alone, Flax against torch")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    params = alexnet.init(jax.random.key(0), 1000, width=args.width)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.size, args.size, 3), dtype=np.float32)
    model = None
    if torch is None:
        print("torch is not installed: skipping the torch column", file=sys.stderr)
    else:
        torch.manual_seed(0)
        shape = alexnet.model_for(params)
        model = torch_alexnet(shape.widths, shape.hidden, shape.num_classes)
        state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        params = weights.from_state_dict(state)
        x_torch = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    x_jax = jax.device_put(x)
    forward = jax.jit(alexnet.apply)
    start = time.perf_counter()
    compiled = forward.lower(params, x_jax).compile()
    compile_s = time.perf_counter() - start
    logits = np.asarray(compiled(params, x_jax))

    def run_jax():
        compiled(params, x_jax).block_until_ready()

    def run_torch():
        with torch.inference_mode():
            return model(x_torch)

    def run_torch_channels_last():
        with torch.inference_mode():
            return model_cl(x_torch_cl)

    # The matmul that measures the machine's rate takes its turn in the same rotation.
    runners = {"flax": run_jax, "matmul": matmul_runner(args.matmul)}
    max_rel_diff = None
    if model is not None:
        # torch's default NCHW layout, and channels-last (NHWC), often faster on CPU.
        model_cl = torch_alexnet(shape.widths, shape.hidden, shape.num_classes)
        model_cl.load_state_dict(model.state_dict())
        model_cl = model_cl.to(memory_format=torch.channels_last)
        x_torch_cl = x_torch.contiguous(memory_format=torch.channels_last)
        runners["torch"] = run_torch
        runners["torch_cl"] = run_torch_channels_last
        reference = run_torch().numpy()
        max_rel_diff = float(np.abs(logits - reference).max() / np.abs(reference).max())
    for run in runners.values():  # warm-up: caches, thread pools, allocators
        for _ in range(3):
            run()
    times = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    flops = alexnet_flops(params, args.batch, args.size)
    peak = 2.0 * args.matmul**3 / statistics.median(times.pop("matmul")) / 1e9
    result = {
        "environment": dict(environment(), torch=torch.__version__ if torch is not None else None,
                            torch_threads=torch.get_num_threads() if torch is not None else None),
        "batch": args.batch,
        "size": args.size,
        "width": args.width,
        "repeats": args.repeats,
        "gflop_per_batch": flops / 1e9,
        "compile_s": compile_s,
        "matmul_gflops": peak,
        "max_rel_diff_vs_torch": max_rel_diff,
    }
    for name, ts in times.items():
        median = statistics.median(ts)
        result[f"{name}_ms"] = median * 1e3
        result[f"{name}_img_per_s"] = args.batch / median
        result[f"{name}_gflops"] = flops / median / 1e9
        result[f"{name}_fraction_of_matmul"] = flops / median / 1e9 / peak
    if "torch" in times:
        result["flax_over_torch"] = result["flax_img_per_s"] / result["torch_img_per_s"]
        result["flax_over_torch_cl"] = result["flax_img_per_s"] / result["torch_cl_img_per_s"]

    env = result["environment"]
    print(f"device {env['device']} ({env['backend']}), {env['device_count']} device(s), "
          f"{env['cores']} CPUs; jax {env['jax']}, torch {env['torch']}")
    print(f"AlexNet batch {args.batch} at {args.size}x{args.size}, width {args.width}: "
          f"{flops / 1e9:.2f} GFLOP per batch; compile {compile_s:.2f} s; matmul peak {peak:.1f} GFLOP/s")
    for name in times:
        print(f"{name:8s} {result[f'{name}_ms']:8.1f} ms  {result[f'{name}_img_per_s']:7.1f} img/s  "
              f"{result[f'{name}_gflops']:7.1f} GFLOP/s  {100 * result[f'{name}_fraction_of_matmul']:5.1f}% of matmul")
    if "torch" in times:
        print(f"flax / torch: {result['flax_over_torch']:.3f}x (NCHW), {result['flax_over_torch_cl']:.3f}x "
              f"(channels-last); max relative logit difference {max_rel_diff:.2e}")
    if args.layers:
        result["layers_ms"] = {}
        print(f"{'layer':10s} {'flax ms':>8s} {'torch ms':>9s}")
        for name, pair in layer_runners(params, x, model).items():
            for run in pair.values():
                run()
            layer_times = {fw: [] for fw in pair}
            for _ in range(args.repeats):
                for fw, run in pair.items():
                    start = time.perf_counter()
                    run()
                    layer_times[fw].append(time.perf_counter() - start)
            medians = {fw: statistics.median(ts) * 1e3 for fw, ts in layer_times.items()}
            result["layers_ms"][name] = medians
            torch_ms = f"{medians['torch']:9.2f}" if "torch" in medians else f"{'-':>9s}"
            print(f"{name:10s} {medians['flax']:8.2f} {torch_ms}")
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
