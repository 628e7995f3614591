// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// constant_memory: module-scope variables reached through the symbol API.
//
//   coeffs         __constant__ taps of a 16-tap FIR filter; written with
//                  cudaMemcpyToSymbol (whole, then the upper half at an offset), read back
//                  with cudaMemcpyFromSymbol, and read by the fir16 kernel.
//   counter_array  __device__ ints; its address comes from cudaGetSymbolAddress, is
//                  cudaMemset to -1, written by segment_count (by name), modified by
//                  add_to_ints (through the address) and read back with cudaMemcpyFromSymbol.

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "example_util.cuh"

#define NTAPS 16
#define NBINS 16

__constant__ float coeffs[NTAPS];
__device__ int counter_array[NBINS];

// acc + a * b rounded twice, never fused into an FMA (see matmul_tiled.cu).
__device__ __forceinline__ float mul_add(float acc, float a, float b) {
  return __fadd_rn(acc, __fmul_rn(a, b));
}

// y[i] = sum_k coeffs[k] * x[i + k] for i < n; x holds n + NTAPS - 1 values.
__global__ void fir16(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    float acc = 0.0f;
    for (int k = 0; k < NTAPS; ++k) acc = mul_add(acc, coeffs[k], x[i + k]);
    y[i] = acc;
  }
}

// counter_array[t] = number of positive y[j] in segment t, for t < nseg.
__global__ void segment_count(const float* y, int n, int seg_len, int nseg) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t < nseg) {
    const int begin = t * seg_len;
    const int end = min(n, begin + seg_len);
    int c = 0;
    for (int j = begin; j < end; ++j) c += y[j] > 0.0f ? 1 : 0;
    counter_array[t] = c;
  }
}

// p[i] += v
__global__ void add_to_ints(int* p, int n, int v) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += v;
}

int main() {
  const int n = 50000;
  const int nseg = 12;  // bins nseg..NBINS-1 are left at the memset value
  const int seg_len = (n + nseg - 1) / nseg;
  const int bump = 1000;
  int failures = 0;

  // --- coeffs: write whole, overwrite the upper half at an offset, read back -----------
  Lcg rng(4242u);
  float h_coeffs[NTAPS], back[NTAPS];
  for (int k = 0; k < NTAPS; ++k) h_coeffs[k] = 0.25f * rng.uniform();
  CHECK(cudaMemcpyToSymbol(coeffs, h_coeffs, sizeof(h_coeffs)));
  for (int k = NTAPS / 2; k < NTAPS; ++k) h_coeffs[k] = 0.25f * rng.uniform();
  CHECK(cudaMemcpyToSymbol(coeffs, h_coeffs + NTAPS / 2, sizeof(float) * (NTAPS / 2),
                           sizeof(float) * (NTAPS / 2), cudaMemcpyHostToDevice));
  memset(back, 0, sizeof(back));
  CHECK(cudaMemcpyFromSymbol(back, coeffs, sizeof(back)));
  {
    const bool ok = memcmp(back, h_coeffs, sizeof(back)) == 0;
    printf("constant_memory: coeffs roundtrip %s\n", ok ? "PASS" : "FAIL");
    failures += !ok;
  }

  // --- fir16 reads coeffs ------------------------------------------------------------
  std::vector<float> x(n + NTAPS - 1), y(n);
  for (float& v : x) v = rng.uniform();
  float *d_x = nullptr, *d_y = nullptr;
  CHECK(cudaMalloc(&d_x, x.size() * sizeof(float)));
  CHECK(cudaMalloc(&d_y, y.size() * sizeof(float)));
  CHECK(cudaMemcpy(d_x, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
  const int block = 256;
  fir16<<<(n + block - 1) / block, block>>>(d_x, d_y, n);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpy(y.data(), d_y, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
  {
    int bad = 0;
    double checksum = 0.0;
    for (int i = 0; i < n; ++i) {
      float ref = 0.0f;
      for (int k = 0; k < NTAPS; ++k) ref += h_coeffs[k] * x[i + k];
      if (!(std::fabs(y[i] - ref) <= 1e-5f * (1.0f + std::fabs(ref)))) {
        if (bad == 0) fprintf(stderr, "fir16: y[%d]=%.9g expected %.9g\n", i, y[i], ref);
        ++bad;
      }
      checksum += y[i];
    }
    printf("constant_memory: fir16 n=%d checksum=%.6f %s\n", n, checksum,
           bad ? "FAIL" : "PASS");
    failures += bad != 0;
  }

  // --- counter_array -----------------------------------------------------------------
  // Expected counts come from the GPU's own y, so they do not depend on rounding.
  int expect[NBINS];
  for (int t = 0; t < NBINS; ++t) {
    expect[t] = -1;
    if (t < nseg) {
      expect[t] = 0;
      for (int j = t * seg_len; j < n && j < (t + 1) * seg_len; ++j) expect[t] += y[j] > 0.0f;
    }
  }
  int* d_counts = nullptr;
  CHECK(cudaGetSymbolAddress(reinterpret_cast<void**>(&d_counts), counter_array));
  CHECK(cudaMemset(d_counts, 0xff, NBINS * sizeof(int)));  // every int becomes -1
  segment_count<<<1, 32>>>(d_y, n, seg_len, nseg);
  CHECK(cudaGetLastError());
  int counts[NBINS];
  CHECK(cudaMemcpyFromSymbol(counts, counter_array, sizeof(counts)));
  {
    const bool ok = memcmp(counts, expect, sizeof(counts)) == 0;
    printf("constant_memory: counts=");
    for (int t = 0; t < NBINS; ++t) printf("%s%d", t ? "," : "", counts[t]);
    printf(" %s\n", ok ? "PASS" : "FAIL");
    failures += !ok;
  }

  add_to_ints<<<1, 32>>>(d_counts, NBINS, bump);
  CHECK(cudaGetLastError());
  // Read back only bins 4.. through an offset into the symbol.
  const int first = 4;
  int tail[NBINS - first];
  CHECK(cudaMemcpyFromSymbol(tail, counter_array, sizeof(tail), first * sizeof(int),
                             cudaMemcpyDeviceToHost));
  {
    bool ok = true;
    for (int t = first; t < NBINS; ++t) ok = ok && tail[t - first] == expect[t] + bump;
    printf("constant_memory: bumped=");
    for (int t = first; t < NBINS; ++t) printf("%s%d", t > first ? "," : "", tail[t - first]);
    printf(" %s\n", ok ? "PASS" : "FAIL");
    failures += !ok;
  }

  CHECK(cudaFree(d_x));
  CHECK(cudaFree(d_y));
  printf("constant_memory: %s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
