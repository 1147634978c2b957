// CPU backend of the sparse JL projector (block CountSketch), see graphtag/projection/sparse.py.
//
// project:   out[i, row_k(j)] += sign_k(j) / sqrt(s) * x[i, j - offset]     (accumulates)
// transpose: out[i, j - offset] = sum_k sign_k(j) / sqrt(s) * y[i, row_k(j)] (overwrites)
//
// Layout of the work (the point of this file is speed, see bench/projector.py):
// * Coordinates are processed in blocks of kBlock. The block's s rows and signed values are
//   hashed once into a small buffer and reused for every sample, so the hash costs O(c s) per
//   call instead of O(n c s).
// * Samples are processed in groups of G (one 64-byte vector: 16 floats / 8 doubles). A group's
//   accumulator is stored transposed, acc[row][t], so one (coordinate, k) pair updates G
//   samples with one contiguous vector multiply-add instead of G scattered scalar ones. x is
//   transposed to match, in registers (AVX2/AVX-512) or through a small tile (baseline).
// * Threads split coordinate blocks (each has private accumulators, reduced at the end: no
//   atomics), or sample groups when there are few blocks or the accumulators would not fit in
//   cache. OpenMP regions live here; only leaf work is ISA-specific.
// * The hot loops (sjlt_cpu_kernels.h) are compiled for baseline x86-64, AVX2+FMA and AVX-512
//   and picked at run time, so the wheel stays portable without -march=native.

#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <omp.h>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "sjlt_hash.h"

namespace sjlt_cpu {

// 1024 coordinates: the hash buffer (s * 1024 * 8 bytes) plus the transposed x block
// (1024 * G * 4 bytes) stay in L2 while they are reused by every sample group.
constexpr int64_t kBlock = 1024;
// Software prefetch distance along each x row in the fused kernels (tuned on Zen 5: 256 B).
constexpr int64_t kPrefetchBytes = 256;
// Private accumulators above this size (bytes per thread) spill out of L2; split samples then.
constexpr int64_t kAccBudget = int64_t(1) << 20;
// When a thread owns its samples it accumulates (or, for transpose, stages y) this many bytes
// of sample groups at a time: cache-sized, and no O(n d) buffer to allocate per call.
constexpr int64_t kChunkBytes = int64_t(256) << 10;
// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kSerialWork = int64_t(1) << 15;

#define SJLT_INLINE inline __attribute__((always_inline))

struct Geometry {
  int64_t d = 0;
  int64_t s = 0;
  uint32_t key_a = 0;
  uint32_t key_b = 0;
  std::vector<int32_t> start;  // first row of each block
  std::vector<uint32_t> size;  // rows in each block

  Geometry(int64_t d_, int64_t s_, int64_t key_a_, int64_t key_b_)
      : d(d_), s(s_), key_a(static_cast<uint32_t>(key_a_)), key_b(static_cast<uint32_t>(key_b_)) {
    for (int64_t k = 0; k < s; ++k) {
      const int64_t lo = sjlt::block_start(k, d, s);
      const int64_t hi = sjlt::block_start(k + 1, d, s);
      start.push_back(static_cast<int32_t>(lo));
      size.push_back(static_cast<uint32_t>(hi - lo));
    }
  }
};

// ---- tiles ---------------------------------------------------------------------------------
// A tile holds G samples side by side: tile[j][t]. Its rows are G * sizeof(T) bytes and the
// buffers are 64-byte aligned, so a tile row is one aligned GCC vector, which each ISA variant
// lowers to its own registers (4 SSE, 2 AVX2 or 1 AVX-512 op for 16 floats).

template <typename T, int G>
struct VecOf {
  typedef T type __attribute__((vector_size(G * sizeof(T))));
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
using Buffer = std::unique_ptr<T[], FreeDeleter>;

template <typename T>
Buffer<T> aligned_buffer(int64_t count) {
  const size_t bytes = ((static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(T) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes);
  TORCH_CHECK(p != nullptr, "sjlt: out of memory allocating ", bytes, " bytes");
  return Buffer<T>(static_cast<T*>(p));
}

// Sample groups handled at once by a thread that owns its samples.
template <typename T, int G>
int64_t chunk_groups(int64_t d) {
  return std::max<int64_t>(1, kChunkBytes / (d * G * static_cast<int64_t>(sizeof(T))));
}

// Per-thread scratch: hash buffer, column states, one tile and a chunk of group tiles.
template <typename T, int G>
struct Scratch {
  Buffer<int32_t> rows;
  Buffer<T> vals;
  Buffer<uint32_t> c1, c2;
  Buffer<T> tile;
  Buffer<T> chunk;
  Scratch(int64_t s, int64_t chunk_elems)
      : rows(aligned_buffer<int32_t>(s * kBlock)),
        vals(aligned_buffer<T>(s * kBlock)),
        c1(aligned_buffer<uint32_t>(kBlock)),
        c2(aligned_buffer<uint32_t>(kBlock)),
        tile(aligned_buffer<T>(kBlock * G)),
        chunk(aligned_buffer<T>(chunk_elems)) {}
};

// One thread's share of `project`: coordinate blocks [b0, b1) x sample groups [g0, g1).
// With acc set, results go to that private copy ([g - g0][row][t], reduced by the driver);
// with acc null the thread owns the samples and adds into out chunk by chunk.
template <typename T, int G>
struct ProjectWork {
  const T* x;
  T* out;
  int64_t n, c, offset;
  int64_t b0, b1, g0, g1;
  const Geometry* geo;
  T* acc;
  Scratch<T, G>* scratch;
};

// One thread's share of `transpose`; y is staged transposed ([g][row][t]) chunk by chunk.
template <typename T, int G>
struct TransposeWork {
  const T* y;
  T* out;
  int64_t n, length, offset;
  int64_t b0, b1, g0, g1;
  const Geometry* geo;
  Scratch<T, G>* scratch;
};

}  // namespace sjlt_cpu

// ---- the kernels, once per instruction set ---------------------------------------------------

namespace sjlt_base {
using namespace ::sjlt_cpu;
#include "sjlt_cpu_kernels.h"
}  // namespace sjlt_base

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SJLT_X86 1
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2")
namespace sjlt_avx2 {
using namespace ::sjlt_cpu;
#define SJLT_SIMD_AVX2 1
#include "sjlt_cpu_kernels.h"
#undef SJLT_SIMD_AVX2
}  // namespace sjlt_avx2
#pragma GCC pop_options

#pragma GCC push_options
// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsic headers (the
// _mm512_undefined_* idiom); the code is fine.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi2")
namespace sjlt_avx512 {
using namespace ::sjlt_cpu;
#define SJLT_SIMD_AVX512 1
#include "sjlt_cpu_kernels.h"
#undef SJLT_SIMD_AVX512
}  // namespace sjlt_avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options
#else
#define SJLT_X86 0
#endif

namespace sjlt_cpu {

enum class Isa { kBase = 0, kAvx2 = 1, kAvx512 = 2 };

Isa best_isa() {
#if SJLT_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("bmi2"))
    return Isa::kAvx2;
#endif
  return Isa::kBase;
}

const Isa kBestIsa = best_isa();
Isa g_isa = kBestIsa;  // lowered by set_isa() so tests can exercise every variant

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    default: return "base";
  }
}

template <typename T, int G>
void run_project(const ProjectWork<T, G>& w) {
#if SJLT_X86
  if (g_isa == Isa::kAvx512) return sjlt_avx512::project_work<T, G>(w);
  if (g_isa == Isa::kAvx2) return sjlt_avx2::project_work<T, G>(w);
#endif
  sjlt_base::project_work<T, G>(w);
}

template <typename T, int G>
void run_transpose(const TransposeWork<T, G>& w) {
#if SJLT_X86
  if (g_isa == Isa::kAvx512) return sjlt_avx512::transpose_work<T, G>(w);
  if (g_isa == Isa::kAvx2) return sjlt_avx2::transpose_work<T, G>(w);
#endif
  sjlt_base::transpose_work<T, G>(w);
}

// ---- thread partition ----------------------------------------------------------------------

struct Partition {
  int64_t pc = 1;  // thread teams over coordinate blocks
  int64_t pn = 1;  // thread teams over sample groups
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Split [0, total) into `parts` nearly equal ranges; range `i` is [lo, hi).
void split(int64_t total, int64_t parts, int64_t i, int64_t* lo, int64_t* hi) {
  *lo = (total * i) / parts;
  *hi = (total * (i + 1)) / parts;
}

Partition plan(int64_t nblocks, int64_t ngroups, int64_t work, int64_t acc_bytes_per_copy) {
  Partition p;
  int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  if (work < kSerialWork) threads = 1;
  if (threads == 1) return p;
  // Coordinate split hashes each block once; prefer it while the private copies of the
  // accumulator stay cache-sized, or when there are too few sample groups to split.
  if (nblocks >= threads && (acc_bytes_per_copy <= kAccBudget || ngroups < threads)) {
    p.pc = threads;
  } else if (ngroups >= threads) {
    p.pn = threads;
  } else {
    p.pc = std::max<int64_t>(1, std::min(nblocks, threads));
    p.pn = std::max<int64_t>(1, std::min(ngroups, threads / p.pc));
  }
  return p;
}

// ---- drivers --------------------------------------------------------------------------------

// OpenMP may hand out fewer threads than asked (nested regions, OMP_THREAD_LIMIT), so work is
// assigned to "virtual" workers 0..P-1 that the actual threads loop over.
template <typename T, int G>
void project_driver(const T* x, T* out, int64_t n, int64_t c, int64_t offset, const Geometry& geo) {
  const int64_t d = geo.d;
  const int64_t nblocks = ceil_div(c, kBlock);
  const int64_t ngroups = ceil_div(n, G);
  const int64_t tile_elems = d * G;
  const Partition p = plan(nblocks, ngroups, n * c * geo.s,
                           static_cast<int64_t>(sizeof(T)) * ngroups * tile_elems);
  const int64_t workers = p.pc * p.pn;
  // Coordinate teams (pc > 1) each need a private copy of the groups' tiles,
  // acc[a][g][row][t], reduced below; a single team adds straight into out.
  const bool private_copies = p.pc > 1;
  const int64_t copy_elems = ngroups * tile_elems;
  Buffer<T> acc = aligned_buffer<T>(private_copies ? p.pc * copy_elems : 0);
  const int64_t chunk_elems = private_copies ? 0 : chunk_groups<T, G>(d) * tile_elems;
  std::vector<std::unique_ptr<Scratch<T, G>>> scratch;
  for (int64_t v = 0; v < workers; ++v)
    scratch.emplace_back(new Scratch<T, G>(geo.s, chunk_elems));

#pragma omp parallel num_threads(static_cast<int>(workers))
  {
    const int64_t nthreads = omp_get_num_threads();
    for (int64_t v = omp_get_thread_num(); v < workers; v += nthreads) {
      const int64_t a = v / p.pn;
      ProjectWork<T, G> w{};
      w.x = x;
      w.out = out;
      w.n = n;
      w.c = c;
      w.offset = offset;
      w.geo = &geo;
      w.scratch = scratch[v].get();
      split(nblocks, p.pc, a, &w.b0, &w.b1);
      split(ngroups, p.pn, v % p.pn, &w.g0, &w.g1);
      if (private_copies) {
        w.acc = acc.get() + a * copy_elems + w.g0 * tile_elems;
        // Zeroed by the thread that uses it: first touch puts the tiles in its cache.
        std::fill(w.acc, w.acc + (w.g1 - w.g0) * tile_elems, T(0));
      }
      run_project<T, G>(w);
    }
    if (private_copies) {
#pragma omp barrier
      // Reduce the team copies into out, split by sample group.
      int64_t r0, r1;
      split(ngroups, nthreads, omp_get_thread_num(), &r0, &r1);
      for (int64_t g = r0; g < r1; ++g) {
        const int64_t valid = std::min<int64_t>(G, n - g * G);
        for (int64_t t = 0; t < valid; ++t) {
          T* __restrict o = out + (g * G + t) * d;
          for (int64_t a = 0; a < p.pc; ++a) {
            const T* __restrict src = acc.get() + a * copy_elems + g * tile_elems + t;
            for (int64_t r = 0; r < d; ++r) o[r] += src[r * G];
          }
        }
      }
    }
  }
}

template <typename T, int G>
void transpose_driver(const T* y, T* out, int64_t n, int64_t length, int64_t offset,
                      const Geometry& geo) {
  const int64_t nblocks = ceil_div(length, kBlock);
  const int64_t ngroups = ceil_div(n, G);
  // Output slices are disjoint, so there are no private copies for the budget to limit.
  const Partition p = plan(nblocks, ngroups, n * length * geo.s, 0);
  const int64_t workers = p.pc * p.pn;
  const int64_t chunk_elems = chunk_groups<T, G>(geo.d) * geo.d * G;
  std::vector<std::unique_ptr<Scratch<T, G>>> scratch;
  for (int64_t v = 0; v < workers; ++v)
    scratch.emplace_back(new Scratch<T, G>(geo.s, chunk_elems));

#pragma omp parallel num_threads(static_cast<int>(workers))
  {
    const int64_t nthreads = omp_get_num_threads();
    for (int64_t v = omp_get_thread_num(); v < workers; v += nthreads) {
      TransposeWork<T, G> w{};
      w.y = y;
      w.out = out;
      w.n = n;
      w.length = length;
      w.offset = offset;
      w.geo = &geo;
      w.scratch = scratch[v].get();
      split(nblocks, p.pc, v / p.pn, &w.b0, &w.b1);
      split(ngroups, p.pn, v % p.pn, &w.g0, &w.g1);
      run_transpose<T, G>(w);
    }
  }
}

// Sample-group width: one 64-byte vector of T for batches, narrower for tiny ones so that the
// zero padding does not dominate.
template <typename T>
int group_width(int64_t n) {
  constexpr int kFull = 64 / sizeof(T);
  if (n == 1) return 1;
  if (n <= 4) return 4;
  return kFull;
}

void check_common(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.dim() == 2, name, " must be 2-D, got ", t.dim(), "-D");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64, got ", t.scalar_type());
}

void check_params(int64_t offset, int64_t d, int64_t s) {
  TORCH_CHECK(offset >= 0, "offset must be >= 0");
  // Rows are pre-multiplied by the group width (<= 16) inside int32.
  TORCH_CHECK(d >= 1 && d <= (int64_t(1) << 26), "out_dim must be in [1, 2**26]");
  TORCH_CHECK(s >= 1 && s <= d, "nnz must be in [1, out_dim]");
}

// out (n, d) += P x for the coordinate chunk offset .. offset + c - 1.
void project(const at::Tensor& x, at::Tensor& out, int64_t offset, int64_t s, int64_t key_a,
             int64_t key_b) {
  check_common(x, "x");
  check_common(out, "out");
  TORCH_CHECK(x.scalar_type() == out.scalar_type(), "x and out must have the same dtype");
  TORCH_CHECK(out.size(0) == x.size(0), "out must have x.size(0) rows");
  const int64_t d = out.size(1);
  check_params(offset, d, s);
  const int64_t n = x.size(0), c = x.size(1);
  if (n == 0 || c == 0) return;
  const Geometry geo(d, s, key_a, key_b);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sjlt_project", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    switch (group_width<scalar_t>(n)) {
      case 1: project_driver<scalar_t, 1>(xp, op, n, c, offset, geo); break;
      case 4: project_driver<scalar_t, 4>(xp, op, n, c, offset, geo); break;
      default: project_driver<scalar_t, 64 / sizeof(scalar_t)>(xp, op, n, c, offset, geo);
    }
  });
}

// out (n, length) = P^T y restricted to the coordinates offset .. offset + length - 1.
void transpose(const at::Tensor& y, at::Tensor& out, int64_t offset, int64_t s, int64_t key_a,
               int64_t key_b) {
  check_common(y, "y");
  check_common(out, "out");
  TORCH_CHECK(y.scalar_type() == out.scalar_type(), "y and out must have the same dtype");
  TORCH_CHECK(out.size(0) == y.size(0), "out must have y.size(0) rows");
  const int64_t d = y.size(1);
  check_params(offset, d, s);
  const int64_t n = y.size(0), length = out.size(1);
  if (n == 0 || length == 0) return;
  const Geometry geo(d, s, key_a, key_b);
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "sjlt_transpose", [&] {
    const scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    switch (group_width<scalar_t>(n)) {
      case 1: transpose_driver<scalar_t, 1>(yp, op, n, length, offset, geo); break;
      case 4: transpose_driver<scalar_t, 4>(yp, op, n, length, offset, geo); break;
      default: transpose_driver<scalar_t, 64 / sizeof(scalar_t)>(yp, op, n, length, offset, geo);
    }
  });
}

// Explicit (rows, signs) of coordinates offset .. offset + count - 1, for bit-identity tests.
std::tuple<at::Tensor, at::Tensor> rows(int64_t offset, int64_t count, int64_t d, int64_t s,
                                        int64_t key_a, int64_t key_b) {
  check_params(offset, d, s);
  TORCH_CHECK(count >= 0, "count must be >= 0");
  const Geometry geo(d, s, key_a, key_b);
  at::Tensor r = at::empty({count, s}, at::kLong);
  at::Tensor sg = at::empty({count, s}, at::kChar);
  int64_t* rp = r.data_ptr<int64_t>();
  int8_t* sp = sg.data_ptr<int8_t>();
  Scratch<float, 1> scratch(s, 0);
  for (int64_t j0 = 0; j0 < count; j0 += kBlock) {
    const int64_t m = std::min(kBlock, count - j0);
    sjlt_base::hash_block<float>(geo, offset + j0, m, 1, scratch.rows.get(), scratch.vals.get(),
                      scratch.c1.get(), scratch.c2.get());
    for (int64_t j = 0; j < m; ++j)
      for (int64_t k = 0; k < s; ++k) {
        rp[(j0 + j) * s + k] = scratch.rows[k * kBlock + j];
        sp[(j0 + j) * s + k] = scratch.vals[k * kBlock + j] < 0 ? -1 : 1;
      }
  }
  return {r, sg};
}

std::string get_isa() { return isa_name(g_isa); }

std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (int i = 0; i <= static_cast<int>(kBestIsa); ++i) names.emplace_back(isa_name(Isa(i)));
  return names;
}

// Select the kernel variant (for tests and benchmarks); returns the previous one.
std::string set_isa(const std::string& name) {
  const std::string previous = get_isa();
  for (int i = 0; i <= static_cast<int>(kBestIsa); ++i) {
    if (name == isa_name(Isa(i))) {
      g_isa = Isa(i);
      return previous;
    }
  }
  TORCH_CHECK(false, "isa '", name, "' is not supported on this CPU; choose one of ",
              c10::Join(", ", supported_isas()));
}

}  // namespace sjlt_cpu

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Sparse JL (block CountSketch) projection, CPU/OpenMP backend of graphtag.projection";
  using pybind11::arg;
  const auto nogil = pybind11::call_guard<pybind11::gil_scoped_release>();
  using namespace sjlt_cpu;
  m.def("project", &project, "out += P x for a coordinate chunk", arg("x"), arg("out"),
        arg("offset"), arg("nnz"), arg("key_a"), arg("key_b"), nogil);
  m.def("transpose", &transpose, "out = P^T y for a coordinate chunk", arg("y"), arg("out"),
        arg("offset"), arg("nnz"), arg("key_a"), arg("key_b"), nogil);
  m.def("rows", &rows, "rows and signs of a coordinate chunk", arg("offset"), arg("count"),
        arg("out_dim"), arg("nnz"), arg("key_a"), arg("key_b"));
  m.def("get_isa", &get_isa, "kernel variant in use");
  m.def("set_isa", &set_isa, "select a kernel variant; returns the previous one", arg("name"));
  m.def("supported_isas", &supported_isas, "kernel variants this CPU can run");
}
