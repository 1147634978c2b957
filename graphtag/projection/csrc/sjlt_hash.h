// Hash that defines the sparse JL matrix. Shared by the C++ (sjlt_cpu.cpp) and CUDA
// (sjlt_cuda_kernel.cu) backends; graphtag/projection/reference.py mirrors it in torch int64 ops.
// Any change here must be made there too (tests/test_projection.py checks bit-identity).
//
// Everything works on 32-bit lanes and every multiplier is < 2^31, so the torch mirror can
// compute each product exactly in int64 (value < 2^32 times constant < 2^31 < 2^63) and mask
// with 0xFFFFFFFF, which is what uint32 wrap-around does here.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define SJLT_HD __host__ __device__ __forceinline__
#else
#define SJLT_HD inline __attribute__((always_inline))
#endif

namespace sjlt {

// xorshift-multiply finaliser (the "lowbias32" shape); both multipliers are odd, so the mix is
// a bijection of uint32, and below 2^31 for the int64 mirror.
constexpr uint32_t kMul1 = 0x21f0aaadu;
constexpr uint32_t kMul2 = 0x735a2d97u;
// Weyl increment separating the s entries of one column (2^32 / golden ratio).
constexpr uint32_t kGamma = 0x9e3779b9u;
// Folds the high word of the coordinate index in; odd, hence injective on the high word.
constexpr uint32_t kHiMul = 0x2545f491u;

SJLT_HD uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= kMul1;
  x ^= x >> 15;
  x *= kMul2;
  x ^= x >> 15;
  return x;
}

// Two 32-bit column states from (key, j). c1 alone is a bijection of the low word, so distinct
// coordinates below 2^32 never share (c1, c2); two independent key lanes make the matrices of
// different seeds unrelated rather than column permutations of each other.
SJLT_HD void column_state(int64_t j, uint32_t key_a, uint32_t key_b, uint32_t* c1, uint32_t* c2) {
  const uint64_t u = static_cast<uint64_t>(j);
  const uint32_t lo = static_cast<uint32_t>(u);
  const uint32_t hi = static_cast<uint32_t>(u >> 32);
  *c1 = mix32(key_a ^ lo);
  *c2 = mix32(key_b ^ lo ^ (hi * kHiMul));
}

// Hash of entry k (0 <= k < s) of a column.
SJLT_HD uint32_t entry_hash(uint32_t c1, uint32_t c2, uint32_t k) {
  return mix32(c1 ^ (c2 + (k + 1u) * kGamma));
}

// Offset inside a block of `size` rows: multiply-shift uses the high bits of h (no modulo).
SJLT_HD uint32_t offset_in_block(uint32_t h, uint32_t size) {
  return static_cast<uint32_t>((static_cast<uint64_t>(h) * size) >> 32);
}

// The lowest bit decides the sign; it is independent of the high bits used for the row.
SJLT_HD bool negative(uint32_t h) { return (h & 1u) != 0u; }

// Block k covers rows [block_start(k), block_start(k + 1)); sizes differ by at most one.
SJLT_HD int64_t block_start(int64_t k, int64_t d, int64_t s) { return (k * d) / s; }

}  // namespace sjlt
