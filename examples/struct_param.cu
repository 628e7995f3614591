// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// struct_param: kernels whose device pointers travel inside structs passed by value, the
// case an offloading layer cannot see by looking at pointer-typed parameters alone.
//
//   struct_axpy(AxpyArgs)            32-byte struct: three pointers, an int and a float
//   sum_arrays(float, MultiArgs)     88-byte struct: int, 8 pointers, pointer, int (with
//                                    padding after the leading int and at the end); the
//                                    struct itself starts at parameter offset 8
//
// Some of the pointers point into the middle of an allocation, some are null.
//
// `struct_param LOOPS` then runs LOOPS "inferences" (input upload, sum_arrays, result copy)
// whose MultiArgs padding bytes hold 0x11 for the first half and 0x22 after: bytes no kernel
// reads that change while the calls stay the same (PyTorch's structs carry such stack
// garbage), which replay must absorb without a wrong result or an end of replay.

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "example_util.cuh"

#define MAX_SRC 8

struct AxpyArgs {
  const float* x;
  const float* w;
  float* y;
  int n;
  float alpha;
};
static_assert(sizeof(AxpyArgs) == 32 && alignof(AxpyArgs) == 8, "AxpyArgs layout");

struct MultiArgs {
  int count;                  // offset 0, then 4 bytes of padding
  const float* src[MAX_SRC];  // offset 8
  float* dst;                 // offset 72
  int n;                      // offset 80, then 4 bytes of padding
};
static_assert(sizeof(MultiArgs) == 88 && alignof(MultiArgs) == 8, "MultiArgs layout");
static_assert(offsetof(MultiArgs, src) == 8 && offsetof(MultiArgs, dst) == 72 &&
              offsetof(MultiArgs, n) == 80, "MultiArgs offsets");

// y += alpha * (x * w), each operation rounded on its own (no FMA contraction), so that
// the host reference and the emu backend's NumPy version agree bit for bit.
__global__ void struct_axpy(AxpyArgs p) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < p.n) p.y[i] = __fadd_rn(p.y[i], __fmul_rn(p.alpha, __fmul_rn(p.x[i], p.w[i])));
}

// dst = scale * (src[0] + src[1] + ... + src[count - 1]), summed in that order.
__global__ void sum_arrays(float scale, MultiArgs args) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < args.n) {
    float s = 0.0f;
    for (int j = 0; j < args.count; ++j) s += args.src[j][i];
    args.dst[i] = s * scale;
  }
}

static bool within_tolerance(float got, float ref) {
  return std::fabs(got - ref) <= 1e-5f * (1.0f + std::fabs(ref));
}

int main(int argc, char** argv) {
  long loops = 0;
  if (argc > 2 || (argc == 2 && !parse_long(argv[1], 1, 100000, &loops))) {
    fprintf(stderr, "usage: struct_param [LOOPS]\n");
    return 2;
  }
  const int n = 100000;
  const size_t bytes = n * sizeof(float);
  const int block = 256;
  const int grid = (n + block - 1) / block;

  int max_threads = 0;
  CHECK(cudaDeviceGetAttribute(&max_threads, cudaDevAttrMaxThreadsPerBlock, 0));
  if (max_threads < block) {
    fprintf(stderr, "struct_param: device allows only %d threads per block\n", max_threads);
    return 1;
  }

  Lcg rng(99u);
  int failures = 0;

  // --- struct_axpy -------------------------------------------------------------------
  const float alpha = 0.75f;
  std::vector<float> x(n), w(n), y0(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = rng.uniform();
    w[i] = rng.uniform();
    y0[i] = rng.uniform();
  }
  float *d_x = nullptr, *d_w = nullptr, *d_y0 = nullptr, *d_y = nullptr;
  CHECK(cudaMalloc(&d_x, bytes));
  CHECK(cudaMalloc(&d_w, bytes));
  CHECK(cudaMalloc(&d_y0, bytes));
  CHECK(cudaMalloc(&d_y, bytes));
  CHECK(cudaMemcpy(d_x, x.data(), bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_w, w.data(), bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_y0, y0.data(), bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_y, d_y0, bytes, cudaMemcpyDeviceToDevice));

  AxpyArgs axpy;
  axpy.x = d_x;
  axpy.w = d_w;
  axpy.y = d_y;
  axpy.n = n;
  axpy.alpha = alpha;
  struct_axpy<<<grid, block>>>(axpy);
  CHECK(cudaPeekAtLastError());
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpy(y.data(), d_y, bytes, cudaMemcpyDeviceToHost));
  {
    int bad = 0;
    double checksum = 0.0;
    for (int i = 0; i < n; ++i) {
      const float ref = y0[i] + alpha * (x[i] * w[i]);
      if (!within_tolerance(y[i], ref)) {
        if (bad == 0) fprintf(stderr, "struct_axpy: y[%d]=%.9g expected %.9g\n", i, y[i], ref);
        ++bad;
      }
      checksum += y[i];
    }
    printf("struct_param: struct_axpy sizeof(args)=%d n=%d checksum=%.6f %s\n",
           static_cast<int>(sizeof(AxpyArgs)), n, checksum, bad ? "FAIL" : "PASS");
    failures += bad != 0;
  }

  // --- sum_arrays ----------------------------------------------------------------------
  // Sources 0-3 live inside one pooled allocation (interior pointers), 4-7 on their own.
  std::vector<std::vector<float>> src(MAX_SRC, std::vector<float>(n));
  for (auto& v : src) {
    for (float& e : v) e = rng.uniform();
  }
  float* d_pool = nullptr;
  CHECK(cudaMalloc(&d_pool, 4 * bytes));
  const float* d_src[MAX_SRC];
  for (int j = 0; j < MAX_SRC; ++j) {
    float* p = nullptr;
    if (j < 4) {
      p = d_pool + static_cast<size_t>(j) * n;
    } else {
      CHECK(cudaMalloc(&p, bytes));
    }
    CHECK(cudaMemcpy(p, src[j].data(), bytes, cudaMemcpyHostToDevice));
    d_src[j] = p;
  }
  float* d_dst = nullptr;
  CHECK(cudaMalloc(&d_dst, bytes));

  const int counts[2] = {MAX_SRC, 5};
  const float scales[2] = {0.5f, -1.25f};
  std::vector<float> dst(n);
  for (int run = 0; run < 2; ++run) {
    MultiArgs args;
    args.count = counts[run];
    for (int j = 0; j < MAX_SRC; ++j) args.src[j] = j < args.count ? d_src[j] : nullptr;
    args.dst = d_dst;
    args.n = n;
    sum_arrays<<<grid, block>>>(scales[run], args);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(dst.data(), d_dst, bytes, cudaMemcpyDeviceToHost));

    int bad = 0;
    double checksum = 0.0;
    for (int i = 0; i < n; ++i) {
      float s = 0.0f;
      for (int j = 0; j < args.count; ++j) s += src[j][i];
      const float ref = s * scales[run];
      if (!within_tolerance(dst[i], ref)) {
        if (bad == 0) fprintf(stderr, "sum_arrays: dst[%d]=%.9g expected %.9g\n", i, dst[i], ref);
        ++bad;
      }
      checksum += dst[i];
    }
    printf("struct_param: sum_arrays sizeof(args)=%d count=%d n=%d checksum=%.6f %s\n",
           static_cast<int>(sizeof(MultiArgs)), args.count, n, checksum, bad ? "FAIL" : "PASS");
    failures += bad != 0;
  }

  for (long it = 0; it < loops; ++it) {
    MultiArgs args;
    memset(&args, it < loops / 2 ? 0x11 : 0x22, sizeof args);   // the padding bytes
    args.count = 2;
    for (int j = 0; j < MAX_SRC; ++j) args.src[j] = j < args.count ? d_src[j] : nullptr;
    args.dst = d_dst;
    args.n = n;
    CHECK(cudaMemcpy(const_cast<float*>(d_src[0]), src[it % MAX_SRC].data(), bytes,
                     cudaMemcpyHostToDevice));
    sum_arrays<<<grid, block>>>(1.0f, args);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(dst.data(), d_dst, bytes, cudaMemcpyDeviceToHost));
    int bad = 0;
    double checksum = 0.0;
    for (int i = 0; i < n; ++i) {
      const float ref = src[it % MAX_SRC][i] + src[1][i];
      bad += !within_tolerance(dst[i], ref);
      checksum += dst[i];
    }
    printf("struct_param: loop %ld checksum=%.6f %s\n", it, checksum, bad ? "FAIL" : "PASS");
    failures += bad != 0;
  }

  CHECK(cudaFree(d_x));
  CHECK(cudaFree(d_w));
  CHECK(cudaFree(d_y0));
  CHECK(cudaFree(d_y));
  CHECK(cudaFree(d_pool));
  for (int j = 4; j < MAX_SRC; ++j) CHECK(cudaFree(const_cast<float*>(d_src[j])));
  CHECK(cudaFree(d_dst));

  printf("struct_param: %s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
