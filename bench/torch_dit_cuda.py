#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""torch_dit_cuda.py - PyTorch's side of bench_cuda_dit: torch_dit.py's FLOP-equivalent
2-block Qwen-Image transformer forward on the GPU in bf16 (weights and activations), at a
1024x1024 edit (side 64: 8,192 image tokens + 32 text tokens), timed with CUDA
synchronisation, median of 5 after a warm-up.

    python3 bench/torch_dit_cuda.py [--side 64] [--runs 5]

tools/device-check.sh runs it next to build-device/bench_cuda_dit on the same GPU.
"""
import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import torch_dit  # the model, its forward and its FLOP count (one definition for both benches)


def lin_cast(x, wb):
    """torch_dit's Linear, taking activations in the weights' dtype (its position tables are f32)."""
    return F.linear(x.to(wb[0].dtype), wb[0], wb[1])


rope_f32 = torch_dit.rope


def rope_cast(x, cos, sin):
    """torch_dit's RoPE with its f32 tables in the activations' dtype (q, k, v stay bf16)."""
    return rope_f32(x, cos.to(x.dtype), sin.to(x.dtype))


def to_device(m, dtype):
    if isinstance(m, torch.Tensor):
        return m.to("cuda", dtype)
    if isinstance(m, tuple):
        return tuple(to_device(t, dtype) for t in m)
    if isinstance(m, list):
        return [to_device(t, dtype) for t in m]
    return {k: to_device(v, dtype) for k, v in m.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("skipped: torch sees no CUDA device")
        sys.exit(77)
    torch.set_default_device("cuda")
    torch_dit.lin = lin_cast
    torch_dit.rope = rope_cast
    gen = torch.Generator(device="cpu").manual_seed(0)
    with torch.inference_mode():
        torch.set_default_device("cpu")
        model = to_device(torch_dit.build(gen), torch.bfloat16)
        n_img = 2 * args.side * args.side
        hidden = torch.empty(n_img, torch_dit.IN_CH).uniform_(-1, 1, generator=gen).to("cuda", torch.bfloat16)
        text = torch.empty(torch_dit.TXT, torch_dit.JOINT).uniform_(-1, 1, generator=gen).to("cuda", torch.bfloat16)
        torch.set_default_device("cuda")
        flop = torch_dit.forward_flops(n_img, torch_dit.TXT)
        torch_dit.forward(model, hidden, text, args.side)  # warm-up
        torch.cuda.synchronize()
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            torch_dit.forward(model, hidden, text, args.side)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, bf16, median of {args.runs}")
    print(f"{n_img + torch_dit.TXT} tokens: PyTorch {t:.4f} s ({flop / t * 1e-12:.1f} TFLOP/s)")


if __name__ == "__main__":
    main()
