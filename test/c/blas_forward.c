/* A cuBLAS program for the forwarding tests: SGEMM on device memory through the cuBLAS
 * API, found with dlsym (no cuBLAS headers or library needed to build it: under the
 * interposer the symbols are its own). Prints the result and the stream priority range,
 * asked `repeat` times (memo: one forwarded call whatever the repeat). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <cuda_runtime_api.h>

typedef int (*create_t)(void **);
typedef int (*destroy_t)(void *);
typedef int (*set_stream_t)(void *, cudaStream_t);
typedef int (*sgemm_t)(void *, int, int, int, int, int, const float *, const float *, int,
                       const float *, int, const float *, float *, int);

static void *sym(const char *name) {
  void *f = dlsym(RTLD_DEFAULT, name);
  if (!f) {
    printf("missing %s\n", name);
    exit(2);
  }
  return f;
}

int main(int argc, char **argv) {
  int m = 3, n = 2, k = 4, repeat = argc > 1 ? atoi(argv[1]) : 1;
  float a[12], b[8], c[6];
  for (int i = 0; i < 12; i++) a[i] = (float)(i + 1);
  for (int i = 0; i < 8; i++) b[i] = (float)(i % 3) - 1.0f;
  for (int i = 0; i < 6; i++) c[i] = 0.5f;
  float *da, *db, *dc;
  if (cudaMalloc((void **)&da, sizeof a) || cudaMalloc((void **)&db, sizeof b) ||
      cudaMalloc((void **)&dc, sizeof c))
    return 3;
  cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
  cudaMemcpy(db, b, sizeof b, cudaMemcpyHostToDevice);
  cudaMemcpy(dc, c, sizeof c, cudaMemcpyHostToDevice);
  void *h = NULL;
  int created = ((create_t)sym("cublasCreate_v2"))(&h);
  printf("create %d %d\n", created, h != NULL);
  printf("set_stream %d\n", ((set_stream_t)sym("cublasSetStream_v2"))(h, 0));
  float alpha = 2.0f, beta = 1.0f;   /* C(3x2) = 2 A(3x4) B(4x2) + C, column-major */
  printf("sgemm %d\n", ((sgemm_t)sym("cublasSgemm_v2"))(h, 0, 0, m, n, k, &alpha, da, m, db,
                                                         k, &beta, dc, m));
  int bad = ((sgemm_t)sym("cublasSgemm_v2"))(h, 0, 0, m, n, k, &alpha, (float *)0x10, m, db, k,
                                              &beta, dc, m);
  cudaError_t sync = cudaDeviceSynchronize();   /* a quiet call's failure surfaces here */
  printf("foreign_pointer %d %d\n", bad, (int)sync);
  cudaGetLastError();
  cudaMemcpy(c, dc, sizeof c, cudaMemcpyDeviceToHost);
  printf("c");
  for (int i = 0; i < 6; i++) printf(" %g", c[i]);
  printf("\n");
  int lo = 1, hi = 1, err = 0;
  for (int i = 0; i < repeat; i++) err |= cudaDeviceGetStreamPriorityRange(&lo, &hi);
  printf("priority %d %d %d\n", err, lo, hi);
  printf("destroy %d\n", ((destroy_t)sym("cublasDestroy_v2"))(h));
  void *h2 = NULL;   /* the id the destroy freed is used again */
  ((create_t)sym("cublasCreate_v2"))(&h2);
  printf("again %d\n", ((set_stream_t)sym("cublasSetStream_v2"))(h2, 0));
  ((destroy_t)sym("cublasDestroy_v2"))(h2);
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
  return 0;
}
