/* SPDX-License-Identifier: Apache-2.0 */
/* rng.h — the seeded Gaussian noise of the pipelines: Philox4x32-10 + Box-Muller.
 *
 * PyTorch's generator cannot be reproduced outside PyTorch (spec §4.3), so a seed here
 * means this generator, stated exactly so that anyone can recompute the noise:
 *
 *   Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11):
 *     key     (k0, k1) = (low 32 bits of the seed, high 32 bits of the seed)
 *     counter (c0, c1, c2, c3) = (low 32 bits of b, high 32 bits of b, 0, 0) for block b
 *     10 rounds with multipliers 0xD2511F53, 0xCD9E8D57 and key increments 0x9E3779B9,
 *     0xBB67AE85; a block gives four 32-bit words (u0, u1, u2, u3).
 *   Box-Muller, in double precision, rounded to float at the end:
 *     pair (a, b) -> r = sqrt(-2 ln((a + 1) / 2^32)), θ = 2π · b / 2^32,
 *                    z_first = r cos θ, z_second = r sin θ
 *     block b gives normals 4b, 4b+1 from (u0, u1) and 4b+2, 4b+3 from (u2, u3).
 *
 * So normal number i of a seed depends only on (seed, i): filling [offset, offset + n)
 * gives the same values however the stream is cut. The pipelines draw the initial
 * noise in diffusers' unpacked order, randn(1, 1, C, H, W), element i = (c·H + y)·W + x,
 * and pack it afterwards (docs/pipeline.md). First values for seed 0 (tests/test_pipeline.c
 * checks them): see docs/pipeline.md. */
#ifndef CANVAS_PIPELINE_RNG_H
#define CANVAS_PIPELINE_RNG_H

#include <stdint.h>

/* One Philox4x32-10 block: out = philox(counter, key). */
void rng_philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* Normals number offset .. offset + n - 1 of the stream of `seed`, as float. */
void rng_normal(uint64_t seed, uint64_t offset, float *out, int64_t n);

#endif
