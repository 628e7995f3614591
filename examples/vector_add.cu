// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// vector_add: c = a + b over one million floats, checked against a host reference.
// The simplest end-to-end exercise of the interposer: malloc, copies, one launch, free.

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "example_util.cuh"

// Deterministic inputs: uniform in [-1, 1) with 24 random bits, so every value is exact.
__global__ void vector_add(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

int main() {
  const int n = 1000000;  // not a multiple of the block size: the last block is partial
  const size_t bytes = n * sizeof(float);

  // Called on the success path too, so that a passing run exercises it; its text is not
  // printed (it may differ between CUDA versions).
  const char* no_error = cudaGetErrorString(cudaSuccess);
  if (no_error == nullptr || no_error[0] == '\0') {
    fprintf(stderr, "vector_add: cudaGetErrorString(cudaSuccess) returned nothing\n");
    return 1;
  }

  int count = 0;
  CHECK(cudaGetDeviceCount(&count));
  if (count < 1) {
    fprintf(stderr, "vector_add: no CUDA device\n");
    return 1;
  }
  CHECK(cudaSetDevice(0));
  int dev = -1;
  CHECK(cudaGetDevice(&dev));
  if (dev != 0) {
    fprintf(stderr, "vector_add: cudaGetDevice returned %d after cudaSetDevice(0)\n", dev);
    return 1;
  }

  std::vector<float> a(n), b(n), c(n);
  Lcg rng(12345u);
  for (int i = 0; i < n; ++i) {
    a[i] = rng.uniform();
    b[i] = rng.uniform();
  }

  float *d_a = nullptr, *d_b = nullptr, *d_c = nullptr;
  CHECK(cudaMalloc(&d_a, bytes));
  CHECK(cudaMalloc(&d_b, bytes));
  CHECK(cudaMalloc(&d_c, bytes));
  CHECK(cudaMemcpy(d_a, a.data(), bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_b, b.data(), bytes, cudaMemcpyHostToDevice));

  const int block = 256;
  const int grid = (n + block - 1) / block;
  vector_add<<<grid, block>>>(d_a, d_b, d_c, n);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  CHECK(cudaMemcpy(c.data(), d_c, bytes, cudaMemcpyDeviceToHost));

  int bad = 0;
  double checksum = 0.0;
  for (int i = 0; i < n; ++i) {
    const float ref = a[i] + b[i];
    if (!(std::fabs(c[i] - ref) <= 1e-6f * (1.0f + std::fabs(ref)))) {
      if (bad == 0) fprintf(stderr, "vector_add: c[%d]=%.9g expected %.9g\n", i, c[i], ref);
      ++bad;
    }
    checksum += c[i];
  }

  CHECK(cudaFree(d_a));
  CHECK(cudaFree(d_b));
  CHECK(cudaFree(d_c));

  printf("vector_add: n=%d checksum=%.6f %s\n", n, checksum, bad ? "FAIL" : "PASS");
  return bad ? 1 : 0;
}
