/* A stand-in for libcublas.so.13 with the same versioned symbols (fake_cublas.map), and a
 * program linked to it like libtorch_cuda.so is to the real one: under LD_PRELOAD the
 * interposer's definitions must win. -DPART_LIB builds the library. */
#include <stdio.h>

#ifdef PART_LIB
int cublasCreate_v2(void **handle) { return 77; }
int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k, const float *alpha,
                   const float *a, int lda, const float *b, int ldb, const float *beta,
                   float *c, int ldc) {
  return 77;
}
#else
int cublasCreate_v2(void **handle);
int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k, const float *alpha,
                   const float *a, int lda, const float *b, int ldb, const float *beta,
                   float *c, int ldc);
int main(void) {
  void *h = NULL;
  float one = 1;
  printf("create %d\n", cublasCreate_v2(&h));
  printf("sgemm %d\n", cublasSgemm_v2(h, 0, 0, 1, 1, 1, &one, &one, 1, &one, 1, &one, &one, 1));
  return 0;
}
#endif
