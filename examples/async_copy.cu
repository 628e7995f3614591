// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// Overlapping host work with a copy to the host: cudaMemcpyAsync into page-locked memory
// returns at once, and the CPU keeps working (here: counting) while it polls an event
// recorded after the copy. Then the same with pageable memory and cudaStreamSynchronize.
// The data are checked each time. stdout is identical on every run (PASS); the number of
// CPU iterations, which depends on the machine and the link, goes to stderr.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "example_util.cuh"

static bool check(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(i * 7 + seed)) return false;
  return true;
}

int main() {
  const size_t n = 32u << 20;
  unsigned char *src = static_cast<unsigned char *>(malloc(n));
  unsigned char *pageable = static_cast<unsigned char *>(malloc(n));
  unsigned char *pinned, *dev;
  CHECK(cudaMallocHost(&pinned, n));
  CHECK(cudaMalloc(&dev, n));
  cudaStream_t stream;
  cudaEvent_t done;
  CHECK(cudaStreamCreate(&stream));
  CHECK(cudaEventCreate(&done));
  bool ok = true;
  for (unsigned round = 0; round < 2; round++) {
    for (size_t i = 0; i < n; i++) src[i] = (unsigned char)(i * 7 + round);
    CHECK(cudaMemcpy(dev, src, n, cudaMemcpyHostToDevice));
    memset(pinned, 0, n);
    CHECK(cudaMemcpyAsync(pinned, dev, n, cudaMemcpyDeviceToHost, stream));
    CHECK(cudaEventRecord(done, stream));
    long iterations = 0;
    cudaError_t q;
    while ((q = cudaEventQuery(done)) == cudaErrorNotReady) iterations++;
    CHECK(q);
    fprintf(stderr, "async_copy: round %u: %ld CPU iterations while %zu bytes came back\n",
            round, iterations, n);
    bool pinned_ok = check(pinned, n, round);
    memset(pageable, 0, n);
    CHECK(cudaMemcpyAsync(pageable, dev, n, cudaMemcpyDeviceToHost, stream));
    CHECK(cudaStreamSynchronize(stream));
    bool pageable_ok = check(pageable, n, round);
    printf("round %u: pinned copy %s, pageable copy %s\n", round, pinned_ok ? "ok" : "WRONG",
           pageable_ok ? "ok" : "WRONG");
    ok = ok && pinned_ok && pageable_ok;
  }
  CHECK(cudaEventDestroy(done));
  CHECK(cudaStreamDestroy(stream));
  CHECK(cudaFree(dev));
  CHECK(cudaFreeHost(pinned));
  free(src);
  free(pageable);
  printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
