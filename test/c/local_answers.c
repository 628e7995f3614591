/* Drives the interposer's locally answered calls against a scripted fake client node
 * (test/fake_agent.py). Built with gcc against the CUDA headers and linked to libcudart
 * dynamically, like any app, so LD_PRELOAD=librrto_cuda.so takes over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>

static int errors(void) {
  int dev = -1;
  cudaGetDevice(&dev);
  printf("device %d\n", dev);
  printf("set_device_5 %d\n", cudaSetDevice(5));
  printf("last %d\n", cudaGetLastError());
  printf("last_again %d\n", cudaGetLastError());
  printf("peek %d\n", cudaPeekAtLastError());
  printf("sync %d\n", cudaDeviceSynchronize());  /* the fake agent answers 700 */
  printf("peek_sticky %d\n", cudaPeekAtLastError());
  printf("last_sticky %d\n", cudaGetLastError());
  printf("last_sticky_again %d\n", cudaGetLastError());
  printf("string_700 %s\n", cudaGetErrorString(cudaErrorIllegalAddress));
  printf("name_700 %s\n", cudaGetErrorName(cudaErrorIllegalAddress));
  return 0;
}

static int props(void) {
  struct cudaDeviceProp p;
  memset(&p, 0, sizeof p);   /* printed even when the calls fail */
  int warp = 0, major = 0, count = 0;
  printf("count_err %d\n", cudaGetDeviceCount(&count));
  printf("count %d\n", count);
  printf("props_err %d\n", cudaGetDeviceProperties(&p, 0));
  printf("props_again_err %d\n", cudaGetDeviceProperties(&p, 0));
  cudaDeviceGetAttribute(&warp, cudaDevAttrWarpSize, 0);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  printf("name %s\nwarp %d %d\nmajor %d %d\ntotal %zu\nsm %d\n", p.name, warp, p.warpSize,
         major, p.major, p.totalGlobalMem, p.multiProcessorCount);
  printf("bad_device %d\n", cudaGetDeviceProperties(&p, 3));
  return 0;
}

static int unsupported(void) {
  cudaGraph_t g;
  printf("graph_create %d\n", cudaGraphCreate(&g, 0));
  printf("last %d\n", cudaGetLastError());
  return 0;
}

static int pipelined(void) {
  void *p = NULL;
  printf("malloc %d\n", cudaMalloc(&p, 256));
  printf("memset %d\n", cudaMemsetAsync(p, 1, 256, 0));   /* sent without waiting */
  printf("sync %d\n", cudaDeviceSynchronize());           /* reports the memset's error */
  int host_is_device = 0;
  struct cudaPointerAttributes a;
  cudaPointerGetAttributes(&a, p);
  host_is_device = a.type == cudaMemoryTypeDevice;
  printf("pointer_is_device %d\n", host_is_device);
  cudaPointerGetAttributes(&a, &host_is_device);
  printf("stack_is_device %d\n", a.type == cudaMemoryTypeDevice);
  return 0;
}

/* One tiny "inference" n times: input copy, memset, result copy. At iteration change_at
 * the memset's value differs (a divergence from a recorded sequence). */
static int replay(int n, int change_at) {
  void *d = NULL;
  unsigned char in[64], out[64];
  printf("malloc %d\n", cudaMalloc(&d, sizeof in));
  for (int k = 0; k < n; k++) {
    memset(in, k, sizeof in);
    memset(out, 0xee, sizeof out);
    int e1 = cudaMemcpy(d, in, sizeof in, cudaMemcpyHostToDevice);
    int e2 = cudaMemsetAsync(d, k == change_at ? 2 : 1, 8, 0);
    int e3 = cudaMemcpy(out, d, sizeof out, cudaMemcpyDeviceToHost);
    printf("iter%d %d %d %d %d %d\n", k, e1, e2, e3, out[0], out[8]);
  }
  return 0;
}

/* Copies to the host the app does not wait for. The fake agent answers MEMCPY_DTOH with
 * bytes (offset + i) & 0xff of the piece it was asked for (late, or with an error). */
static int check_pattern(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(i & 0xff)) return 0;
  return 1;
}

static int deferred(size_t n) {
  unsigned char *host = malloc(n), *up = malloc(n);
  void *dev;
  cudaStream_t s;
  cudaEvent_t ev;
  memset(host, 0, n);
  memset(up, 7, n);
  printf("malloc %d\n", cudaMalloc(&dev, n));
  printf("stream %d\n", cudaStreamCreate(&s));
  printf("event %d\n", cudaEventCreate(&ev));
  printf("copy %d\n", cudaMemcpyAsync(host, dev, n, cudaMemcpyDeviceToHost, s));
  printf("record %d\n", cudaEventRecord(ev, s));
  long polls = 0;
  cudaError_t q;
  while ((q = cudaEventQuery(ev)) == cudaErrorNotReady) polls++;
  printf("query %d\n", q);
  printf("polls %ld\n", polls);
  printf("data_after_query %d\n", check_pattern(host, n));
  /* a second copy, then a large upload while its answer arrives (neither side may wait
   * for the other to read), then a sync */
  memset(host, 0, n);
  printf("copy2 %d\n", cudaMemcpyAsync(host, dev, n, cudaMemcpyDeviceToHost, s));
  printf("upload %d\n", cudaMemcpyAsync(dev, up, n, cudaMemcpyHostToDevice, s));
  printf("sync %d\n", cudaStreamSynchronize(s));
  printf("data_after_sync %d\n", check_pattern(host, n));
  /* a copy whose answer is an error: returned by the next call that waits */
  printf("copy3 %d\n", cudaMemcpyAsync(host, (char *)dev + 1, 64, cudaMemcpyDeviceToHost, s));
  printf("sync3 %d\n", cudaDeviceSynchronize());
  printf("sync4 %d\n", cudaDeviceSynchronize());
  free(host);
  free(up);
  return 0;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "replay") && argc > 3) return replay(atoi(argv[2]), atoi(argv[3]));
  if (!strcmp(what, "deferred") && argc > 2) return deferred((size_t)atol(argv[2]));
  if (!strcmp(what, "errors")) return errors();
  if (!strcmp(what, "props")) return props();
  if (!strcmp(what, "unsupported")) return unsupported();
  if (!strcmp(what, "pipelined")) return pipelined();
  fprintf(stderr, "usage: local_answers errors|props|unsupported|pipelined|replay N K\n");
  return 2;
}
