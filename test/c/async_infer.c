/* An inference loop in the shape PyTorch gives one: input up, work on the device (a copy
 * here, so that it runs on the emu backend without kernels), the result down with
 * cudaMemcpyAsync and a cudaStreamSynchronize before the host reads it. Checks every
 * result; prints PASS. Used to prove that replay still costs one blocking round trip per
 * inference when the copy to the host is deferred while recording.
 *   async_infer [N]            N inferences (50)
 *   async_infer late SECONDS   one 32 MiB copy to the host, then SECONDS of host work
 *                              before the sync: the session must outlive the wait */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cuda_runtime_api.h>

static int late(int seconds) {
  const size_t n = 32u << 20;
  unsigned char *in = malloc(n), *out = calloc(1, n);
  void *d;
  cudaStream_t s;
  for (size_t i = 0; i < n; i++) in[i] = (unsigned char)(i * 5);
  cudaError_t e = cudaMalloc(&d, n);
  if (!e) e = cudaStreamCreate(&s);
  if (!e) e = cudaMemcpy(d, in, n, cudaMemcpyHostToDevice);
  if (!e) e = cudaMemcpyAsync(out, d, n, cudaMemcpyDeviceToHost, s);
  if (!e) sleep((unsigned)seconds);
  if (!e) e = cudaStreamSynchronize(s);
  int ok = !e && !memcmp(in, out, n);
  if (e) fprintf(stderr, "async_infer: %s\n", cudaGetErrorString(e));
  printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[1], "late")) return late(atoi(argv[2]));
  int n = argc > 1 ? atoi(argv[1]) : 50;
  const size_t bytes = 4096;
  unsigned char in[4096], out[4096];
  void *d_in, *d_out;
  cudaStream_t s;
  if (cudaMalloc(&d_in, bytes) || cudaMalloc(&d_out, bytes) || cudaStreamCreate(&s)) {
    fprintf(stderr, "async_infer: setup failed\n");
    return 1;
  }
  for (int it = 0; it < n; it++) {
    for (size_t i = 0; i < bytes; i++) in[i] = (unsigned char)(i * 3 + it);
    memset(out, 0, bytes);
    cudaError_t e = cudaMemcpyAsync(d_in, in, bytes, cudaMemcpyHostToDevice, s);
    if (!e) e = cudaMemcpyAsync(d_out, d_in, bytes, cudaMemcpyDeviceToDevice, s);
    if (!e) e = cudaMemcpyAsync(out, d_out, bytes, cudaMemcpyDeviceToHost, s);
    if (!e) e = cudaStreamSynchronize(s);
    if (e || memcmp(in, out, bytes)) {
      fprintf(stderr, "async_infer: inference %d: %s\n", it,
              e ? cudaGetErrorString(e) : "wrong result");
      printf("FAIL\n");
      return 1;
    }
  }
  cudaStreamDestroy(s);
  cudaFree(d_in);
  cudaFree(d_out);
  printf("PASS\n");
  return 0;
}
