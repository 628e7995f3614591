// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// printf in a kernel: its text must appear on this program's own stdout, after the
// synchronisation that flushes it, as it does on a local GPU (not in the server's log).
// One warp of threads, so that the lines come in thread order on every GPU.
#include <cstdio>

#include "example_util.cuh"

__global__ void greet(int base) {
  printf("device printf: thread %d says %d\n", (int)threadIdx.x, base + (int)threadIdx.x);
}

int main() {
  greet<<<1, 4>>>(40);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  printf("PASS\n");
  return 0;
}
