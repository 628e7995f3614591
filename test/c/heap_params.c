/* A launch whose by-value struct holds a pointer into the app's heap (what nvcc's
 * host-device lambda wrapper passes PyTorch's kernels), for test_interposer_heap_words.py.
 * Registers the fatbin in the file argv[1] (a cubin whose .nv.info describes _Z4kernv with
 * one 24-byte parameter), launches it twice with two different heap pointers, and syncs.
 * Built with gcc against the CUDA headers, linked to libcudart dynamically, like any app. */
#include <stdio.h>
#include <stdlib.h>
#include <cuda_runtime_api.h>

struct wrapper {
  int magic, version;
  const void *data;
  void *filename;
};
struct params {
  void *heap;         /* a robot host address: no GPU can use it */
  long value;         /* a plain number, kept */
  void *small;        /* a pointer value outside the heap, kept */
};
void **__cudaRegisterFatBinary(void *fatCubin);
void __cudaRegisterFatBinaryEnd(void **handle);
void __cudaRegisterFunction(void **handle, const char *hostFun, char *deviceFun,
                            const char *deviceName, int threadLimit, void *tid, void *bid,
                            void *bDim, void *gDim, int *wSize);

static void stub(void) {}

int main(int argc, char **argv) {
  FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
  if (!f) return 2;
  static unsigned long long image[1 << 14];
  size_t n = fread(image, 1, sizeof image, f);
  fclose(f);
  if (!n) return 2;
  struct wrapper w = {0x466243B1, 1, image, NULL};
  void **h = __cudaRegisterFatBinary(&w);
  __cudaRegisterFunction(h, (const char *)stub, "_Z4kernv", "_Z4kernv", -1, NULL, NULL, NULL,
                         NULL, NULL);
  __cudaRegisterFatBinaryEnd(h);
  for (int i = 0; i < 2; i++) {
    struct params p = {malloc(64 + 4096 * i), 42, (void *)0x1000};
    void *args[] = {&p};
    dim3 one = {1, 1, 1};
    printf("launch %d\n", cudaLaunchKernel((const void *)stub, one, one, args, 0, 0));
  }
  printf("sync %d\n", cudaDeviceSynchronize());
  return 0;
}
