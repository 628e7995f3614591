/* Every way an app reaches the CUDA driver goes through here: dlopen of libcuda.so(.1),
 * dlsym on that handle (or RTLD_DEFAULT / RTLD_NEXT), cuGetProcAddress and
 * cudaGetDriverEntryPoint(ByVersion). A lookup of a driver function gets ours: the few that
 * PyTorch calls itself are answered below, every other function cuda.h declares fails by
 * name (rrto_driver_table.h, generated). No cu* symbol is exported, so a program that
 * links the real driver, and the real driver itself, are not rebound. In trace mode every
 * lookup passes to the real driver.
 *
 * dlopen and dlsym act for their caller (its RUNPATH, its RTLD_NEXT, its namespace): every
 * call that is not ours ends in a tail call to glibc's, which then sees the caller's return
 * address (test_interposer_driver.py checks both). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <cuda.h>

#include "rrto.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

struct drv_entry {
  const char *name;
  void *fn;
};
struct drv_alias {
  const char *api, *abi, *per_thread;
};
struct drv_error {
  int value;
  const char *name;
};

static void *(*real_dlopen)(const char *, int);
static void *(*real_dlsym)(void *, const char *);
static const char *g_self_path;   /* this library: what dlopen of libcuda hands out */
static void *g_self;

/* glibc's own function: in libc since 2.34, in libdl before, whose first version is
 * GLIBC_2.17 on aarch64 (JetPack 5) and GLIBC_2.2.5 on x86-64. */
static void *glibc(const char *name) {
  static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.17", "GLIBC_2.2.5"};
  void *f = NULL;
  for (size_t i = 0; !f && i < sizeof versions / sizeof *versions; i++)
    f = dlvsym(RTLD_NEXT, name, versions[i]);
  return f;
}

static void find_real(void) {
  Dl_info self;
  void *(*o)(const char *, int) = (void *(*)(const char *, int))glibc("dlopen");
  void *(*s)(void *, const char *) = (void *(*)(void *, const char *))glibc("dlsym");
  if (!o || !s) {
    rrto_log("cannot find glibc's dlopen/dlsym (GLIBC_2.34, 2.17 or 2.2.5); aborting");
    abort();
  }
  if (dladdr((void *)&find_real, &self) && self.dli_fname) {
    g_self_path = self.dli_fname;
    g_self = o(g_self_path, RTLD_LAZY | RTLD_NOLOAD);
  }
  __atomic_store_n(&real_dlsym, s, __ATOMIC_RELEASE);
  __atomic_store_n(&real_dlopen, o, __ATOMIC_RELEASE);
}

static int is_libcuda(const char *file) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  return !strncmp(base, "libcuda.so", 10) && (base[10] == 0 || base[10] == '.');
}

/* The app's own libcudart serves the interposer's host-side helpers only (error strings):
 * it gets no driver, ours included, so that it never initialises against our stubs. */
static int from_local_runtime(const void *caller) {
  Dl_info di;
  if (!dladdr(caller, &di) || !di.dli_fname) return 0;
  const char *base = strrchr(di.dli_fname, '/');
  return !strncmp(base ? base + 1 : di.dli_fname, "libcudart.so", 12);
}

void *dlopen(const char *file, int flags) {
  if (!__atomic_load_n(&real_dlopen, __ATOMIC_ACQUIRE)) find_real();
  if (file && is_libcuda(file) && !rrto_tracing()) {   /* never the local driver */
    if (!g_self || from_local_runtime(__builtin_return_address(0))) return NULL;
    return real_dlopen(g_self_path, RTLD_LAZY | RTLD_NOLOAD);  /* one more reference to us */
  }
  return real_dlopen(file, flags);
}

static void *driver_function(const char *name);

void *dlsym(void *handle, const char *name) {
  if (!__atomic_load_n(&real_dlsym, __ATOMIC_ACQUIRE)) find_real();
  if (name[0] == 'c' && name[1] == 'u' && name[2] >= 'A' && name[2] <= 'Z' &&
      (handle == g_self || handle == RTLD_DEFAULT || handle == RTLD_NEXT) && !rrto_tracing()) {
    void *f = driver_function(name);
    if (f) return f;
  }
  return real_dlsym(handle, name);
}

/* ---------------------------------------------------------------- answered locally */

static const char g_context;   /* the session's context, as the app sees it */

static CUresult drv_cuInit(unsigned int flags) {
  int n = rrto_device_count();   /* connects: the session and its context exist after it */
  return n < 0 ? (CUresult)-n : CUDA_SUCCESS;   /* the runtime's codes here equal the driver's */
}

static CUresult drv_cuDriverGetVersion(int *version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  *version = CUDART_VERSION;   /* as cudaDriverGetVersion answers */
  return CUDA_SUCCESS;
}

static CUresult drv_cuDeviceGetCount(int *count) {
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  int n = rrto_device_count();
  *count = n < 0 ? 0 : n;
  return n < 0 ? (CUresult)-n : CUDA_SUCCESS;
}

static CUresult drv_cuDeviceGet(CUdevice *device, int ordinal) {
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  int n = rrto_device_count();
  if (n < 0) return (CUresult)-n;
  if (ordinal < 0 || ordinal >= n) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

/* PyTorch asks this hundreds of times per inference: no lock, no round trip. The primary
 * context is active exactly while the process has a live session (which owns a context on
 * the server); before the app's first CUDA call, after a fork or a lost session it is not. */
static CUresult drv_cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active) {
  if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
  int n = rrto_session_devices();
  if (dev < 0 || (n && dev >= n)) return CUDA_ERROR_INVALID_DEVICE;
  *flags = 0;
  *active = n > 0;
  return CUDA_SUCCESS;
}

static CUresult drv_cuCtxGetCurrent(CUcontext *pctx) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  *pctx = rrto_session_devices() ? (CUcontext)(uintptr_t)&g_context : NULL;
  return CUDA_SUCCESS;
}

/* The driver's log messages (CUDA 12.9+): this process has no driver, the server's own
 * driver logs go to the server's log. A registration is kept so that it can be undone. */
#if CUDA_VERSION >= 12090
static CUresult drv_cuLogsRegisterCallback(CUlogsCallback callbackFunc, void *userData,
                                           CUlogsCallbackHandle *callback_out) {
  if (!callbackFunc) return CUDA_ERROR_INVALID_VALUE;
  if (callback_out) *callback_out = (CUlogsCallbackHandle)(uintptr_t)&g_context;
  return CUDA_SUCCESS;
}

static CUresult drv_cuLogsUnregisterCallback(CUlogsCallbackHandle callback) {
  return callback ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
#endif

static const char *error_name(int value);

static CUresult drv_cuGetErrorName(CUresult error, const char **str) {
  if (!str) return CUDA_ERROR_INVALID_VALUE;
  *str = error_name((int)error);
  return *str ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* The runtime's string for the same code: CUresult and cudaError_t values agree. */
static CUresult drv_cuGetErrorString(CUresult error, const char **str) {
  if (!str) return CUDA_ERROR_INVALID_VALUE;
  *str = error_name((int)error) ? cudaGetErrorString((cudaError_t)error) : NULL;
  return *str ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static void *lookup_api(const char *symbol, int version, int per_thread);

static CUresult drv_cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                        cuuint64_t flags,
                                        CUdriverProcAddressQueryResult *symbolStatus) {
  if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
  *pfn = lookup_api(symbol, cudaVersion,
                    (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0);
  if (symbolStatus)
    *symbolStatus = *pfn ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return *pfn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

static CUresult drv_cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
                                     cuuint64_t flags) {
  return drv_cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}

/* ---------------------------------------------------------------- the runtime's entry points */

static cudaError_t entry_point(const char *symbol, void **funcPtr, unsigned int version,
                               unsigned long long flags,
                               enum cudaDriverEntryPointQueryResult *status) {
  if (!symbol || !funcPtr) return rrto_ret(cudaErrorInvalidValue);
  *funcPtr = lookup_api(symbol, (int)version, (flags & cudaEnablePerThreadDefaultStream) != 0);
  if (status)
    *status = *funcPtr ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
  return cudaSuccess;   /* not found: success with a NULL pointer, as documented */
}

cudaError_t cudaGetDriverEntryPoint(const char *symbol, void **funcPtr, unsigned long long flags,
                                    enum cudaDriverEntryPointQueryResult *driverStatus) {
  RRTO_ENTER(cudaGetDriverEntryPoint, symbol, funcPtr, flags, driverStatus);
  return entry_point(symbol, funcPtr, CUDART_VERSION, flags, driverStatus);
}

cudaError_t cudaGetDriverEntryPoint_ptsz(const char *symbol, void **funcPtr,
                                         unsigned long long flags,
                                         enum cudaDriverEntryPointQueryResult *driverStatus) {
  RRTO_ENTER(cudaGetDriverEntryPoint_ptsz, symbol, funcPtr, flags, driverStatus);
  return entry_point(symbol, funcPtr, CUDART_VERSION,
                     flags ? flags : cudaEnablePerThreadDefaultStream, driverStatus);
}

cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **funcPtr,
                                             unsigned int cudaVersion, unsigned long long flags,
                                             enum cudaDriverEntryPointQueryResult *driverStatus) {
  RRTO_ENTER(cudaGetDriverEntryPointByVersion, symbol, funcPtr, cudaVersion, flags,
             driverStatus);
  return entry_point(symbol, funcPtr, cudaVersion, flags, driverStatus);
}

cudaError_t cudaGetDriverEntryPointByVersion_ptsz(
    const char *symbol, void **funcPtr, unsigned int cudaVersion, unsigned long long flags,
    enum cudaDriverEntryPointQueryResult *driverStatus) {
  RRTO_ENTER(cudaGetDriverEntryPointByVersion_ptsz, symbol, funcPtr, cudaVersion, flags,
             driverStatus);
  return entry_point(symbol, funcPtr, cudaVersion,
                     flags ? flags : cudaEnablePerThreadDefaultStream, driverStatus);
}

/* ---------------------------------------------------------------- the table */

static CUresult drv_unsupported(int id, const void *caller) {
  rrto_count(id);
  rrto_not_forwarded(id, "CUDA_ERROR_NOT_SUPPORTED (801)", caller);
  return CUDA_ERROR_NOT_SUPPORTED;
}

#include "rrto_driver_table.h"   /* generated: g_driver (sorted), g_aliases, g_errors */

#define COUNT(a) (sizeof(a) / sizeof *(a))

static int by_name(const void *key, const void *entry) {
  return strcmp(key, ((const struct drv_entry *)entry)->name);
}

static int by_api(const void *key, const void *entry) {
  return strcmp(key, ((const struct drv_alias *)entry)->api);
}

static void *driver_function(const char *name) {
  const struct drv_entry *e = bsearch(name, g_driver, COUNT(g_driver), sizeof *e, by_name);
  return e ? e->fn : NULL;
}

/* An API name (cuMemAlloc) to our function for its current ABI (cuMemAlloc_v2). The
 * version picks nothing older, except cuGetProcAddress's own four-argument form. */
static void *lookup_api(const char *symbol, int version, int per_thread) {
  const char *abi = symbol;
  if (strcmp(symbol, "cuGetProcAddress") || version >= 12000) {
    const struct drv_alias *a = bsearch(symbol, g_aliases, COUNT(g_aliases), sizeof *a, by_api);
    if (a) abi = per_thread ? a->per_thread : a->abi;
  }
  return driver_function(abi);
}

static const char *error_name(int value) {
  for (size_t i = 0; i < COUNT(g_errors); i++)
    if (g_errors[i].value == value) return g_errors[i].name;
  return NULL;
}
