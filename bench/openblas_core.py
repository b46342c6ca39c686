# SPDX-License-Identifier: Apache-2.0
"""openblas_core.py - make the PyTorch yardstick's OpenBLAS use the CPU's vector units.

On virtual machines that hide the CPU model (cpuid "Intel(R) Xeon(R) Processor"),
OpenBLAS's runtime detection falls back to its Prescott (SSE3) kernels: 13 GFLOP per
CPU-second on a 290 x 3584 x 18944 sgemm where SkylakeX's reach ~110. Import this module
before torch: unless OPENBLAS_CORETYPE is set already, it names the core the CPU's flags
allow (SkylakeX with AVX-512 F/DQ/BW/VL, Haswell with AVX2 + FMA) and returns it."""
import os


def choose():
    if os.environ.get("OPENBLAS_CORETYPE"):
        return os.environ["OPENBLAS_CORETYPE"]
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "detected by OpenBLAS"
    if all(f in flags for f in ("avx512f", "avx512dq", "avx512bw", "avx512vl")):
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif all(f in flags for f in ("avx2", "fma")):
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    else:
        return "detected by OpenBLAS"
    return os.environ["OPENBLAS_CORETYPE"]


CORE = choose()
