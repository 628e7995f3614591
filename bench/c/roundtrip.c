/* Cost of one forwarded blocking CUDA call: times N cudaDeviceSynchronize() calls (each a
 * blocking round trip in rpc mode) and prints the median and p90 in microseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cuda_runtime_api.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2000;
  double *us = malloc(sizeof(double) * (size_t)n);
  void *p;
  if (cudaMalloc(&p, 16) != cudaSuccess) {  /* connects and warms up */
    fprintf(stderr, "roundtrip: cudaMalloc failed\n");
    return 1;
  }
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cudaError_t e = cudaDeviceSynchronize();
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (e != cudaSuccess) {
      fprintf(stderr, "roundtrip: %s\n", cudaGetErrorString(e));
      return 1;
    }
    us[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
  }
  qsort(us, (size_t)n, sizeof *us, cmp);
  printf("calls %d median_us %.2f p90_us %.2f\n", n, us[n / 2], us[n * 9 / 10]);
  cudaFree(p);
  return 0;
}
