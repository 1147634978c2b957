// CUDA backend of the sparse JL projector. Plain CUDA on raw pointers (no torch headers), so it
// can be compiled and checked with nvcc alone; sjlt_cuda.cpp binds it to torch tensors.
//
// Rows and signs come from sjlt_hash.h, the same code the CPU backend runs, so every backend
// builds the same matrix bit for bit.
//
// project, choice of kernel: the output of a tile of SB samples (SB x d values) is accumulated
// in shared memory while a block streams a slice of coordinates, then added to global memory
// once per block. Shared-memory atomics are far cheaper than global ones and the hash of a
// coordinate is computed once for SB samples. When SB = 1 does not fit in shared memory
// (d > ~12k floats) a global-atomic kernel (one thread per coordinate) is used instead.

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "sjlt_hash.h"

namespace {

constexpr int kThreads = 256;
// Coordinates each block of the shared-memory kernel streams (kThreads * 8 per block: enough
// work to amortise zeroing and flushing the SB x d tile).
constexpr int64_t kCoordsPerBlock = kThreads * 8;
// Default shared memory available to a block without opting in.
constexpr int64_t kSharedBytes = 48 * 1024;
// Largest sample tile: per-thread registers hold SB values of x.
constexpr int kMaxTile = 8;
constexpr int64_t kMaxGridY = 65535;

__device__ __forceinline__ float atomic_add(float* p, float v) { return atomicAdd(p, v); }

__device__ __forceinline__ double atomic_add(double* p, double v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 600
  // No native double atomicAdd before sm_60: compare-and-swap loop.
  unsigned long long* addr = reinterpret_cast<unsigned long long*>(p);
  unsigned long long old = *addr, assumed;
  do {
    assumed = old;
    old = atomicCAS(addr, assumed, __double_as_longlong(v + __longlong_as_double(assumed)));
  } while (assumed != old);
  return __longlong_as_double(old);
#else
  return atomicAdd(p, v);
#endif
}

struct Entry {
  int64_t row;
  bool negative;
};

// Row and sign of entry k of the column whose state is (c1, c2).
__device__ __forceinline__ Entry entry(uint32_t c1, uint32_t c2, int64_t k, int64_t d, int64_t s) {
  const uint32_t h = sjlt::entry_hash(c1, c2, static_cast<uint32_t>(k));
  const int64_t start = sjlt::block_start(k, d, s);
  const uint32_t size = static_cast<uint32_t>(sjlt::block_start(k + 1, d, s) - start);
  return {start + sjlt::offset_in_block(h, size), sjlt::negative(h)};
}

template <typename T, int SB>
__global__ void project_shared_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n,
                                      int64_t c, int64_t d, int64_t s, int64_t offset,
                                      uint32_t key_a, uint32_t key_b, T scale) {
  extern __shared__ unsigned char smem_raw[];
  T* acc = reinterpret_cast<T*>(smem_raw);  // [SB][d]
  const int64_t ntiles = (n + SB - 1) / SB;
  const int64_t jbeg = static_cast<int64_t>(blockIdx.x) * kCoordsPerBlock;
  const int64_t jend = min(c, jbeg + kCoordsPerBlock);
  for (int64_t tile = blockIdx.y; tile < ntiles; tile += gridDim.y) {
    const int64_t i0 = tile * SB;
    const int nrows = static_cast<int>(min(static_cast<int64_t>(SB), n - i0));
    for (int64_t e = threadIdx.x; e < SB * d; e += blockDim.x) acc[e] = T(0);
    __syncthreads();
    for (int64_t j = jbeg + threadIdx.x; j < jend; j += blockDim.x) {
      T xv[SB];
#pragma unroll
      for (int t = 0; t < SB; ++t) xv[t] = t < nrows ? x[(i0 + t) * c + j] : T(0);  // coalesced
      uint32_t c1, c2;
      sjlt::column_state(offset + j, key_a, key_b, &c1, &c2);
      for (int64_t k = 0; k < s; ++k) {
        const Entry en = entry(c1, c2, k, d, s);
        const T v = en.negative ? -scale : scale;
#pragma unroll
        for (int t = 0; t < SB; ++t)
          if (t < nrows) atomic_add(&acc[t * d + en.row], v * xv[t]);
      }
    }
    __syncthreads();
    for (int64_t e = threadIdx.x; e < nrows * d; e += blockDim.x) {
      const T v = acc[e];
      if (v != T(0)) atomic_add(&out[(i0 + e / d) * d + e % d], v);
    }
    __syncthreads();  // acc is reused by the next tile
  }
}

// Fallback for outputs too wide for shared memory: one thread per coordinate, global atomics.
template <typename T>
__global__ void project_global_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n,
                                      int64_t c, int64_t d, int64_t s, int64_t offset,
                                      uint32_t key_a, uint32_t key_b, T scale) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= c) return;
  uint32_t c1, c2;
  sjlt::column_state(offset + j, key_a, key_b, &c1, &c2);
  for (int64_t k = 0; k < s; ++k) {
    const Entry en = entry(c1, c2, k, d, s);
    const T v = en.negative ? -scale : scale;
    for (int64_t i = blockIdx.y; i < n; i += gridDim.y)
      atomic_add(&out[i * d + en.row], v * x[i * c + j]);
  }
}

// out[i, j] = sum_k val_k(j) * y[i, row_k(j)]: a gather, one thread per coordinate and tile of
// kMaxTile samples, no atomics.
template <typename T>
__global__ void transpose_kernel(const T* __restrict__ y, T* __restrict__ out, int64_t n,
                                 int64_t length, int64_t d, int64_t s, int64_t offset,
                                 uint32_t key_a, uint32_t key_b, T scale) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= length) return;
  uint32_t c1, c2;
  sjlt::column_state(offset + j, key_a, key_b, &c1, &c2);
  const int64_t ntiles = (n + kMaxTile - 1) / kMaxTile;
  for (int64_t tile = blockIdx.y; tile < ntiles; tile += gridDim.y) {
    const int64_t i0 = tile * kMaxTile;
    const int nrows = static_cast<int>(min(static_cast<int64_t>(kMaxTile), n - i0));
    T sum[kMaxTile];
#pragma unroll
    for (int t = 0; t < kMaxTile; ++t) sum[t] = T(0);
    for (int64_t k = 0; k < s; ++k) {
      const Entry en = entry(c1, c2, k, d, s);
      const T v = en.negative ? -scale : scale;
#pragma unroll
      for (int t = 0; t < kMaxTile; ++t)
        if (t < nrows) sum[t] += v * y[(i0 + t) * d + en.row];
    }
#pragma unroll
    for (int t = 0; t < kMaxTile; ++t)
      if (t < nrows) out[(i0 + t) * length + j] = sum[t];  // coalesced across j
  }
}

__global__ void rows_kernel(int64_t* __restrict__ rows, int8_t* __restrict__ signs, int64_t count,
                            int64_t d, int64_t s, int64_t offset, uint32_t key_a,
                            uint32_t key_b) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= count) return;
  uint32_t c1, c2;
  sjlt::column_state(offset + j, key_a, key_b, &c1, &c2);
  for (int64_t k = 0; k < s; ++k) {
    const Entry en = entry(c1, c2, k, d, s);
    rows[j * s + k] = en.row;
    signs[j * s + k] = en.negative ? -1 : 1;
  }
}

unsigned grid_x(int64_t items, int64_t per_block) {
  return static_cast<unsigned>((items + per_block - 1) / per_block);
}

unsigned grid_y(int64_t items) { return static_cast<unsigned>(items < kMaxGridY ? items : kMaxGridY); }

template <typename T, int SB>
cudaError_t launch_shared(const T* x, T* out, int64_t n, int64_t c, int64_t d, int64_t s,
                          int64_t offset, uint32_t key_a, uint32_t key_b, cudaStream_t stream) {
  const dim3 grid(grid_x(c, kCoordsPerBlock), grid_y((n + SB - 1) / SB));
  const size_t shared = static_cast<size_t>(SB) * d * sizeof(T);
  const T scale = T(1) / sqrt(T(s));
  project_shared_kernel<T, SB><<<grid, kThreads, shared, stream>>>(x, out, n, c, d, s, offset,
                                                                   key_a, key_b, scale);
  return cudaGetLastError();
}

}  // namespace

// out (n, d) += P x for coordinates offset .. offset + c - 1 (row-major, contiguous).
template <typename T>
cudaError_t sjlt_cuda_project(const T* x, T* out, int64_t n, int64_t c, int64_t d, int64_t s,
                              int64_t offset, uint32_t key_a, uint32_t key_b,
                              cudaStream_t stream) {
  if (n == 0 || c == 0) return cudaSuccess;
  // Widest sample tile whose accumulator fits in shared memory and is not mostly padding.
  const int64_t fit = kSharedBytes / (d * static_cast<int64_t>(sizeof(T)));
  if (fit >= 8 && n >= 8) return launch_shared<T, 8>(x, out, n, c, d, s, offset, key_a, key_b, stream);
  if (fit >= 4 && n >= 4) return launch_shared<T, 4>(x, out, n, c, d, s, offset, key_a, key_b, stream);
  if (fit >= 2 && n >= 2) return launch_shared<T, 2>(x, out, n, c, d, s, offset, key_a, key_b, stream);
  if (fit >= 1) return launch_shared<T, 1>(x, out, n, c, d, s, offset, key_a, key_b, stream);
  const dim3 grid(grid_x(c, kThreads), grid_y(n));
  project_global_kernel<T><<<grid, kThreads, 0, stream>>>(x, out, n, c, d, s, offset, key_a,
                                                          key_b, T(1) / sqrt(T(s)));
  return cudaGetLastError();
}

// out (n, length) = P^T y for coordinates offset .. offset + length - 1.
template <typename T>
cudaError_t sjlt_cuda_transpose(const T* y, T* out, int64_t n, int64_t length, int64_t d,
                                int64_t s, int64_t offset, uint32_t key_a, uint32_t key_b,
                                cudaStream_t stream) {
  if (n == 0 || length == 0) return cudaSuccess;
  const dim3 grid(grid_x(length, kThreads), grid_y((n + kMaxTile - 1) / kMaxTile));
  transpose_kernel<T><<<grid, kThreads, 0, stream>>>(y, out, n, length, d, s, offset, key_a,
                                                     key_b, T(1) / sqrt(T(s)));
  return cudaGetLastError();
}

// rows (count, s) int64 and signs (count, s) int8 of coordinates offset .. offset + count - 1.
cudaError_t sjlt_cuda_rows(int64_t* rows, int8_t* signs, int64_t count, int64_t d, int64_t s,
                           int64_t offset, uint32_t key_a, uint32_t key_b, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  rows_kernel<<<grid_x(count, kThreads), kThreads, 0, stream>>>(rows, signs, count, d, s, offset,
                                                                key_a, key_b);
  return cudaGetLastError();
}

template cudaError_t sjlt_cuda_project<float>(const float*, float*, int64_t, int64_t, int64_t,
                                              int64_t, int64_t, uint32_t, uint32_t, cudaStream_t);
template cudaError_t sjlt_cuda_project<double>(const double*, double*, int64_t, int64_t, int64_t,
                                               int64_t, int64_t, uint32_t, uint32_t,
                                               cudaStream_t);
template cudaError_t sjlt_cuda_transpose<float>(const float*, float*, int64_t, int64_t, int64_t,
                                                int64_t, int64_t, uint32_t, uint32_t,
                                                cudaStream_t);
template cudaError_t sjlt_cuda_transpose<double>(const double*, double*, int64_t, int64_t,
                                                 int64_t, int64_t, int64_t, uint32_t, uint32_t,
                                                 cudaStream_t);
