// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// runtime_api: the runtime calls the other examples leave out, each checked:
//   - both launch paths: <<<>>> (CUDA 13: __cudaGetKernel + __cudaLaunchKernel),
//     cudaLaunchKernel and cudaLaunchKernelExC with the same kernel;
//   - cudaMemcpy of every kind, cudaMemcpyDefault in both directions, DtoD sync and async,
//     HtoH; symbol copies in their async form;
//   - queries: cudaMemGetInfo, cudaStreamQuery, cudaEventQuery, cudaPointerGetAttributes,
//     device properties against attributes.
// Output is deterministic (no pointers, timings or device names).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#include "example_util.cuh"

__constant__ int offsets[4];

__global__ void affine(float *y, const float *x, float scale, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i] * scale + (float)offsets[i % 4];
}

static int failures = 0;

static void expect(bool ok, const char *what) {
  std::printf("%-28s %s\n", what, ok ? "ok" : "FAIL");
  if (!ok) failures++;
}

int main() {
  const int n = 1000;
  const size_t bytes = n * sizeof(float);
  float *h_x = (float *)std::malloc(bytes), *h_y = (float *)std::malloc(bytes);
  float *h_ref = (float *)std::malloc(bytes), *h_tmp = (float *)std::malloc(bytes);
  for (int i = 0; i < n; i++) h_x[i] = (float)((i * 37) % 101) * 0.25f;
  const int h_off[4] = {1, -2, 3, -4};

  float *d_x, *d_y, *d_z;
  CHECK(cudaMalloc(&d_x, bytes));
  CHECK(cudaMalloc(&d_y, bytes));
  CHECK(cudaMalloc(&d_z, bytes));
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CHECK(cudaMemcpyToSymbolAsync(offsets, h_off, sizeof h_off, 0, cudaMemcpyHostToDevice, s));
  int back[4] = {0, 0, 0, 0};
  CHECK(cudaMemcpyFromSymbolAsync(back, offsets, sizeof back, 0, cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  expect(std::memcmp(back, h_off, sizeof back) == 0, "symbol copies (async)");

  // cudaMemcpyDefault: the runtime infers the direction from the pointers.
  CHECK(cudaMemcpy(d_x, h_x, bytes, cudaMemcpyDefault));
  std::memset(h_tmp, 0, bytes);
  CHECK(cudaMemcpy(h_tmp, d_x, bytes, cudaMemcpyDefault));
  expect(std::memcmp(h_tmp, h_x, bytes) == 0, "memcpy default both ways");

  for (int i = 0; i < n; i++) h_ref[i] = h_x[i] * 2.0f + (float)h_off[i % 4];
  dim3 grid((n + 127) / 128), block(128);
  float scale = 2.0f;
  int count = n;

  // Launch path 1: <<<>>>
  affine<<<grid, block, 0, s>>>(d_y, d_x, scale, count);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpyAsync(h_y, d_y, bytes, cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  expect(std::memcmp(h_y, h_ref, bytes) == 0, "launch <<<>>>");

  // Launch path 2: cudaLaunchKernel
  CHECK(cudaMemset(d_y, 0, bytes));
  void *args[] = {&d_y, &d_x, &scale, &count};
  CHECK(cudaLaunchKernel((const void *)affine, grid, block, args, 0, s));
  CHECK(cudaMemcpyAsync(h_y, d_y, bytes, cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  expect(std::memcmp(h_y, h_ref, bytes) == 0, "launch cudaLaunchKernel");

  // Launch path 3: cudaLaunchKernelExC
  CHECK(cudaMemsetAsync(d_y, 0, bytes, s));
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.stream = s;
  CHECK(cudaLaunchKernelExC(&cfg, (const void *)affine, args));
  CHECK(cudaMemcpyAsync(h_y, d_y, bytes, cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  expect(std::memcmp(h_y, h_ref, bytes) == 0, "launch cudaLaunchKernelExC");

  // Device-to-device, sync and async, and host-to-host.
  CHECK(cudaMemcpy(d_z, d_y, bytes, cudaMemcpyDeviceToDevice));
  CHECK(cudaMemcpyAsync(d_x, d_z, bytes, cudaMemcpyDeviceToDevice, s));
  CHECK(cudaMemcpyAsync(h_tmp, d_x, bytes, cudaMemcpyDeviceToHost, s));
  cudaEvent_t ev;
  CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  CHECK(cudaEventRecord(ev, s));
  CHECK(cudaEventSynchronize(ev));
  expect(cudaEventQuery(ev) == cudaSuccess, "event query after sync");
  expect(cudaStreamQuery(s) == cudaSuccess, "stream query after sync");
  expect(std::memcmp(h_tmp, h_ref, bytes) == 0, "memcpy device to device");
  std::memset(h_y, 0, bytes);
  CHECK(cudaMemcpy(h_y, h_tmp, bytes, cudaMemcpyHostToHost));
  expect(std::memcmp(h_y, h_ref, bytes) == 0, "memcpy host to host");

  // Queries answered without touching data.
  size_t free_b = 0, total_b = 0;
  CHECK(cudaMemGetInfo(&free_b, &total_b));
  expect(total_b > 0 && free_b <= total_b, "memory info");
  cudaPointerAttributes pa;
  CHECK(cudaPointerGetAttributes(&pa, d_x + 10));
  expect(pa.type == cudaMemoryTypeDevice, "pointer attributes");
  cudaDeviceProp prop;
  int warp = 0, sms = 0;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  CHECK(cudaDeviceGetAttribute(&warp, cudaDevAttrWarpSize, 0));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  expect(prop.warpSize == warp && prop.multiProcessorCount == sms && warp == 32,
         "properties match attributes");

  CHECK(cudaEventDestroy(ev));
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFree(d_x));
  CHECK(cudaFree(d_y));
  CHECK(cudaFree(d_z));
  std::free(h_x);
  std::free(h_y);
  std::free(h_ref);
  std::free(h_tmp);
  std::printf("runtime_api: %s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
