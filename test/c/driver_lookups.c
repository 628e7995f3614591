/* Reaches the CUDA driver the ways apps and PyTorch do (dlopen of libcuda.so.1 + dlsym,
 * cuGetProcAddress, cudaGetDriverEntryPoint*) and calls cuBLAS / cuDNN functions found with
 * dlsym, printing "key value" lines for test/test_interposer_driver.py. Built with gcc
 * against the CUDA headers, linked to libcudart and libdl only: there is no libcuda here. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cuda.h>
#include <cuda_runtime_api.h>

typedef CUresult (*state_fn)(CUdevice, unsigned int *, int *);
typedef CUresult (*ctx_fn)(CUcontext *);
typedef CUresult (*init_fn)(unsigned int);
typedef CUresult (*int_fn)(int *);
typedef CUresult (*dev_fn)(CUdevice *, int);
typedef CUresult (*str_fn)(CUresult, const char **);
typedef CUresult (*gpa_fn)(const char *, void **, int, cuuint64_t,
                           CUdriverProcAddressQueryResult *);

static void *libcuda(void) {
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) printf("dlopen_error %s\n", dlerror());
  return h;
}

static void state(const char *when, state_fn get, ctx_fn cur) {
  unsigned int flags = 7;
  int active = 7;
  CUcontext ctx = (CUcontext)1;
  int e1 = get(0, &flags, &active), e2 = cur(&ctx);
  printf("state_%s %d %u %d\nctx_%s %d %s\n", when, e1, flags, active, when, e2,
         ctx ? "set" : "null");
}

static int driver(void) {
  void *h = libcuda();
  if (!h) return 1;
  printf("same_handle_by_path %d\n", dlopen("/usr/lib/x86_64-linux-gnu/libcuda.so.1", RTLD_NOW) == h);
  state_fn get = (state_fn)dlsym(h, "cuDevicePrimaryCtxGetState");
  ctx_fn cur = (ctx_fn)dlsym(h, "cuCtxGetCurrent");
  printf("found %d %d\n", get != NULL, cur != NULL);
  if (!get || !cur) return 1;
  printf("default_same %d\n", dlsym(RTLD_DEFAULT, "cuCtxGetCurrent") == (void *)cur);
  state("before", get, cur);
  printf("init %d\n", ((init_fn)dlsym(h, "cuInit"))(0));
  state("after", get, cur);
  CUcontext a = NULL, b = NULL;
  cur(&a);
  cur(&b);
  printf("ctx_stable %d\n", a == b && a != NULL);
  int v = 0, n = 0;
  CUdevice d = -1;
  int e = ((int_fn)dlsym(h, "cuDriverGetVersion"))(&v);   /* one call per statement: */
  printf("version %d %d\n", e, v);                          /* arguments are unordered */
  e = ((int_fn)dlsym(h, "cuDeviceGetCount"))(&n);
  printf("count %d %d\n", e, n);
  e = ((dev_fn)dlsym(h, "cuDeviceGet"))(&d, 0);
  printf("device %d %d\n", e, d);
  printf("device_5 %d\n", ((dev_fn)dlsym(h, "cuDeviceGet"))(&d, 5));
  printf("state_bad_device %d\n", get(5, &(unsigned int){0}, &(int){0}));
  const char *s = NULL;
  e = ((str_fn)dlsym(h, "cuGetErrorName"))(CUDA_ERROR_NOT_SUPPORTED, &s);
  printf("name_801 %d %s\n", e, s ? s : "(null)");
  s = NULL;
  e = ((str_fn)dlsym(h, "cuGetErrorString"))(CUDA_ERROR_NOT_SUPPORTED, &s);
  printf("string_801 %d %s\n", e, s ? s : "(null)");
  printf("name_bad %d\n", ((str_fn)dlsym(h, "cuGetErrorName"))((CUresult)123456, &s));
  dlerror();
  void *missing = dlsym(h, "cuNoSuchFunction");
  printf("missing %d %d\n", missing == NULL, dlerror() != NULL);
  printf("close %d\n", dlclose(h));
  return 0;
}

static int entry_points(void) {
  void *h = libcuda();
  if (!h) return 1;
  gpa_fn gpa = (gpa_fn)dlsym(h, "cuGetProcAddress_v2");
  void *f = NULL;
  CUdriverProcAddressQueryResult st = 9;
  printf("gpa_found %d\n", gpa != NULL);
  int e = gpa("cuDevicePrimaryCtxGetState", &f, 13000, 0, &st);
  printf("gpa_state %d %d %d\n", e, st, f == dlsym(h, "cuDevicePrimaryCtxGetState"));
  gpa("cuCtxCreate", &f, 13000, 0, NULL);
  printf("gpa_versioned %d\n", f != NULL && f == dlsym(h, "cuCtxCreate_v4"));
  gpa("cuLaunchKernel", &f, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, NULL);
  printf("gpa_per_thread %d %d\n", f == dlsym(h, "cuLaunchKernel_ptsz"),
         f != dlsym(h, "cuLaunchKernel"));
  gpa("cuGetProcAddress", &f, 11030, 0, NULL);
  printf("gpa_v1 %d\n", f != NULL && f == dlsym(h, "cuGetProcAddress"));
  e = gpa("cuNoSuchFunction", &f, 13000, 0, &st);
  printf("gpa_missing %d %d %d\n", e, st, f == NULL);
  enum cudaDriverEntryPointQueryResult q = 9;
  e = cudaGetDriverEntryPoint("cuCtxGetCurrent", &f, cudaEnableDefault, &q);
  printf("rt_entry %d %d %d\n", e, q, f == dlsym(h, "cuCtxGetCurrent"));
  e = cudaGetDriverEntryPointByVersion("cuMemCreate", &f, 12030, cudaEnableDefault, &q);
  printf("rt_by_version %d %d %d\n", e, q, f != NULL && f == dlsym(h, "cuMemCreate"));
  e = cudaGetDriverEntryPointByVersion("cuNoSuchFunction", &f, 12030, 0, &q);
  printf("rt_missing %d %d %d\n", e, q, f == NULL);
  return 0;
}

/* Functions the interposer does not forward: called with arguments they ignore. */
static int unsupported(void) {
  void *h = libcuda();
  if (!h) return 1;
  CUresult (*create)(CUcontext *, void *, unsigned int, CUdevice) =
      (CUresult (*)(CUcontext *, void *, unsigned int, CUdevice))dlsym(h, "cuCtxCreate_v4");
  CUcontext c = NULL;
  printf("ctx_create %d\n", create(&c, NULL, 0, 0));
  printf("ctx_create_again %d\n", create(&c, NULL, 0, 0));
  /* Functions of each library that are not forwarded (forwarded.txt lists those that are) */
  int (*blas)(void **) = (int (*)(void **))dlsym(RTLD_DEFAULT, "cublasGetLoggerCallback");
  int (*dnn)(void **) = (int (*)(void **))dlsym(RTLD_DEFAULT, "cudnnCreateCTCLossDescriptor");
  int (*lt)(void **) = (int (*)(void **))dlsym(RTLD_DEFAULT, "cublasLtEmulationDescCreate");
  void *handle = NULL;
  printf("cublas_found %d %d %d\n", blas != NULL, dnn != NULL, lt != NULL);
  if (!blas || !dnn || !lt) return 1;
  printf("cublas_create %d\n", blas(&handle));
  printf("cudnn_create %d\n", dnn(&handle));
  printf("cublaslt_create %d\n", lt(&handle));
  size_t (*version)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "cudnnGetVersion");
  printf("cudnn_version %zu\n", version());
  return 0;
}

/* Nanoseconds per dlsym, for the report (no test asserts a time). */
static int bench(const char *lib, const char *name) {
  void *h = dlopen(lib, RTLD_NOW);
  if (!h) {
    printf("bench_error %s\n", dlerror());
    return 1;
  }
  struct timespec t0, t1;
  enum { N = 1000000 };
  void *volatile sink;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < N; i++) sink = dlsym(h, name);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  (void)sink;
  printf("ns_per_dlsym %s %s %.1f\n", lib, name,
         ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / N);
  return 0;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "driver")) return driver();
  if (!strcmp(what, "entry_points")) return entry_points();
  if (!strcmp(what, "unsupported")) return unsupported();
  if (!strcmp(what, "bench") && argc > 3) return bench(argv[2], argv[3]);
  fprintf(stderr, "usage: driver_lookups driver|entry_points|unsupported|bench LIB NAME\n");
  return 2;
}
