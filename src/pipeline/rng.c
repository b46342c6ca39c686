/* SPDX-License-Identifier: Apache-2.0 */
/* rng.c — Philox4x32-10 and Box-Muller (the contract is in rng.h). */
#include "pipeline/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void rng_philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* Two normals from two words; (a + 1) / 2^32 lies in (0, 1], so the logarithm is finite. */
static void box_muller(uint32_t a, uint32_t b, float *first, float *second)
{
    const double two_pi = 6.283185307179586476925286766559;
    double u = ((double)a + 1.0) * (1.0 / 4294967296.0);
    double theta = two_pi * ((double)b * (1.0 / 4294967296.0));
    double r = sqrt(-2.0 * log(u));
    *first = (float)(r * cos(theta));
    *second = (float)(r * sin(theta));
}

void rng_normal(uint64_t seed, uint64_t offset, float *out, int64_t n)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    int64_t done = 0;
    while (done < n) {
        uint64_t index = offset + (uint64_t)done;
        uint64_t block = index / 4;
        const uint32_t counter[4] = {(uint32_t)block, (uint32_t)(block >> 32), 0, 0};
        uint32_t words[4];
        float normals[4];
        rng_philox4x32(counter, key, words);
        box_muller(words[0], words[1], &normals[0], &normals[1]);
        box_muller(words[2], words[3], &normals[2], &normals[3]);
        for (unsigned lane = (unsigned)(index % 4); lane < 4 && done < n; lane++) out[done++] = normals[lane];
    }
}
