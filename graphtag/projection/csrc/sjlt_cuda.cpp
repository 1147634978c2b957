// torch binding of the CUDA sparse JL kernels (sjlt_cuda_kernel.cu). Built only when torch has
// CUDA (see setup.py); same Python interface as the CPU module sjlt_cpu.cpp.

#include <torch/extension.h>

// c10 stream/guard headers only: ATen/cuda/CUDAContext.h would pull in cuBLAS/cuSPARSE headers.
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <tuple>

template <typename T>
cudaError_t sjlt_cuda_project(const T* x, T* out, int64_t n, int64_t c, int64_t d, int64_t s,
                              int64_t offset, uint32_t key_a, uint32_t key_b,
                              cudaStream_t stream);
template <typename T>
cudaError_t sjlt_cuda_transpose(const T* y, T* out, int64_t n, int64_t length, int64_t d,
                                int64_t s, int64_t offset, uint32_t key_a, uint32_t key_b,
                                cudaStream_t stream);
cudaError_t sjlt_cuda_rows(int64_t* rows, int8_t* signs, int64_t count, int64_t d, int64_t s,
                           int64_t offset, uint32_t key_a, uint32_t key_b, cudaStream_t stream);

namespace {

void check_tensor(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(t.dim() == 2, name, " must be 2-D, got ", t.dim(), "-D");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64, got ", t.scalar_type());
}

void check_params(int64_t offset, int64_t d, int64_t s) {
  TORCH_CHECK(offset >= 0, "offset must be >= 0");
  TORCH_CHECK(d >= 1, "out_dim must be >= 1");
  TORCH_CHECK(s >= 1 && s <= d, "nnz must be in [1, out_dim]");
}

void check_launch(cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, "sjlt CUDA kernel launch failed: ", cudaGetErrorString(err));
}

// out (n, d) += P x for the coordinate chunk offset .. offset + c - 1.
void project(const at::Tensor& x, at::Tensor& out, int64_t offset, int64_t s, int64_t key_a,
             int64_t key_b) {
  check_tensor(x, "x");
  check_tensor(out, "out");
  TORCH_CHECK(x.scalar_type() == out.scalar_type(), "x and out must have the same dtype");
  TORCH_CHECK(x.device() == out.device(), "x and out must be on the same device");
  TORCH_CHECK(out.size(0) == x.size(0), "out must have x.size(0) rows");
  const int64_t d = out.size(1);
  check_params(offset, d, s);
  const c10::cuda::CUDAGuard guard(x.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sjlt_cuda_project", [&] {
    check_launch(sjlt_cuda_project<scalar_t>(
        x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), x.size(0), x.size(1), d, s, offset,
        static_cast<uint32_t>(key_a), static_cast<uint32_t>(key_b), stream));
  });
}

// out (n, length) = P^T y restricted to coordinates offset .. offset + length - 1.
void transpose(const at::Tensor& y, at::Tensor& out, int64_t offset, int64_t s, int64_t key_a,
               int64_t key_b) {
  check_tensor(y, "y");
  check_tensor(out, "out");
  TORCH_CHECK(y.scalar_type() == out.scalar_type(), "y and out must have the same dtype");
  TORCH_CHECK(y.device() == out.device(), "y and out must be on the same device");
  TORCH_CHECK(out.size(0) == y.size(0), "out must have y.size(0) rows");
  const int64_t d = y.size(1);
  check_params(offset, d, s);
  const c10::cuda::CUDAGuard guard(y.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "sjlt_cuda_transpose", [&] {
    check_launch(sjlt_cuda_transpose<scalar_t>(
        y.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), y.size(0), out.size(1), d, s, offset,
        static_cast<uint32_t>(key_a), static_cast<uint32_t>(key_b), stream));
  });
}

// Rows and signs computed on the current CUDA device, for bit-identity tests.
std::tuple<at::Tensor, at::Tensor> rows(int64_t offset, int64_t count, int64_t d, int64_t s,
                                        int64_t key_a, int64_t key_b) {
  check_params(offset, d, s);
  TORCH_CHECK(count >= 0, "count must be >= 0");
  const auto opts = at::TensorOptions().device(at::kCUDA, c10::cuda::current_device());
  at::Tensor r = at::empty({count, s}, opts.dtype(at::kLong));
  at::Tensor sg = at::empty({count, s}, opts.dtype(at::kChar));
  check_launch(sjlt_cuda_rows(r.data_ptr<int64_t>(), sg.data_ptr<int8_t>(), count, d, s, offset,
                              static_cast<uint32_t>(key_a), static_cast<uint32_t>(key_b),
                              c10::cuda::getCurrentCUDAStream().stream()));
  return {r, sg};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Sparse JL (block CountSketch) projection, CUDA backend of graphtag.projection";
  using pybind11::arg;
  const auto nogil = pybind11::call_guard<pybind11::gil_scoped_release>();
  m.def("project", &project, "out += P x for a coordinate chunk", arg("x"), arg("out"),
        arg("offset"), arg("nnz"), arg("key_a"), arg("key_b"), nogil);
  m.def("transpose", &transpose, "out = P^T y for a coordinate chunk", arg("y"), arg("out"),
        arg("offset"), arg("nnz"), arg("key_a"), arg("key_b"), nogil);
  m.def("rows", &rows, "rows and signs of a coordinate chunk", arg("offset"), arg("count"),
        arg("out_dim"), arg("nnz"), arg("key_a"), arg("key_b"));
}
