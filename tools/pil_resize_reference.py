#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reference hashes for tests/test_vl_image.c's pil_resize table, from Pillow itself.

Pillow's Image.resize (reducing_gap None) on a synthetic pattern, for every filter the
project reproduces, upscales and downscales, odd sizes, one and three channels. Prints one
C initialiser per case: {in_w, in_h, channels, out_w, out_h, filter, FNV-1a 64 of the output}.
Run with Debian's Pillow (apt-get install python3-pil): /usr/bin/python3 tools/pil_resize_reference.py
"""
from PIL import Image

FILTERS = [("PIL_BILINEAR", Image.BILINEAR), ("PIL_BICUBIC", Image.BICUBIC), ("PIL_LANCZOS", Image.LANCZOS)]
SIZES = [((13, 11), (40, 29)), ((40, 29), (13, 11)), ((97, 61), (31, 60)), ((64, 48), (64, 17)),
         ((23, 50), (7, 50)), ((200, 3), (9, 1)), ((1, 1), (5, 4)), ((96, 64), (480, 320)), ((480, 320), (476, 308))]


def pattern(x, y, c):
    # edges and stripes, so the negative lobes overshoot and clipping is exercised
    return (x * 37 + y * 101 + c * 53 + ((x * y) % 7) * 29 + (96 if (x // 3 + y // 2) % 2 else 0)) & 255


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


for (iw, ih), (ow, oh) in SIZES:
    for channels, mode in ((3, "RGB"), (1, "L")):
        raw = bytes(pattern(x, y, c) for y in range(ih) for x in range(iw) for c in range(channels))
        image = Image.frombytes(mode, (iw, ih), raw)
        for name, f in FILTERS:
            out = image.resize((ow, oh), f).tobytes()
            print(f"    {{{iw}, {ih}, {channels}, {ow}, {oh}, {name}, 0x{fnv1a64(out):016x}u}},")
