#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""torch_textenc.py - a PyTorch yardstick for bench_textenc, timed in the same session.

    /usr/bin/python3 bench/torch_textenc.py                                   PyTorch alone
    /usr/bin/python3 bench/torch_textenc.py --ours build-D/bench_textenc --runs 5
    /usr/bin/python3 bench/torch_textenc.py --ours build-D/bench_textenc --dit build-D/bench_dit
                                            ... and the DiT's 544-token forward in the same rounds

A FLOP-equivalent Qwen2.5-VL encoder in PyTorch with random f32 weights at the real width,
one decoder layer and two vision blocks (block 0 windowed, block 1 full attention), on the
sequence of a one-reference Edit-Plus prompt (290 ids, 196 of them image tokens; one
392x392 image: 784 patches, 16 windows): patch embedding (a Linear over 1176 values, no
bias), window reordering, the 2D rotary table; per block RMSNorm, qkv with bias, rotary,
softmax attention per window (or over the whole image), proj, RMSNorm, SwiGLU MLP with
biases; the merger (RMSNorm, 4 patches side by side, Linear, exact GELU, Linear) and the
raster order back; the embedding lookup with the image features scattered in, M-RoPE
[16, 24, 24]; the layer: RMSNorm, q/k/v with bias, rotary, causal GQA attention (28 heads,
4 kv heads x 128), o_proj, RMSNorm, SwiGLU (18944); the final RMSNorm. Each forward is
timed part by part and scaled to the whole encoder as bench_textenc does:
scaled = total + 27 window block + 3 full block + 27 layer (28 layers, 32 blocks, 4 full).

With --ours, bench_textenc runs as a child (--serve) holding its own bf16 model; each
round times one forward of ours, then one of PyTorch (and, with --dit, one 544-token
bench_dit --serve forward), so all see the same machine load; the medians and the
ratio come from one session; the CPU time of each whole call (all threads) is printed
too, a figure the other tenants of a shared machine move less than wall time. A bench
yardstick only: nothing in the project depends on PyTorch (Debian: apt-get install
python3-torch; Debian's /usr/bin/python3).
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import time

from openblas_core import CORE  # before torch: OpenBLAS reads it when loaded

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("torch_textenc: needs PyTorch: apt-get install python3-torch, and run Debian's /usr/bin/python3")

D, HEADS, KV_HEADS, HD, FF = 3584, 28, 4, 128, 18944
DV, VHEADS, FV, P = 1280, 16, 3420, 1176
VHD = DV // VHEADS
GRID, MERGE, WIN = 28, 2, 4                      # patches per side, merge size, window in merged tokens
PATCHES, UNIT = GRID * GRID, MERGE * MERGE
IMAGE_TOKENS = PATCHES // UNIT
BEFORE_IMAGE, AFTER_IMAGE = 64 + 5 + 1, 1 + 18 + 5  # system + "Picture 1: " + <|vision_start|>; end + text
IDS = BEFORE_IMAGE + IMAGE_TOKENS + AFTER_IMAGE
IMAGE_ID, VOCAB = 1005, 1024
MROPE, THETA = (16, 24, 24), 1000000.0
REAL_LAYERS, REAL_BLOCKS, REAL_FULL = 28, 32, 4


def window_layout():
    """get_window_index for one 28x28-patch image (spec B.7.3): merged-token permutation
    and the windows' patch-row bounds."""
    lh = lw = GRID // MERGE
    nh, nw = (lh + WIN - lh % WIN) // WIN, (lw + WIN - lw % WIN) // WIN
    index, bounds = [], [0]
    for wy in range(nh):
        for wx in range(nw):
            toks = [y * lw + x for y in range(wy * WIN, min((wy + 1) * WIN, lh))
                    for x in range(wx * WIN, min((wx + 1) * WIN, lw))]
            if toks:
                index += toks
                bounds.append(bounds[-1] + len(toks) * UNIT)
    return index, bounds


def block_flops(bounds):
    f = 2.0 * PATCHES * (4.0 * DV * DV + 3.0 * DV * FV)
    return f + sum(4.0 * (b - a) ** 2 * DV for a, b in zip(bounds, bounds[1:]))


def scaled_flops(bounds):
    """The count bench_textenc prints (linears 2 M N K, attention 4 L^2 D, causal 2 L (L+1) D)."""
    once = 2.0 * PATCHES * P * DV + 2.0 * IMAGE_TOKENS * (4 * DV) * (4 * DV + D)
    layer = 2.0 * IDS * (2.0 * D * D + 2.0 * D * KV_HEADS * HD + 3.0 * D * FF) + 2.0 * IDS * (IDS + 1) * D
    return (once + (REAL_BLOCKS - REAL_FULL) * block_flops(bounds) + REAL_FULL * block_flops([0, PATCHES])
            + REAL_LAYERS * layer)


def linear(out_f, in_f, gen, bias=True):
    w = torch.empty(out_f, in_f).uniform_(-1.0, 1.0, generator=gen) / math.sqrt(in_f)
    b = torch.empty(out_f).uniform_(-0.02, 0.02, generator=gen) if bias else None
    return w, b


def build(gen):
    blocks = []
    for _ in range(2):
        blocks.append({"n1": torch.ones(DV), "n2": torch.ones(DV), "qkv": linear(3 * DV, DV, gen),
                       "proj": linear(DV, DV, gen), "gate": linear(FV, DV, gen), "up": linear(FV, DV, gen),
                       "down": linear(DV, FV, gen)})
    layer = {"in": torch.ones(D), "post": torch.ones(D), "q": linear(D, D, gen),
             "k": linear(KV_HEADS * HD, D, gen), "v": linear(KV_HEADS * HD, D, gen), "o": linear(D, D, gen, False),
             "gate": linear(FF, D, gen, False), "up": linear(FF, D, gen, False), "down": linear(D, FF, gen, False)}
    return {"patch": linear(DV, P, gen, False), "blocks": blocks, "ln_q": torch.ones(DV),
            "fc1": linear(4 * DV, 4 * DV, gen), "fc2": linear(D, 4 * DV, gen),
            "embed": torch.empty(VOCAB, D).uniform_(-1, 1, generator=gen), "layer": layer, "norm": torch.ones(D)}


def lin(x, wb):
    return F.linear(x, wb[0], wb[1])


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_half(x, cos, sin):
    """x [n, heads, hd]: channels j and j + hd/2 rotate by cos/sin [n, hd/2]."""
    a, b = x.chunk(2, -1)
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.cat((a * c - b * s, b * c + a * s), -1)


def attention(q, k, v, causal=False):
    """q, k, v [heads, n, hd]."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    s = torch.bmm(q, k.transpose(1, 2)) * (1.0 / math.sqrt(q.shape[-1]))  # torch < 2.0
    if causal:
        n = q.shape[1]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return torch.bmm(torch.softmax(s, -1), v)


def vision_rotary(index):
    inv = 1.0 / (10000.0 ** (torch.arange(0, VHD // 2, 2, dtype=torch.float32) / (VHD // 2)))
    y = torch.arange(GRID)[:, None].expand(GRID, GRID)
    hpos = y.reshape(GRID // 2, 2, GRID // 2, 2).permute(0, 2, 1, 3).flatten()
    wpos = y.t().reshape(GRID // 2, 2, GRID // 2, 2).permute(0, 2, 1, 3).flatten()
    ang = torch.cat((hpos[:, None] * inv, wpos[:, None] * inv), -1)         # [S, VHD/2]
    ang = ang.view(-1, UNIT, VHD // 2)[index].reshape(PATCHES, VHD // 2)
    return torch.cos(ang), torch.sin(ang)


def vision_block(b, x, bounds, cos, sin):
    qkv = lin(rms(x, b["n1"]), b["qkv"]).view(PATCHES, 3, VHEADS, VHD)
    q, k, v = rope_half(qkv[:, 0], cos, sin), rope_half(qkv[:, 1], cos, sin), qkv[:, 2]
    out = torch.empty(PATCHES, VHEADS, VHD)
    for a, e in zip(bounds, bounds[1:]):
        out[a:e] = attention(*(t[a:e].transpose(0, 1) for t in (q, k, v))).transpose(0, 1)
    x = x + lin(out.reshape(PATCHES, DV), b["proj"])
    h = rms(x, b["n2"])
    return x + lin(F.silu(lin(h, b["gate"])) * lin(h, b["up"]), b["down"])


def text_positions():
    """get_rope_index for text, one 14x14 merged image, text (spec B.5.2): [3, IDS]."""
    side = GRID // MERGE
    before = torch.arange(BEFORE_IMAGE).expand(3, -1)
    t = torch.arange(IMAGE_TOKENS)
    image = BEFORE_IMAGE + torch.stack((torch.zeros_like(t), t // side, t % side))
    after = BEFORE_IMAGE + side + torch.arange(AFTER_IMAGE).expand(3, -1)
    return torch.cat((before, image, after), 1)


def text_rotary():
    pos = text_positions().float()
    inv = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))
    axis = torch.cat([torch.full((n,), i) for i, n in enumerate(MROPE)])
    ang = pos[axis].t() * inv                                              # [IDS, HD/2]
    return torch.cos(ang), torch.sin(ang)


def decoder_layer(l, x, cos, sin):
    h = rms(x, l["in"])
    q = rope_half(lin(h, l["q"]).view(IDS, HEADS, HD), cos, sin)
    k = rope_half(lin(h, l["k"]).view(IDS, KV_HEADS, HD), cos, sin)
    v = lin(h, l["v"]).view(IDS, KV_HEADS, HD)
    k, v = (t.repeat_interleave(HEADS // KV_HEADS, 1) for t in (k, v))
    o = attention(*(t.transpose(0, 1) for t in (q, k, v)), causal=True).transpose(0, 1).reshape(IDS, D)
    x = x + lin(o, l["o"])
    h = rms(x, l["post"])
    return x + lin(F.silu(lin(h, l["gate"])) * lin(h, l["up"]), l["down"])


def forward(m, ids, pixels, index, bounds):
    """The encoder's output and the part times (total, window block, full block, layer)."""
    t0 = time.perf_counter()
    x = (pixels @ m["patch"][0].t()).view(-1, UNIT, DV)[index].reshape(PATCHES, DV)
    vcos, vsin = vision_rotary(index)
    t1 = time.perf_counter()
    x = vision_block(m["blocks"][0], x, bounds, vcos, vsin)
    t2 = time.perf_counter()
    x = vision_block(m["blocks"][1], x, [0, PATCHES], vcos, vsin)
    t3 = time.perf_counter()
    merged = lin(F.gelu(lin(rms(x, m["ln_q"]).view(-1, UNIT * DV), m["fc1"])), m["fc2"])
    image = torch.empty_like(merged)
    image[index] = merged                                                  # back to raster order
    h = m["embed"][ids]
    h[ids == IMAGE_ID] = image
    cos, sin = text_rotary()
    t4 = time.perf_counter()
    h = decoder_layer(m["layer"], h, cos, sin)
    t5 = time.perf_counter()
    out = rms(h, m["norm"])
    t6 = time.perf_counter()
    return out, (t6 - t0, t2 - t1, t3 - t2, t5 - t4)


def scaled(total, window, full, layer):
    return (total + (REAL_BLOCKS - REAL_FULL - 1) * window + (REAL_FULL - 1) * full
            + (REAL_LAYERS - 1) * layer)


def child(path, args, env):
    p = subprocess.Popen([path, "--serve"] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    if not line.startswith("ready"):
        sys.exit(f"torch_textenc: {path} --serve did not start")
    return p, line.split()


def kernels(ready):
    """The CPU kernels the child runs, from its ready line (ops_cpu_kernels)."""
    return ready[ready.index("kernels") + 1] if "kernels" in ready else "unknown"


def ask(p, request):
    p.stdin.write(request + "\n")
    p.stdin.flush()
    return p.stdout.readline().split()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", help="path of bench_textenc, run as a child with --serve and timed in turn")
    ap.add_argument("--dit", help="path of bench_dit: one 544-token forward per round too, for its GFLOP/s")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="0: CANVAS_THREADS or the CPU count")
    args = ap.parse_args()
    threads = args.threads or int(os.environ.get("CANVAS_THREADS", "0") or 0) or os.cpu_count()
    torch.set_num_threads(threads)
    env = dict(os.environ, CANVAS_THREADS=str(threads))
    index, bounds = window_layout()
    flop = scaled_flops(bounds)

    ours = dit = None
    if args.ours:
        ours, ready = child(args.ours, [], env)
        theirs = [int(v) for v in ready[ready.index("windows") + 1].split(",")]
        if theirs != bounds or int(ready[ready.index("ids") + 1]) != IDS:
            sys.exit(f"torch_textenc: bench_textenc's windows {theirs} or ids differ from {bounds}, {IDS}")
    if args.dit:
        dit, _ = child(args.dit, [], env)
        ask(dit, "16")  # its first request of a size also runs a warm-up

    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        m = build(gen)
        ids = torch.randint(0, 1000, (IDS,), generator=gen)
        ids[BEFORE_IMAGE - 1], ids[BEFORE_IMAGE + IMAGE_TOKENS] = 1002, 1003
        ids[BEFORE_IMAGE:BEFORE_IMAGE + IMAGE_TOKENS] = IMAGE_ID
        pixels = torch.empty(PATCHES, P).uniform_(-2, 2, generator=gen)
        print(f"torch {torch.__version__} (OpenBLAS core {CORE}), {torch.get_num_threads()} threads; "
              f"f32 weights; {IDS} ids, "
              f"{PATCHES} patches in {len(bounds) - 1} windows; 1 layer + 2 blocks scaled to 28 + 32 "
              f"({flop * 1e-9:.0f} GFLOP); "
              f"{f'ours (bf16, {kernels(ready)} kernels) and PyTorch interleaved, ' if ours else ''}"
              f"median of {args.runs}", flush=True)
        forward(m, ids, pixels, index, bounds)  # warm-up
        t_torch, t_ours, t_dit, cpu_torch, cpu_ours = [], [], [], [], []
        for _ in range(args.runs):
            if ours:
                r = ask(ours, "go")
                t_ours.append([float(r[r.index(k) + 1]) for k in ("seconds", "window", "full", "layer", "scaled")])
                cpu_ours.append(float(r[r.index("cpu") + 1]))
            c0 = time.process_time()
            _, parts = forward(m, ids, pixels, index, bounds)
            cpu_torch.append(time.process_time() - c0)
            t_torch.append(list(parts) + [scaled(*parts)])
            if dit:
                r = ask(dit, "16")
                t_dit.append((float(r[1]), float(r[5])))
    names = ("1 layer + 2 blocks", "windowed block", "full block", "decoder layer", "whole encoder (scaled)")
    for i, name in enumerate(names):
        tt = statistics.median(r[i] for r in t_torch)
        line = f"{name:24s} PyTorch {tt:8.3f} s"
        if i == 4:
            line += f" ({flop / tt * 1e-9:5.1f} GFLOP/s)"
        if ours:
            to = statistics.median(r[i] for r in t_ours)
            rounds = [o[i] / t[i] for o, t in zip(t_ours, t_torch)]
            line += f", ours {to:8.3f} s"
            if i == 4:
                line += f" ({flop / to * 1e-9:5.1f} GFLOP/s)"
            line += f", ours / PyTorch {to / tt:.2f} (median per round {statistics.median(rounds):.2f}: "
            line += " ".join(f"{r:.2f}" for r in rounds) + ")"
        print(line, flush=True)
    # CPU seconds of the whole call (all threads): on a shared machine, what each used of
    # the cores it got, whatever the other tenants took
    line = f"CPU time of the whole call: PyTorch {statistics.median(cpu_torch):.2f} s"
    if ours:
        rounds = [o / t for o, t in zip(cpu_ours, cpu_torch)]
        line += (f", ours {statistics.median(cpu_ours):.2f} s, ours / PyTorch {statistics.median(rounds):.2f} "
                 f"(median per round)")
    print(line, flush=True)
    if dit:
        td = statistics.median(t for t, _ in t_dit)
        print(f"DiT 544-token forward in the same rounds (bench_dit): {td:.3f} s, "
              f"{t_dit[0][1] / td:.1f} GFLOP/s", flush=True)
    for p in (ours, dit):
        if p:
            p.stdin.write("quit\n")
            p.stdin.close()
            p.wait()


if __name__ == "__main__":
    main()
