#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Make the GGUF test files under tests/gguf/ (docs/quantization.md, "GGUF").

  tools/gguf_vectors.py vectors GGUF_PY   tests/gguf/vectors.gguf: blocks of every decodable
                                          ggml type and, next to each, the f32 values that
                                          llama.cpp's gguf-py (quants.dequantize) decodes
                                          them to; f32 rows and gguf-py's Q8_0 quantize of
                                          them (Q8_0.source; Q8_0/Q4_0/Q4_1/Q5_0/Q5_1.quantized). GGUF_PY is the folder holding gguf-py's
                                          `gguf` package (or $GGUF_PY); only quants.py and
                                          its constants are used.
  tools/gguf_vectors.py corpus            tests/gguf/small.gguf (a valid file with metadata
                                          of every value type) and tests/gguf/bad/ (files
                                          each broken in one way, with bad/expected.txt:
                                          file, TAB, a phrase its error message must hold).

Run with a Python that has numpy (Debian's python3-numpy). The blocks are built field by
field so that every code of every field occurs: each 4-, 5- and 6-bit code at every element
position, every 2-bit code, every int8 scale and Q8_0 code, f16 scales from a list that
holds zeros, subnormals, the largest finite values, infinities and NaNs; then a few blocks
of random bytes. Tensors are rows of an odd number of blocks (3 or 5), several rows each.
The packing below is this script's own; the expected values come from gguf-py alone, so a
layout misunderstanding shared by this packer and the C decoder still shows as a mismatch.
"""
import os
import struct
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "gguf")

# ggml type codes and (block elements, block bytes)
TYPES = {
    "F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110),
    "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2),
}

# f16 scale codes: +-0, subnormals (smallest, second, largest), smallest normals, ordinary
# values, the largest finite, infinities, a quiet and a signalling NaN.
F16_SCALES = [0x0000, 0x8000, 0x0001, 0x8001, 0x0002, 0x03FF, 0x83FF, 0x0400, 0x0401, 0x3C00, 0xBC00,
              0x3800, 0x4000, 0x7BFF, 0xFBFF, 0x1E66, 0x2A3D, 0x5140, 0x0155, 0xA0F3, 0x7C00, 0xFC00,
              0x7E00, 0x7C01]

# ---- a minimal GGUF writer (this script's own) -------------------------------------------

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i", FLOAT32: "<f",
          BOOL: "<B", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}


def gstr(text):
    raw = text if isinstance(text, bytes) else text.encode()
    return struct.pack("<Q", len(raw)) + raw


def value(vtype, v):
    if vtype == STRING:
        return gstr(v)
    if vtype == ARRAY:  # v = (element type, [elements])
        etype, items = v
        return struct.pack("<IQ", etype, len(items)) + b"".join(value(etype, x) for x in items)
    return struct.pack(SCALAR[vtype], v)


def kv(key, vtype, v):
    return gstr(key) + struct.pack("<I", vtype) + value(vtype, v)


def pad(n, a):
    return (n + a - 1) // a * a


def gguf(kvs, tensors, alignment=32, magic=b"GGUF", version=3, n_tensors=None, n_kv=None):
    """kvs: encoded entries; tensors: (name, ne innermost first, type code, data bytes[, offset])."""
    out = magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                              len(kvs) if n_kv is None else n_kv) + b"".join(kvs)
    offsets, at = [], 0
    for t in tensors:
        offsets.append(t[4] if len(t) > 4 else at)
        at = pad(offsets[-1] + len(t[3]), alignment)
    for t, off in zip(tensors, offsets):
        out += gstr(t[0]) + struct.pack("<I", len(t[1])) + b"".join(struct.pack("<Q", d) for d in t[1])
        out += struct.pack("<IQ", t[2], off)
    data_start = pad(len(out), alignment)
    placed = [(t, off) for t, off in zip(tensors, offsets) if off < 1 << 20]  # a huge offset: no data
    data = bytearray(max([0] + [off + len(t[3]) for t, off in placed]))
    for t, off in placed:
        data[off:off + len(t[3])] = t[3]
    return out + bytes(data_start - len(out)) + bytes(data)


# ---- blocks, field by field ---------------------------------------------------------------

def le16(code):
    return struct.pack("<H", code)


def nibbles32(q):  # 32 4-bit codes: element j low nibble of byte j, j + 16 the high one
    return bytes((q[j] & 15) | (q[j + 16] & 15) << 4 for j in range(16))


def high_bits32(q):  # the 5th bits of 32 codes as a u32
    return struct.pack("<I", sum(((q[j] >> 4) & 1) << j for j in range(32)))


def crumbs256(q):  # 256 2-bit codes: element 128 h + 32 s + l in bits 2s of byte 32 h + l
    out = bytearray(64)
    for e in range(256):
        out[(e >> 7) * 32 + (e & 31)] |= (q[e] & 3) << (2 * ((e >> 5) & 3))
    return bytes(out)


def k_nibbles256(q):  # 256 4-bit codes: element 64 c + 32 s + l in nibble s of byte 32 c + l
    out = bytearray(128)
    for e in range(256):
        out[(e >> 6) * 32 + (e & 31)] |= (q[e] & 15) << (4 * ((e >> 5) & 1))
    return bytes(out)


def bit_planes256(bits):  # bit of element 32 b + l in bit b of byte l
    out = bytearray(32)
    for e in range(256):
        out[e & 31] |= (bits[e] & 1) << (e >> 5)
    return bytes(out)


def k_scales(sc, mn):  # eight 6-bit scales and mins of Q4_K / Q5_K in 12 bytes
    out = bytearray(12)
    for j in range(4):
        out[j] = sc[j] | (sc[j + 4] >> 4) << 6
        out[4 + j] = mn[j] | (mn[j + 4] >> 4) << 6
        out[8 + j] = (sc[j + 4] & 15) | (mn[j + 4] & 15) << 4
    return bytes(out)


def q3_scales(s):  # sixteen 6-bit codes: low nibble i // 8 of byte i % 8, high 2 bits of byte 8 + i % 4
    out = bytearray(12)
    for i in range(16):
        out[i % 8] |= (s[i] & 15) << (4 * (i // 8))
        out[8 + i % 4] |= (s[i] >> 4) << (2 * (i // 4))
    return bytes(out)


def d_of(b, k=0):
    return le16(F16_SCALES[(b * (1 + 4 * k) + 7 * k) % len(F16_SCALES)])  # 5 b + 7: every one too


def make_block(fmt, b):
    """Block b: codes chosen so that over the blocks every code meets every position."""
    if fmt in ("Q4_0", "Q4_1"):
        q = [(b + 3 * j) % 16 for j in range(32)]
        return d_of(b) + (d_of(b, 1) if fmt == "Q4_1" else b"") + nibbles32(q)
    if fmt in ("Q5_0", "Q5_1"):
        q = [(b + 5 * j) % 32 for j in range(32)]
        return d_of(b) + (d_of(b, 1) if fmt == "Q5_1" else b"") + high_bits32(q) + nibbles32(q)
    if fmt == "Q8_0":
        return d_of(b) + bytes((8 * b + 9 * j) % 256 for j in range(32))
    if fmt == "Q2_K":
        scales = bytes(((b + k) % 16) | ((3 * b + 5 * k + 1) % 16) << 4 for k in range(16))
        return scales + crumbs256([(b + e + e // 7) % 4 for e in range(256)]) + d_of(b) + d_of(b, 1)
    if fmt == "Q3_K":
        q = [(b + e + e // 5) % 8 for e in range(256)]  # 3-bit: 2 low bits and the hmask bit
        hmask = bit_planes256([v >> 2 for v in q])
        return hmask + crumbs256(q) + q3_scales([(b + 5 * i) % 64 for i in range(16)]) + d_of(b)
    if fmt in ("Q4_K", "Q5_K"):
        sc = [(b + 9 * j) % 64 for j in range(8)]
        mn = [(3 * b + 7 * j + 1) % 64 for j in range(8)]
        q = [(b + e + e // 3) % 32 for e in range(256)]
        head = d_of(b) + d_of(b, 1) + k_scales(sc, mn)
        if fmt == "Q4_K":
            return head + k_nibbles256(q)
        return head + bit_planes256([v >> 4 for v in q]) + k_nibbles256(q)
    if fmt == "Q6_K":
        q = [(b + e + e // 11) % 64 for e in range(256)]
        ql, qh = bytearray(128), bytearray(64)
        for e in range(256):
            h, s, l = e >> 7, (e >> 5) & 3, e & 31
            ql[64 * h + 32 * (s & 1) + l] |= (q[e] & 15) << (4 * (s >> 1))
            qh[32 * h + l] |= (q[e] >> 4) << (2 * s)
        scales = bytes((16 * b + 7 * k) % 256 for k in range(16))
        return bytes(ql) + bytes(qh) + scales + d_of(b)
    raise ValueError(fmt)


# blocks built field by field (8 random ones follow, then more to fill the last row); blocks per row (odd)
PLAN = {"Q4_0": (45, 3), "Q4_1": (45, 3), "Q5_0": (45, 3), "Q5_1": (45, 3), "Q8_0": (45, 3),
        "Q2_K": (32, 5), "Q3_K": (64, 3), "Q4_K": (64, 3), "Q5_K": (64, 3), "Q6_K": (32, 5)}


def quant_tensor(fmt, rng):
    code, elements, nbytes = TYPES[fmt]
    built, per_row = PLAN[fmt]
    n = built + 8
    n += (-n) % per_row
    blocks = [make_block(fmt, b) for b in range(built)]
    blocks += [rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes() for _ in range(n - built)]
    assert all(len(x) == nbytes for x in blocks), fmt
    raw = np.frombuffer(b"".join(blocks), dtype=np.uint8).reshape((n // per_row, per_row * nbytes))
    return raw, (per_row * elements, n // per_row)


def plain_tensor(fmt, rng):
    if fmt == "F32":
        bits = np.concatenate([np.array([0, 0x80000000, 1, 0x007FFFFF, 0x00800000, 0x3F800000, 0x7F7FFFFF,
                                         0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001], dtype=np.uint32),
                               rng.integers(0, 2**32, 117, dtype=np.uint64).astype(np.uint32)])
        return bits.view(np.uint8).reshape((8, 64)), (16, 8)
    # F16 / BF16: every 13th code (all exponents, many mantissas) and the specials
    codes = np.unique(np.concatenate([np.arange(0, 65536, 13), np.array(F16_SCALES),
                                      np.array([0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0x0080, 0x007F])]))
    codes = codes[: len(codes) // 64 * 64].astype(np.uint16)
    return codes.view(np.uint8).reshape((len(codes) // 64, 128)), (64, len(codes) // 64)


def vectors(gguf_py):
    sys.path.insert(0, gguf_py)
    from gguf import quants  # noqa: E402  (the independent reference)
    from gguf.constants import GGMLQuantizationType  # noqa: E402

    rng = np.random.default_rng(20260611)
    tensors = []
    for fmt in TYPES:
        raw, ne = (plain_tensor if TYPES[fmt][1] == 1 else quant_tensor)(fmt, rng)
        with np.errstate(invalid="ignore"):  # infinite scales times zero codes: NaN, as the C side gives
            expected = quants.dequantize(raw, GGMLQuantizationType[fmt]).astype(np.float32, copy=False)
        assert expected.shape == (ne[1], ne[0]), (fmt, expected.shape, ne)
        tensors.append((fmt, list(ne), TYPES[fmt][0], raw.tobytes()))
        tensors.append((fmt + ".expected", list(ne), 0, np.ascontiguousarray(expected).tobytes()))
    # the quantiser too, where gguf-py has one that ggml_quantize_row follows (Q8_0): rows of
    # values over many magnitudes, exact halves of the step among them
    source = (rng.standard_normal((8, 96)) * np.exp2(rng.integers(-20, 10, (8, 1)))).astype(np.float32)
    source[0, :32] = np.arange(-16, 16, dtype=np.float32) * np.float32(127 / 15.5)  # ties at .5
    source[1, :32] = 0
    quantized = quants.quantize(source, GGMLQuantizationType.Q8_0)
    tensors.append(("Q8_0.source", [96, 8], 0, source.tobytes()))
    tensors.append(("Q8_0.quantized", [96, 8], TYPES["Q8_0"][0], quantized.tobytes()))
    # and the other types whose quantiser ggml_quantize_row follows, from the same rows
    for fmt in ("Q4_0", "Q4_1", "Q5_0", "Q5_1"):
        quantized = quants.quantize(source, GGMLQuantizationType[fmt])
        tensors.append((fmt + ".quantized", [96, 8], TYPES[fmt][0], quantized.tobytes()))
    kvs = [kv("general.architecture", STRING, "test-vectors"),
           kv("general.description", STRING, "ggml blocks and their gguf-py dequantize output")]
    path = os.path.join(OUT, "vectors.gguf")
    with open(path, "wb") as f:
        f.write(gguf(kvs, tensors))
    print(f"{path}: {os.path.getsize(path)} bytes, {len(TYPES)} types")


# ---- the small valid file and the malformed corpus ----------------------------------------

def small_kvs():
    return [
        kv("general.architecture", STRING, "qwen_image"),
        kv("test.u8", UINT8, 200), kv("test.i8", INT8, -100), kv("test.u16", UINT16, 60000),
        kv("test.i16", INT16, -30000), kv("test.u32", UINT32, 4000000000), kv("test.i32", INT32, -2000000000),
        kv("test.f32", FLOAT32, 0.15625), kv("test.bool", BOOL, 1), kv("test.u64", UINT64, 2**63 + 5),
        kv("test.i64", INT64, -(2**62)), kv("test.f64", FLOAT64, -2.5),
        kv("test.strings", ARRAY, (STRING, ["a", "", "three"])),
        kv("test.nested", ARRAY, (ARRAY, [(INT16, [1, -2]), (STRING, ["x"]), (UINT8, [])])),
        kv("general.alignment", UINT32, 64),
    ]


def small_tensors():
    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, -6)
    q8 = le16(0x3C00) + bytes(range(32)) + le16(0xB800) + bytes((256 - j) % 256 for j in range(32))
    return [("blk.0.weight", [32, 2], 8, q8), ("bias", [3, 2], 0, f32), ("empty", [0, 4], 1, b"")]


def bad_files():
    """(name, bytes, phrase of the error message)."""
    good = gguf(small_kvs(), small_tensors(), alignment=64)
    t1 = [("w", [32], 8, bytes(34))]
    f32 = [("w", [2], 0, bytes(8))]
    cases = [
        ("empty.gguf", b"", "shorter than"),
        ("short_header.gguf", good[:20], "shorter than"),
        ("bad_magic.gguf", b"GGML" + good[4:], "not a GGUF file"),
        ("version_1.gguf", gguf([], f32, version=1), "version 1 is not supported"),
        ("big_endian.gguf", gguf([], f32, version=3 << 24), "big-endian"),
        ("tensor_count_huge.gguf", gguf([], f32, n_tensors=2**62), "tensor count"),
        ("kv_count_huge.gguf", gguf([kv("a", UINT8, 1)], f32, n_kv=2**40), "metadata count"),
        ("kv_count_short.gguf", gguf([kv("a", UINT8, 1)], f32, n_kv=2), "tensor info 0"),
        ("key_length_huge.gguf", gguf([struct.pack("<Q", 2**63) + b"k"], f32), "key needs"),
        ("key_empty.gguf", gguf([kv("", UINT8, 1)], f32), "key of 0 bytes"),
        ("key_nul.gguf", gguf([kv("a\0b", UINT8, 1)], f32), "NUL"),
        ("string_length_huge.gguf", gguf([gstr("s") + struct.pack("<IQ", STRING, 2**64 - 1)], f32),
         "string value needs"),
        ("value_type_unknown.gguf", gguf([gstr("v") + struct.pack("<I", 13) + b"\0" * 8], f32),
         "unknown value type 13"),
        ("array_type_unknown.gguf", gguf([gstr("v") + struct.pack("<IIQ", ARRAY, 99, 1) + b"\0"], f32),
         "unknown array element type 99"),
        ("array_length_huge.gguf", gguf([gstr("v") + struct.pack("<IIQ", ARRAY, UINT32, 2**61)], f32),
         "cannot fit"),
        ("array_strings_short.gguf", gguf([gstr("v") + struct.pack("<IIQ", ARRAY, STRING, 2) + gstr("ok")
                                           + struct.pack("<Q", 1000)], f32), "string value needs"),
        ("array_too_deep.gguf", gguf([kv("deep", ARRAY, (ARRAY, [(ARRAY, [(ARRAY, [(ARRAY, [(UINT8, [1])])])])]))],
                                     f32), "nested deeper"),
        ("bool_not_0_1.gguf", gguf([gstr("b") + struct.pack("<IB", BOOL, 2)], f32), "neither 0 nor 1"),
        ("duplicate_key.gguf", gguf([kv("k", UINT8, 1), kv("k", UINT8, 2)], f32), "duplicate metadata key"),
        ("alignment_not_pow2.gguf", gguf([kv("general.alignment", UINT32, 48)], f32, alignment=48),
         "not a power of two"),
        ("alignment_zero.gguf", gguf([kv("general.alignment", UINT32, 0)], f32), "not a power of two"),
        ("alignment_wrong_type.gguf", gguf([kv("general.alignment", UINT64, 32)], f32), "expected UINT32"),
        ("name_length_huge.gguf", gguf([], [("w" * 300, [2], 0, bytes(8))]), "longer than 255"),
        ("name_empty.gguf", gguf([], [("", [2], 0, bytes(8))]), "tensor name of 0 bytes"),
        ("too_many_dims.gguf", gguf([], [("w", [1, 1, 1, 1, 1], 0, bytes(4))]), "5 dims"),
        ("dim_negative.gguf", gguf([], [("w", [2**63], 0, b"")]), "above 2^63"),
        ("dims_overflow.gguf", gguf([], [("w", [2**32, 2**32], 0, b"")]), "overflows"),
        ("bytes_overflow.gguf", gguf([], [("w", [2**62, 1], 0, b"")]), "overflows"),
        ("type_unknown.gguf", gguf([], [("w", [2], 99, bytes(8))]), "ggml type 99 (unknown)"),
        ("type_unsupported.gguf", gguf([], [("w", [256], 16, bytes(66))]), "IQ2_XXS) is not supported"),
        ("type_removed.gguf", gguf([], [("w", [32], 4, bytes(20))]), "ggml type 4 (unknown)"),
        ("row_not_whole_blocks.gguf", gguf([], [("w", [48], 8, bytes(51))]), "not whole 32-element blocks"),
        ("offset_misaligned.gguf", gguf([], [("w", [2], 0, bytes(8), 4)]), "not a multiple of the alignment 32"),
        ("offset_past_end.gguf", gguf([], [("w", [2], 0, bytes(8), 2**40)]), "runs past the data area"),
        ("offset_huge.gguf", gguf([], [("w", [2], 0, bytes(8), 2**64 - 32)]), "runs past the data area"),
        ("data_truncated.gguf", gguf([], t1)[:-1], "runs past the data area"),
        ("overlapping.gguf", gguf([], [("a", [16], 0, bytes(64), 0), ("b", [8], 0, bytes(32), 32)]), "overlap"),
        ("duplicate_name.gguf", gguf([], [("w", [2], 0, bytes(8)), ("w", [2], 0, bytes(8))]),
         "duplicate tensor name"),
        ("tensor_info_truncated.gguf", gguf([], f32)[:24 + 8 + 1 + 4 + 4], "cannot fit"),
        ("tensor_dims_truncated.gguf", gguf([kv("pad", STRING, "x" * 40)], [("w", [2, 2, 2], 0, bytes(32))])[:110],
         "dim needs"),
    ]
    # the valid file cut short at points inside every part of it
    for cut in (24, 40, 100, len(good) // 2, len(good) - 1):
        cases.append((f"good_cut_at_{cut}.gguf", good[:cut], ""))
    return good, cases


def corpus():
    good, cases = bad_files()
    with open(os.path.join(OUT, "small.gguf"), "wb") as f:
        f.write(good)
    bad = os.path.join(OUT, "bad")
    os.makedirs(bad, exist_ok=True)
    for old in os.listdir(bad):
        os.remove(os.path.join(bad, old))
    with open(os.path.join(bad, "expected.txt"), "w") as manifest:
        manifest.write("# file<TAB>phrase its error message holds (written by tools/gguf_vectors.py corpus)\n")
        for name, data, phrase in cases:
            with open(os.path.join(bad, name), "wb") as f:
                f.write(data)
            manifest.write(f"{name}\t{phrase}\n")
    print(f"{OUT}: small.gguf ({len(good)} bytes), {len(cases)} malformed files in bad/")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "vectors" and (len(sys.argv) > 2 or os.environ.get("GGUF_PY")):
        vectors(sys.argv[2] if len(sys.argv) > 2 else os.environ["GGUF_PY"])
    elif len(sys.argv) == 2 and sys.argv[1] == "corpus":
        corpus()
    else:
        sys.exit(__doc__)
