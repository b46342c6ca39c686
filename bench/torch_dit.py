#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""torch_dit.py - a PyTorch yardstick for bench_dit, timed in the same session.

    python3 bench/torch_dit.py                          PyTorch alone, 544 tokens
    python3 bench/torch_dit.py --ours build-D/bench_dit  ours and PyTorch interleaved
    python3 bench/torch_dit.py --ours build-D/bench_dit --side 16 --side 32 --runs 5

A FLOP-equivalent 2-block Qwen-Image transformer forward in PyTorch with random f32
weights (hidden 3072, 24 heads x 128, joint dim 3584, zero_cond_t): img_in, RMSNorm +
txt_in, the timestep MLP, per block the modulation Linears (image: t and t = 0, text: t),
LayerNorm + modulation, q/k/v of both streams, per-head RMSNorm, interleaved RoPE, joint
softmax attention, output projections, gated residuals, GELU-tanh MLPs; norm_out and
proj_out. Same token counts as bench_dit (two SxS patch images + 32 text tokens).

With --ours, bench_dit runs as a child (--serve) holding its own bf16 model; each round
times one forward of ours, then one of PyTorch, so both see the same machine load, and
the medians and their ratio come from one session. A bench yardstick only: nothing in the
project depends on PyTorch (Debian: apt-get install python3-torch).
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import time

from openblas_core import CORE  # before torch: OpenBLAS reads it when loaded
import torch
import torch.nn.functional as F

HIDDEN, HEADS, HEAD_DIM, JOINT, IN_CH, OUT_CH, LAYERS, TXT = 3072, 24, 128, 3584, 64, 16, 2, 32


def forward_flops(n_img, n_txt):
    """The count bench_dit prints (linears at 2 per multiply-add, attention 4 n^2 D)."""
    d, n = HIDDEN, n_img + n_txt
    per_block = 2.0 * n * 12 * d * d + 4.0 * n * n * d + 2.0 * 2 * 2 * 6 * d * d
    top = (2.0 * n_img * IN_CH * d + 2.0 * n_txt * JOINT * d + 2.0 * n_img * d * 4 * OUT_CH
           + 2.0 * 2 * (256 * d + d * d) + 2.0 * 2 * d * d)
    return LAYERS * per_block + top


def linear(out_f, in_f, gen):
    w = torch.empty(out_f, in_f).uniform_(-1.0, 1.0, generator=gen) / math.sqrt(in_f)
    b = torch.empty(out_f).uniform_(-0.02, 0.02, generator=gen)
    return w, b


def build(gen):
    d = HIDDEN
    m = {"img_in": linear(d, IN_CH, gen), "txt_in": linear(d, JOINT, gen), "t1": linear(d, 256, gen),
         "t2": linear(d, d, gen), "norm_out": linear(2 * d, d, gen), "proj_out": linear(4 * OUT_CH, d, gen),
         "txt_norm": torch.ones(JOINT), "blocks": []}
    for _ in range(LAYERS):
        b = {k: linear(6 * d, d, gen) for k in ("img_mod", "txt_mod")}
        for k in ("q", "k", "v", "out", "add_q", "add_k", "add_v", "add_out"):
            b[k] = linear(d, d, gen)
        for k in ("img_fc1", "txt_fc1"):
            b[k] = linear(4 * d, d, gen)
        for k in ("img_fc2", "txt_fc2"):
            b[k] = linear(d, 4 * d, gen)
        for k in ("nq", "nk", "naq", "nak"):
            b[k] = torch.ones(HEAD_DIM)
        m["blocks"].append(b)
    return m


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    """x: [n, heads, hd]; interleaved pairs rotated by cos/sin [n, hd/2]."""
    x2 = x.unflatten(-1, (-1, 2))
    a, b = x2[..., 0], x2[..., 1]
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.stack((a * c - b * s, a * s + b * c), -1).flatten(-2)


def lin(x, wb):
    return F.linear(x, wb[0], wb[1])


def modulate(x, shift, scale):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale) + shift


def block(b, img, txt, temb_silu, n_t, cos, sin):
    d = HIDDEN
    img_mod = lin(temb_silu, b["img_mod"])          # [2, 6D]: t, then t = 0
    txt_mod = lin(temb_silu[:1], b["txt_mod"])[0]   # [6D]
    ni, nt = img.shape[0], txt.shape[0]
    sel = torch.cat((img_mod[0].expand(n_t, -1), img_mod[1].expand(ni - n_t, -1)))  # per image row
    i_sh1, i_sc1, i_g1, i_sh2, i_sc2, i_g2 = sel.chunk(6, -1)
    t_sh1, t_sc1, t_g1, t_sh2, t_sc2, t_g2 = txt_mod.chunk(6, -1)

    xi = modulate(img, i_sh1, i_sc1)
    xt = modulate(txt, t_sh1, t_sc1)
    q = torch.cat((lin(xt, b["add_q"]), lin(xi, b["q"]))).view(-1, HEADS, HEAD_DIM)
    k = torch.cat((lin(xt, b["add_k"]), lin(xi, b["k"]))).view(-1, HEADS, HEAD_DIM)
    v = torch.cat((lin(xt, b["add_v"]), lin(xi, b["v"]))).view(-1, HEADS, HEAD_DIM)
    q = torch.cat((rms(q[:nt], b["naq"]), rms(q[nt:], b["nq"])))
    k = torch.cat((rms(k[:nt], b["nak"]), rms(k[nt:], b["nk"])))
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    q, k, v = (t.transpose(0, 1) for t in (q, k, v))  # [heads, n, hd]
    if hasattr(F, "scaled_dot_product_attention"):
        o = F.scaled_dot_product_attention(q, k, v)
    else:  # torch < 2.0
        s = torch.bmm(q, k.transpose(1, 2)) * (1.0 / math.sqrt(HEAD_DIM))
        o = torch.bmm(torch.softmax(s, -1), v)
    o = o.transpose(0, 1).reshape(-1, d)
    txt = txt + t_g1 * lin(o[:nt], b["add_out"])
    img = img + i_g1 * lin(o[nt:], b["out"])

    xi = modulate(img, i_sh2, i_sc2)
    xt = modulate(txt, t_sh2, t_sc2)
    txt = txt + t_g2 * lin(F.gelu(lin(xt, b["txt_fc1"]), approximate="tanh"), b["txt_fc2"])
    img = img + i_g2 * lin(F.gelu(lin(xi, b["img_fc1"]), approximate="tanh"), b["img_fc2"])
    return img, txt


def sinusoid(t):
    half = 128
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    a = t * 1000.0 * freqs
    return torch.cat((torch.cos(a), torch.sin(a)))


def forward(m, hidden, text, side):
    n_t = side * side
    n = hidden.shape[0] + text.shape[0]
    pos = torch.arange(n, dtype=torch.float32)[:, None] * torch.ones(HEAD_DIM // 2)[None, :] * 1e-3
    cos, sin = torch.cos(pos), torch.sin(pos)
    img = lin(hidden, m["img_in"])
    txt = lin(rms(text, m["txt_norm"]), m["txt_in"])
    ts = torch.stack((sinusoid(0.5), sinusoid(0.0)))
    temb = lin(F.silu(lin(ts, m["t1"])), m["t2"])
    temb_silu = F.silu(temb)
    for b in m["blocks"]:
        img, txt = block(b, img, txt, temb_silu, n_t, cos, sin)
    scale, shift = lin(temb_silu[:1], m["norm_out"])[0].chunk(2)
    return lin(F.layer_norm(img, (HIDDEN,), eps=1e-6) * (1 + scale) + shift, m["proj_out"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", help="path of bench_dit, run as a child with --serve and timed in turn")
    ap.add_argument("--side", type=int, action="append", help="patches per image side (16: 544 tokens)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="0: CANVAS_THREADS or the CPU count")
    args = ap.parse_args()
    sides = args.side or [16]
    threads = args.threads or int(os.environ.get("CANVAS_THREADS", "0") or 0) or os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    ours = None
    if args.ours:
        env = dict(os.environ, CANVAS_THREADS=str(threads))
        ours = subprocess.Popen([args.ours, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=env)
        line = ours.stdout.readline()
        if not line.startswith("ready"):
            sys.exit("torch_dit: bench_dit --serve did not start")
        ready = line.split()
        kernels = ready[ready.index("kernels") + 1] if "kernels" in ready else "unknown"

    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        model = build(gen)
        print(f"torch {torch.__version__} (OpenBLAS core {CORE}), {torch.get_num_threads()} threads; f32 weights; "
              f"{f'ours (bf16, {kernels} kernels) and PyTorch interleaved, ' if ours else ''}median of {args.runs}", flush=True)
        for side in sides:
            n_img = 2 * side * side
            hidden = torch.empty(n_img, IN_CH).uniform_(-1, 1, generator=gen)
            text = torch.empty(TXT, JOINT).uniform_(-1, 1, generator=gen)
            flop = forward_flops(n_img, TXT)
            forward(model, hidden, text, side)  # warm-up
            t_torch, t_ours = [], []
            for _ in range(args.runs):
                if ours:
                    ours.stdin.write(f"{side}\n")
                    ours.stdin.flush()
                    t_ours.append(float(ours.stdout.readline().split()[1]))
                t0 = time.perf_counter()
                forward(model, hidden, text, side)
                t_torch.append(time.perf_counter() - t0)
            tt = statistics.median(t_torch)
            line = f"{n_img + TXT:5d} tokens: PyTorch {tt:.3f} s ({flop / tt * 1e-9:.1f} GFLOP/s)"
            if ours:
                to = statistics.median(t_ours)
                rounds = [o / t for o, t in zip(t_ours, t_torch)]
                line += f", ours {to:.3f} s ({flop / to * 1e-9:.1f} GFLOP/s), ours / PyTorch {to / tt:.2f}"
                line += f" (median of the per-round ratios {statistics.median(rounds):.2f}: "
                line += " ".join(f"{r:.2f}" for r in rounds) + ")"
            print(line, flush=True)
    if ours:
        ours.stdin.write("quit\n")
        ours.stdin.close()
        ours.wait()


if __name__ == "__main__":
    main()
