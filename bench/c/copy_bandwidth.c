/* Bandwidth of bulk copies: times blocking cudaMemcpy host-to-device and device-to-host
 * for each size given (MiB), `reps` times each, and prints one JSON object per size and
 * direction: {"direction": "htod", "bytes": N, "reps": R, "best_s": .., "median_s": ..}.
 *
 *   copy_bandwidth [--pinned] [--reps R] MIB...
 *
 * --pinned uses cudaMallocHost memory (pageable malloc otherwise). The data are checked
 * after the round trip: a copy that returns wrong bytes is a failure (exit 1). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cuda_runtime_api.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int check(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return 0;
  fprintf(stderr, "copy_bandwidth: %s: %s\n", what, cudaGetErrorString(e));
  return 1;
}

static void report(const char *dir, size_t bytes, int reps, double *t) {
  qsort(t, (size_t)reps, sizeof *t, cmp);
  printf("{\"direction\": \"%s\", \"bytes\": %zu, \"reps\": %d, \"best_s\": %.6f, "
         "\"median_s\": %.6f}\n", dir, bytes, reps, t[0], t[reps / 2]);
  fflush(stdout);
}

int main(int argc, char **argv) {
  int pinned = 0, reps = 3, nsizes = 0;
  size_t sizes[64];
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--pinned")) pinned = 1;
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (nsizes < 64 && atof(argv[i]) > 0) sizes[nsizes++] = (size_t)(atof(argv[i]) * 1048576);
    else {
      fprintf(stderr, "usage: copy_bandwidth [--pinned] [--reps R] MIB...\n");
      return 2;
    }
  }
  if (reps < 1 || reps > 1000 || nsizes == 0) {
    fprintf(stderr, "copy_bandwidth: give 1..1000 reps and at least one size in MiB\n");
    return 2;
  }
  double *t = malloc(sizeof(double) * (size_t)reps);
  for (int s = 0; s < nsizes; s++) {
    size_t n = sizes[s];
    unsigned char *src, *back;
    void *dev;
    if (pinned) {
      if (check(cudaMallocHost((void **)&src, n), "cudaMallocHost") ||
          check(cudaMallocHost((void **)&back, n), "cudaMallocHost"))
        return 1;
    } else {
      src = malloc(n);
      back = malloc(n);
      if (!src || !back) return 1;
    }
    for (size_t i = 0; i < n; i++) src[i] = (unsigned char)(i * 131 + s);
    if (check(cudaMalloc(&dev, n), "cudaMalloc")) return 1;
    if (check(cudaMemcpy(dev, src, n, cudaMemcpyHostToDevice), "warm-up copy")) return 1;
    for (int r = 0; r < reps; r++) {
      double a = now_s();
      if (check(cudaMemcpy(dev, src, n, cudaMemcpyHostToDevice), "cudaMemcpy HtoD")) return 1;
      t[r] = now_s() - a;
    }
    report("htod", n, reps, t);
    for (int r = 0; r < reps; r++) {
      memset(back, 0, n);
      double a = now_s();
      if (check(cudaMemcpy(back, dev, n, cudaMemcpyDeviceToHost), "cudaMemcpy DtoH")) return 1;
      t[r] = now_s() - a;
      if (memcmp(back, src, n)) {
        fprintf(stderr, "copy_bandwidth: the %zu bytes copied back differ\n", n);
        return 1;
      }
    }
    report("dtoh", n, reps, t);
    cudaFree(dev);
    if (pinned) {
      cudaFreeHost(src);
      cudaFreeHost(back);
    } else {
      free(src);
      free(back);
    }
  }
  free(t);
  return 0;
}
