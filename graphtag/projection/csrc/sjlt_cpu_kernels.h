// Hot loops of the CPU sparse JL backend. No include guard on purpose: sjlt_cpu.cpp includes
// this file once per instruction set, each time inside its own namespace and
// `#pragma GCC target` region, so the same source is compiled for baseline x86-64, AVX2 and
// AVX-512 and the best one is picked at run time (wheels stay portable: no -march=native).
//
// Expects from the includer: kBlock, Geometry, ProjectWork, TransposeWork, Scratch, VecOf,
// SJLT_INLINE and, for the SIMD variants, SJLT_SIMD_AVX2 or SJLT_SIMD_AVX512 defined.

// ---- hashing --------------------------------------------------------------------------------

// Rows (pre-multiplied by `row_stride`, the tile width) and signed values of entry k of m
// coordinates whose column states are c1, c2.
template <typename T>
SJLT_INLINE void hash_entries(int64_t m, uint32_t k, int32_t start, uint32_t size,
                              int32_t row_stride, T scale, const uint32_t* __restrict c1,
                              const uint32_t* __restrict c2, int32_t* __restrict rows,
                              T* __restrict vals) {
  for (int64_t j = 0; j < m; ++j) {
    const uint32_t h = sjlt::entry_hash(c1[j], c2[j], k);
    rows[j] = (start + static_cast<int32_t>(sjlt::offset_in_block(h, size))) * row_stride;
    // Same as sjlt::negative(h) ? -scale : scale, written so that it vectorises.
    vals[j] = scale * static_cast<T>(1 - 2 * static_cast<int32_t>(h & 1u));
  }
}

// Rows and values of coordinates first .. first + m - 1, k-major with leading dimension kBlock.
template <typename T>
SJLT_INLINE void hash_block(const Geometry& geo, int64_t first, int64_t m, int32_t row_stride,
                            int32_t* __restrict rows, T* __restrict vals, uint32_t* __restrict c1,
                            uint32_t* __restrict c2) {
  const uint32_t key_a = geo.key_a, key_b = geo.key_b;
  for (int64_t j = 0; j < m; ++j) sjlt::column_state(first + j, key_a, key_b, c1 + j, c2 + j);
  const T scale = T(1) / std::sqrt(T(geo.s));
  for (int64_t k = 0; k < geo.s; ++k)
    hash_entries<T>(m, static_cast<uint32_t>(k), geo.start[k], geo.size[k], row_stride, scale,
                    c1, c2, rows + k * kBlock, vals + k * kBlock);
}

// ---- portable tile path ---------------------------------------------------------------------
// The x block is transposed into tile[j][t] (SSE 4x4 squares), then every (j, k) is one
// G-wide vector multiply-add on acc[row][:]. Used by the baseline build and for G < 8.

// dst[q * dst_ld + t] = src[t * src_ld + q] for a 16-byte square (4x4 float, 2x2 double).
#if defined(__SSE2__)
SJLT_INLINE void transpose_square(const float* src, int64_t src_ld, float* dst, int64_t dst_ld) {
  __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + src_ld);
  __m128 r2 = _mm_loadu_ps(src + 2 * src_ld), r3 = _mm_loadu_ps(src + 3 * src_ld);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + dst_ld, r1);
  _mm_storeu_ps(dst + 2 * dst_ld, r2);
  _mm_storeu_ps(dst + 3 * dst_ld, r3);
}
SJLT_INLINE void transpose_square(const double* src, int64_t src_ld, double* dst, int64_t dst_ld) {
  const __m128d r0 = _mm_loadu_pd(src), r1 = _mm_loadu_pd(src + src_ld);
  _mm_storeu_pd(dst, _mm_unpacklo_pd(r0, r1));
  _mm_storeu_pd(dst + dst_ld, _mm_unpackhi_pd(r0, r1));
}
#else
template <typename T>
SJLT_INLINE void transpose_square(const T* src, int64_t src_ld, T* dst, int64_t dst_ld) {
  constexpr int kQ = 16 / sizeof(T);
  for (int a = 0; a < kQ; ++a)
    for (int b = 0; b < kQ; ++b) dst[b * dst_ld + a] = src[a * src_ld + b];
}
#endif

// tile[j][t] = src[t * ld + j] for t < valid, 0 for the padding samples t >= valid.
template <typename T, int G>
SJLT_INLINE void load_tile(const T* __restrict src, int64_t ld, int64_t valid, int64_t m,
                           T* __restrict tile) {
  if constexpr (G == 1) {
    std::memcpy(tile, src, sizeof(T) * m);
  } else {
    constexpr int64_t kQ = 16 / sizeof(T);
    const int64_t full = (valid / kQ) * kQ;
    const int64_t mq = (m / kQ) * kQ;
    for (int64_t t = 0; t < full; t += kQ) {
      for (int64_t j = 0; j < mq; j += kQ)
        transpose_square(src + t * ld + j, ld, tile + j * G + t, G);
      for (int64_t j = mq; j < m; ++j)
        for (int64_t q = 0; q < kQ; ++q) tile[j * G + t + q] = src[(t + q) * ld + j];
    }
    for (int64_t j = 0; j < m; ++j) {
      for (int64_t t = full; t < valid; ++t) tile[j * G + t] = src[t * ld + j];
      for (int64_t t = valid; t < G; ++t) tile[j * G + t] = T(0);
    }
  }
}

// dst[t * ld + j] = tile[j][t] for t < valid (inverse of load_tile).
template <typename T, int G>
SJLT_INLINE void store_tile(const T* __restrict tile, int64_t valid, int64_t m, T* __restrict dst,
                            int64_t ld) {
  if constexpr (G == 1) {
    std::memcpy(dst, tile, sizeof(T) * m);
  } else {
    constexpr int64_t kQ = 16 / sizeof(T);
    const int64_t full = (valid / kQ) * kQ;
    const int64_t mq = (m / kQ) * kQ;
    for (int64_t t = 0; t < full; t += kQ) {
      for (int64_t j = 0; j < mq; j += kQ)
        transpose_square(tile + j * G + t, G, dst + t * ld + j, ld);
      for (int64_t j = mq; j < m; ++j)
        for (int64_t q = 0; q < kQ; ++q) dst[(t + q) * ld + j] = tile[j * G + t + q];
    }
    for (int64_t t = full; t < valid; ++t)
      for (int64_t j = 0; j < m; ++j) dst[t * ld + j] = tile[j * G + t];
  }
}

// acc[row_k(j)][:] += val_k(j) * tile[j][:] (rows are pre-multiplied by G).
template <typename T, int G>
SJLT_INLINE void scatter_tile(int64_t m, int64_t s, const int32_t* __restrict rows,
                              const T* __restrict vals, const T* __restrict tile,
                              T* __restrict acc) {
  if constexpr (G == 1) {
    for (int64_t j = 0; j < m; ++j) {
      const T xv = tile[j];
      for (int64_t k = 0; k < s; ++k) acc[rows[k * kBlock + j]] += vals[k * kBlock + j] * xv;
    }
  } else {
    using V = typename VecOf<T, G>::type;
    for (int64_t j = 0; j < m; ++j) {
      const V xv = *reinterpret_cast<const V*>(tile + j * G);
      for (int64_t k = 0; k < s; ++k)
        *reinterpret_cast<V*>(acc + rows[k * kBlock + j]) += vals[k * kBlock + j] * xv;
    }
  }
}

// out[j][:] = sum_k val_k(j) * yt[row_k(j)][:].
template <typename T, int G>
SJLT_INLINE void gather_tile(int64_t m, int64_t s, const int32_t* __restrict rows,
                             const T* __restrict vals, const T* __restrict yt,
                             T* __restrict out) {
  if constexpr (G == 1) {
    for (int64_t j = 0; j < m; ++j) {
      T sum = T(0);
      for (int64_t k = 0; k < s; ++k) sum += vals[k * kBlock + j] * yt[rows[k * kBlock + j]];
      out[j] = sum;
    }
  } else {
    using V = typename VecOf<T, G>::type;
    for (int64_t j = 0; j < m; ++j) {
      V sum = vals[j] * *reinterpret_cast<const V*>(yt + rows[j]);
      for (int64_t k = 1; k < s; ++k)
        sum += vals[k * kBlock + j] * *reinterpret_cast<const V*>(yt + rows[k * kBlock + j]);
      *reinterpret_cast<V*>(out + j * G) = sum;
    }
  }
}

// ---- fused register path (AVX2 / AVX-512) ---------------------------------------------------
// L x L squares of x (L samples x L coordinates) are transposed in registers and scattered
// straight from there: no tile round trip through memory, and the transpose costs ~0.25
// shuffles per element instead of a store and a reload. A group of G samples is handled as
// G / L strips of L samples; strip h owns lanes h*L .. h*L+L-1 of each acc row.

#if defined(SJLT_SIMD_AVX512) || defined(SJLT_SIMD_AVX2)
#define SJLT_HAS_SIMD 1

#if defined(SJLT_SIMD_AVX512)
struct SimdF32 {
  using T = float;
  using V = __m512;
  static constexpr int L = 16;
  static SJLT_INLINE V load(const T* p) { return _mm512_loadu_ps(p); }
  static SJLT_INLINE V load_a(const T* p) { return _mm512_load_ps(p); }
  static SJLT_INLINE void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static SJLT_INLINE void store_a(T* p, V v) { _mm512_store_ps(p, v); }
  static SJLT_INLINE V zero() { return _mm512_setzero_ps(); }
  static SJLT_INLINE V fma(T a, V b, V c) { return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c); }
  // r[t][q] -> r[q][t] for a 16 x 16 square: 4 rounds of 16 two-input shuffles.
  static SJLT_INLINE void transpose(V* r) {
    V t[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
      for (int h = 0; h < 2; ++h) {
        const __m512d a = _mm512_castps_pd(t[i + h]), b = _mm512_castps_pd(t[i + h + 2]);
        r[i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
      }
    for (int i = 0; i < 16; i += 8)
      for (int q = 0; q < 4; ++q) {
        t[i + q] = _mm512_shuffle_f32x4(r[i + q], r[i + q + 4], 0x88);
        t[i + q + 4] = _mm512_shuffle_f32x4(r[i + q], r[i + q + 4], 0xdd);
      }
    for (int q = 0; q < 8; ++q) {
      r[q] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0x88);
      r[q + 8] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0xdd);
    }
  }
};

struct SimdF64 {
  using T = double;
  using V = __m512d;
  static constexpr int L = 8;
  static SJLT_INLINE V load(const T* p) { return _mm512_loadu_pd(p); }
  static SJLT_INLINE V load_a(const T* p) { return _mm512_load_pd(p); }
  static SJLT_INLINE void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static SJLT_INLINE void store_a(T* p, V v) { _mm512_store_pd(p, v); }
  static SJLT_INLINE V zero() { return _mm512_setzero_pd(); }
  static SJLT_INLINE V fma(T a, V b, V c) { return _mm512_fmadd_pd(_mm512_set1_pd(a), b, c); }
  // 8 x 8: pair rows within 128-bit lanes, then two rounds of lane shuffles.
  static SJLT_INLINE void transpose(V* r) {
    V t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0x88);
      u[i + 1] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0xdd);
      u[i + 2] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0x88);
      u[i + 3] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0xdd);
    }
    r[0] = _mm512_shuffle_f64x2(u[0], u[4], 0x88);
    r[4] = _mm512_shuffle_f64x2(u[0], u[4], 0xdd);
    r[2] = _mm512_shuffle_f64x2(u[1], u[5], 0x88);
    r[6] = _mm512_shuffle_f64x2(u[1], u[5], 0xdd);
    r[1] = _mm512_shuffle_f64x2(u[2], u[6], 0x88);
    r[5] = _mm512_shuffle_f64x2(u[2], u[6], 0xdd);
    r[3] = _mm512_shuffle_f64x2(u[3], u[7], 0x88);
    r[7] = _mm512_shuffle_f64x2(u[3], u[7], 0xdd);
  }
};
#else  // AVX2
struct SimdF32 {
  using T = float;
  using V = __m256;
  static constexpr int L = 8;
  static SJLT_INLINE V load(const T* p) { return _mm256_loadu_ps(p); }
  static SJLT_INLINE V load_a(const T* p) { return _mm256_load_ps(p); }
  static SJLT_INLINE void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static SJLT_INLINE void store_a(T* p, V v) { _mm256_store_ps(p, v); }
  static SJLT_INLINE V zero() { return _mm256_setzero_ps(); }
  static SJLT_INLINE V fma(T a, V b, V c) { return _mm256_fmadd_ps(_mm256_set1_ps(a), b, c); }
  static SJLT_INLINE void transpose(V* r) {
    V t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
      u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
      u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int q = 0; q < 4; ++q) {
      r[q] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x20);
      r[q + 4] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x31);
    }
  }
};

struct SimdF64 {
  using T = double;
  using V = __m256d;
  static constexpr int L = 4;
  static SJLT_INLINE V load(const T* p) { return _mm256_loadu_pd(p); }
  static SJLT_INLINE V load_a(const T* p) { return _mm256_load_pd(p); }
  static SJLT_INLINE void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static SJLT_INLINE void store_a(T* p, V v) { _mm256_store_pd(p, v); }
  static SJLT_INLINE V zero() { return _mm256_setzero_pd(); }
  static SJLT_INLINE V fma(T a, V b, V c) { return _mm256_fmadd_pd(_mm256_set1_pd(a), b, c); }
  static SJLT_INLINE void transpose(V* r) {
    const V t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const V t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
  }
};
#endif

template <typename T>
struct SimdOf;
template <>
struct SimdOf<float> {
  using type = SimdF32;
};
template <>
struct SimdOf<double> {
  using type = SimdF64;
};

// Scatter of one sample group (rows x[0..valid) at stride ld, coordinates 0..m) into acc.
template <typename T, int G>
SJLT_INLINE void scatter_fused(const T* __restrict x, int64_t ld, int64_t valid, int64_t m,
                               int64_t s, const int32_t* __restrict rows,
                               const T* __restrict vals, T* __restrict acc) {
  using S = typename SimdOf<T>::type;
  using V = typename S::V;
  constexpr int L = S::L;
  static_assert(G % L == 0, "group width must be a multiple of the vector width");
  for (int h = 0; h * L < valid; ++h) {
    const int64_t nrows = std::min<int64_t>(L, valid - h * L);
    const T* __restrict xh = x + h * L * ld;
    T* __restrict acc_h = acc + h * L;
    int64_t j = 0;
    for (; j + L <= m; j += L) {
      V r[L];
#pragma GCC unroll 16
      for (int t = 0; t < L; ++t) {
        // Each row is read in kBlock-long bursts, too short for the hardware prefetcher to
        // lock on; a few lines of software prefetch ahead gain ~30% at n = 64.
        if (t < nrows)
          _mm_prefetch(reinterpret_cast<const char*>(xh + t * ld + j) + kPrefetchBytes,
                       _MM_HINT_T0);
        r[t] = t < nrows ? S::load(xh + t * ld + j) : S::zero();
      }
      S::transpose(r);
#pragma GCC unroll 16
      for (int q = 0; q < L; ++q) {
        const int32_t* __restrict rq = rows + j + q;
        const T* __restrict vq = vals + j + q;
        for (int64_t k = 0; k < s; ++k) {
          T* a = acc_h + rq[k * kBlock];
          S::store_a(a, S::fma(vq[k * kBlock], r[q], S::load_a(a)));
        }
      }
    }
    if (j < m) {  // ragged end of the block: go through a zero-padded square
      alignas(64) T sq[L * L] = {};
      for (int64_t t = 0; t < nrows; ++t)
        for (int64_t q = 0; q < m - j; ++q) sq[t * L + q] = xh[t * ld + j + q];
      V r[L];
      for (int t = 0; t < L; ++t) r[t] = S::load_a(sq + t * L);
      S::transpose(r);
      for (int t = 0; t < L; ++t) S::store_a(sq + t * L, r[t]);
      for (int64_t q = 0; q < m - j; ++q) {
        const V xq = S::load_a(sq + q * L);
        for (int64_t k = 0; k < s; ++k) {
          T* a = acc_h + rows[k * kBlock + j + q];
          S::store_a(a, S::fma(vals[k * kBlock + j + q], xq, S::load_a(a)));
        }
      }
    }
  }
}

// out[t * ld + j] = sum_k val_k(j) * yt[row_k(j)][t] for one sample group.
template <typename T, int G>
SJLT_INLINE void gather_fused(const T* __restrict yt, int64_t valid, int64_t m, int64_t s,
                              const int32_t* __restrict rows, const T* __restrict vals,
                              T* __restrict out, int64_t ld) {
  using S = typename SimdOf<T>::type;
  using V = typename S::V;
  constexpr int L = S::L;
  for (int h = 0; h * L < valid; ++h) {
    const int64_t nrows = std::min<int64_t>(L, valid - h * L);
    const T* __restrict yh = yt + h * L;
    T* __restrict oh = out + h * L * ld;
    for (int64_t j = 0; j < m; j += L) {
      const int64_t cnt = std::min<int64_t>(L, m - j);
      V r[L];
      if (cnt == L) {
#pragma GCC unroll 16
        for (int q = 0; q < L; ++q) {
          V sum = S::zero();
          for (int64_t k = 0; k < s; ++k)
            sum = S::fma(vals[k * kBlock + j + q], S::load_a(yh + rows[k * kBlock + j + q]), sum);
          r[q] = sum;
        }
      } else {
        for (int q = 0; q < L; ++q) {
          V sum = S::zero();
          for (int64_t k = 0; q < cnt && k < s; ++k)
            sum = S::fma(vals[k * kBlock + j + q], S::load_a(yh + rows[k * kBlock + j + q]), sum);
          r[q] = sum;
        }
      }
      S::transpose(r);
      if (cnt == L) {
        for (int64_t t = 0; t < nrows; ++t) S::store(oh + t * ld + j, r[t]);
      } else {
        alignas(64) T sq[L];
        for (int64_t t = 0; t < nrows; ++t) {
          S::store_a(sq, r[t]);
          for (int64_t q = 0; q < cnt; ++q) oh[t * ld + j + q] = sq[q];
        }
      }
    }
  }
}
#endif  // SIMD

// ---- per-thread work ------------------------------------------------------------------------

// Scatter of coordinate blocks [b0, b1) for sample groups [g0, g1) into acc ([g - g0][row][t]).
template <typename T, int G>
SJLT_INLINE void project_groups(const ProjectWork<T, G>& w, int64_t g0, int64_t g1, T* acc) {
  const Geometry& geo = *w.geo;
  const int64_t tile_elems = geo.d * G;
  int32_t* rows = w.scratch->rows.get();
  T* vals = w.scratch->vals.get();
  for (int64_t b = w.b0; b < w.b1; ++b) {
    const int64_t j0 = b * kBlock;
    const int64_t m = std::min(kBlock, w.c - j0);
    hash_block<T>(geo, w.offset + j0, m, G, rows, vals, w.scratch->c1.get(),
                  w.scratch->c2.get());
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t i0 = g * G;
      const int64_t valid = std::min<int64_t>(G, w.n - i0);
      T* acc_g = acc + (g - g0) * tile_elems;
#if defined(SJLT_HAS_SIMD)
      if constexpr (G % SimdOf<T>::type::L == 0) {
        scatter_fused<T, G>(w.x + i0 * w.c + j0, w.c, valid, m, geo.s, rows, vals, acc_g);
        continue;
      }
#endif
      T* tile = w.scratch->tile.get();
      load_tile<T, G>(w.x + i0 * w.c + j0, w.c, valid, m, tile);
      scatter_tile<T, G>(m, geo.s, rows, vals, tile, acc_g);
    }
  }
}

template <typename T, int G>
void project_work(const ProjectWork<T, G>& w) {
  if (w.acc != nullptr) {  // private copy, reduced by the driver
    project_groups<T, G>(w, w.g0, w.g1, w.acc);
    return;
  }
  // The thread owns groups g0..g1: accumulate a cache-sized chunk, add it to out, repeat.
  const int64_t d = w.geo->d;
  const int64_t per_chunk = chunk_groups<T, G>(d);
  T* acc = w.scratch->chunk.get();
  for (int64_t c0 = w.g0; c0 < w.g1; c0 += per_chunk) {
    const int64_t c1 = std::min(w.g1, c0 + per_chunk);
    std::fill(acc, acc + (c1 - c0) * d * G, T(0));
    project_groups<T, G>(w, c0, c1, acc);
    for (int64_t g = c0; g < c1; ++g) {
      const int64_t valid = std::min<int64_t>(G, w.n - g * G);
      const T* __restrict src = acc + (g - c0) * d * G;
      for (int64_t t = 0; t < valid; ++t) {
        T* __restrict o = w.out + (g * G + t) * d;
        for (int64_t r = 0; r < d; ++r) o[r] += src[r * G + t];
      }
    }
  }
}

template <typename T, int G>
void transpose_work(const TransposeWork<T, G>& w) {
  const Geometry& geo = *w.geo;
  const int64_t d = geo.d;
  const int64_t per_chunk = chunk_groups<T, G>(d);
  int32_t* rows = w.scratch->rows.get();
  T* vals = w.scratch->vals.get();
  T* yt = w.scratch->chunk.get();
  for (int64_t c0 = w.g0; c0 < w.g1; c0 += per_chunk) {
    const int64_t c1 = std::min(w.g1, c0 + per_chunk);
    for (int64_t g = c0; g < c1; ++g) {  // stage y of the chunk as [g][row][t]
      const int64_t valid = std::min<int64_t>(G, w.n - g * G);
      T* __restrict dst = yt + (g - c0) * d * G;
      for (int64_t t = 0; t < G; ++t) {
        const T* __restrict src = w.y + (g * G + t) * d;
        if (t < valid)
          for (int64_t r = 0; r < d; ++r) dst[r * G + t] = src[r];
        else
          for (int64_t r = 0; r < d; ++r) dst[r * G + t] = T(0);
      }
    }
    for (int64_t b = w.b0; b < w.b1; ++b) {
      const int64_t j0 = b * kBlock;
      const int64_t m = std::min(kBlock, w.length - j0);
      hash_block<T>(geo, w.offset + j0, m, G, rows, vals, w.scratch->c1.get(),
                    w.scratch->c2.get());
      for (int64_t g = c0; g < c1; ++g) {
        const int64_t i0 = g * G;
        const int64_t valid = std::min<int64_t>(G, w.n - i0);
        const T* yt_g = yt + (g - c0) * d * G;
        T* out = w.out + i0 * w.length + j0;
#if defined(SJLT_HAS_SIMD)
        if constexpr (G % SimdOf<T>::type::L == 0) {
          gather_fused<T, G>(yt_g, valid, m, geo.s, rows, vals, out, w.length);
          continue;
        }
#endif
        T* tile = w.scratch->tile.get();
        gather_tile<T, G>(m, geo.s, rows, vals, yt_g, tile);
        store_tile<T, G>(tile, valid, m, out, w.length);
      }
    }
  }
}

#undef SJLT_HAS_SIMD
