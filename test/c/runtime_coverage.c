/* The runtime functions PyTorch and CUB use beyond the basics, against the server: printed
 * as "name values" lines for test_runtime_coverage.py. */
#include <stdio.h>
#include <string.h>
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>

int main(void) {
  int lo = 7, hi = 7;
  int r = cudaDeviceGetStreamPriorityRange(&lo, &hi);   /* calls before printf: argument
                                                         * order is unspecified */
  printf("priority %d %d %d\n", r, lo, hi);
  unsigned flags = 0;
  printf("set_flags %d\n", cudaSetDeviceFlags(cudaDeviceScheduleBlockingSync));
  r = cudaGetDeviceFlags(&flags);
  printf("get_flags %d %u\n", r, flags);
  printf("bad_flags %d\n", cudaSetDeviceFlags(0x80000000u));
  cudaGetLastError();
  char bus[32] = {0};
  r = cudaDeviceGetPCIBusId(bus, sizeof bus, 0);
  printf("pci %d %s\n", r, bus);
  int can = 9;
  r = cudaDeviceCanAccessPeer(&can, 0, 0);
  printf("peer %d %d\n", r, can);
  printf("enable_peer %d\n", cudaDeviceEnablePeerAccess(0, 0));
  cudaGetLastError();
  size_t heap = 0;
  r = cudaDeviceGetLimit(&heap, cudaLimitMallocHeapSize);
  printf("get_limit %d %zu\n", r, heap);
  printf("set_limit %d\n", cudaDeviceSetLimit(cudaLimitMallocHeapSize, 16 << 20));
  cudaDeviceGetLimit(&heap, cudaLimitMallocHeapSize);
  printf("limit_after %zu\n", heap);
  enum cudaStreamCaptureStatus st = cudaStreamCaptureStatusActive;
  unsigned long long id = 0;
  r = cudaStreamGetCaptureInfo(0, &st, &id, NULL, NULL, NULL, NULL);
  printf("capture_info %d %d\n", r, (int)st);
  enum cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  cudaThreadExchangeStreamCaptureMode(&mode);
  enum cudaStreamCaptureMode back = mode;
  cudaThreadExchangeStreamCaptureMode(&back);
  printf("capture_mode %d %d\n", (int)mode, (int)back);
  static char host[4096];
  r = cudaHostRegister(host, sizeof host, 0);
  printf("host_register %d %d\n", r, cudaHostUnregister(host));
  printf("host_register_mapped %d\n", cudaHostRegister(host, sizeof host,
                                                       cudaHostRegisterMapped));
  cudaGetLastError();
  void *p = NULL;
  int a = cudaMallocAsync(&p, 1 << 20, 0);
  int m = cudaMemsetAsync(p, 0x5a, 1 << 20, 0);
  unsigned char back_bytes[4] = {0};
  int c = cudaMemcpy(back_bytes, (char *)p + 1000, 4, cudaMemcpyDeviceToHost);
  printf("malloc_async %d %d %d %02x\n", a, m, c, back_bytes[3]);
  printf("free_async %d\n", cudaFreeAsync(p, 0));
  cudaEvent_t e;
  cudaEventCreate(&e);
  r = cudaEventRecordWithFlags(e, 0, 0);
  printf("record_flags %d %d\n", r, cudaEventRecordWithFlags(e, 0, 0x40));
  cudaGetLastError();
  r = cudaProfilerStart();
  printf("profiler %d %d\n", r, cudaProfilerStop());
  printf("sync %d\n", cudaDeviceSynchronize());
  return 0;
}
