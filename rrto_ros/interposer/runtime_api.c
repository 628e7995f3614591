/* The CUDA runtime functions the interposer implements, one uniform body each: count the
 * call (or pass it to the real runtime in trace mode), then either answer locally or
 * forward it as one op. Functions not defined here get a generated stub that reports them
 * by name (gen_api_table.py). */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rrto.h"

#define PTR(p) ((uint64_t)(uintptr_t)(p))
#define MAX_PARAM_BYTES 32768

static __thread int t_device;

/* ---------------------------------------------------------------- devices */

#define NATTR 160   /* cudaDeviceAttr values fetched at once, 0..NATTR-1 */

struct device_cache {
  int valid;
  int attr[NATTR];
  char name[256];
  unsigned char uuid[16];
  uint64_t total_mem;
};
static struct device_cache g_dev;  /* the session has one device */

static int fetch_device(void) {
  if (__atomic_load_n(&g_dev.valid, __ATOMIC_ACQUIRE)) return 0;
  int ids[NATTR];
  for (int i = 0; i < NATTR; i++) ids[i] = i;
  struct {
    int attr[NATTR];
    char name[256];
    unsigned char uuid[16];
  } out;
  struct rrto_reply rep = {.out = &out, .out_cap = sizeof out};
  int err = rrto_call(RRTO_OP_DEVICE_ATTRS, RRTO_ARGS(0), ids, sizeof ids, &rep);
  if (err) return err;
  if (rep.out_len != sizeof out || rep.nres < 1) return cudaErrorUnknown;
  memcpy(g_dev.attr, out.attr, sizeof out.attr);
  memcpy(g_dev.name, out.name, sizeof out.name);
  g_dev.name[255] = 0;
  memcpy(g_dev.uuid, out.uuid, sizeof out.uuid);
  g_dev.total_mem = rep.res[0];
  __atomic_store_n(&g_dev.valid, 1, __ATOMIC_RELEASE);
  return 0;
}

static int check_device(int device) {
  int n = rrto_device_count();
  if (n < 0) return -n;
  return (device < 0 || device >= n) ? cudaErrorInvalidDevice : 0;
}

cudaError_t cudaGetDeviceCount(int *count) {
  RRTO_ENTER(cudaGetDeviceCount, count);
  int n = rrto_device_count();
  *count = n < 0 ? 0 : n;
  return rrto_ret(n < 0 ? -n : 0);
}

cudaError_t cudaSetDevice(int device) {
  RRTO_ENTER(cudaSetDevice, device);
  int err = check_device(device);
  if (!err) t_device = device;
  return rrto_ret(err);
}

cudaError_t cudaGetDevice(int *device) {
  RRTO_ENTER(cudaGetDevice, device);
  *device = t_device;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
  RRTO_ENTER(cudaDeviceGetAttribute, value, attr, device);
  int err = check_device(device);
  if (!err && ((int)attr < 0 || (int)attr >= NATTR)) err = cudaErrorInvalidValue;
  if (!err) err = fetch_device();
  if (!err) *value = g_dev.attr[attr];
  return rrto_ret(err);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
  RRTO_ENTER(cudaGetDeviceProperties, prop, device);
  int err = check_device(device);
  if (!err) err = fetch_device();
  if (err) return rrto_ret(err);
  static const struct { size_t off; int attr; int is_size_t; } map[] = {
#define F(field, attr) {offsetof(struct cudaDeviceProp, field), attr, \
    sizeof(((struct cudaDeviceProp *)0)->field) == sizeof(size_t)}
      F(sharedMemPerBlock, cudaDevAttrMaxSharedMemoryPerBlock),
      F(regsPerBlock, cudaDevAttrMaxRegistersPerBlock),
      F(warpSize, cudaDevAttrWarpSize),
      F(memPitch, cudaDevAttrMaxPitch),
      F(maxThreadsPerBlock, cudaDevAttrMaxThreadsPerBlock),
      F(maxThreadsDim[0], cudaDevAttrMaxBlockDimX),
      F(maxThreadsDim[1], cudaDevAttrMaxBlockDimY),
      F(maxThreadsDim[2], cudaDevAttrMaxBlockDimZ),
      F(maxGridSize[0], cudaDevAttrMaxGridDimX),
      F(maxGridSize[1], cudaDevAttrMaxGridDimY),
      F(maxGridSize[2], cudaDevAttrMaxGridDimZ),
      F(totalConstMem, cudaDevAttrTotalConstantMemory),
      F(major, cudaDevAttrComputeCapabilityMajor),
      F(minor, cudaDevAttrComputeCapabilityMinor),
      F(textureAlignment, cudaDevAttrTextureAlignment),
      F(multiProcessorCount, cudaDevAttrMultiProcessorCount),
      F(integrated, cudaDevAttrIntegrated),
      F(canMapHostMemory, cudaDevAttrCanMapHostMemory),
      F(concurrentKernels, cudaDevAttrConcurrentKernels),
      F(ECCEnabled, cudaDevAttrEccEnabled),
      F(pciBusID, cudaDevAttrPciBusId),
      F(pciDeviceID, cudaDevAttrPciDeviceId),
      F(pciDomainID, cudaDevAttrPciDomainId),
      F(asyncEngineCount, cudaDevAttrAsyncEngineCount),
      F(unifiedAddressing, cudaDevAttrUnifiedAddressing),
      F(memoryBusWidth, cudaDevAttrGlobalMemoryBusWidth),
      F(l2CacheSize, cudaDevAttrL2CacheSize),
      F(maxThreadsPerMultiProcessor, cudaDevAttrMaxThreadsPerMultiProcessor),
      F(streamPrioritiesSupported, cudaDevAttrStreamPrioritiesSupported),
      F(sharedMemPerMultiprocessor, cudaDevAttrMaxSharedMemoryPerMultiprocessor),
      F(regsPerMultiprocessor, cudaDevAttrMaxRegistersPerMultiprocessor),
      F(managedMemory, cudaDevAttrManagedMemory),
      F(cooperativeLaunch, cudaDevAttrCooperativeLaunch),
      F(sharedMemPerBlockOptin, cudaDevAttrMaxSharedMemoryPerBlockOptin),
      F(maxBlocksPerMultiProcessor, cudaDevAttrMaxBlocksPerMultiprocessor),
      F(reservedSharedMemPerBlock, cudaDevAttrReservedSharedMemoryPerBlock),
#undef F
  };
  memset(prop, 0, sizeof *prop);
  memcpy(prop->name, g_dev.name, sizeof prop->name);
  memcpy(&prop->uuid, g_dev.uuid, sizeof prop->uuid);
  prop->totalGlobalMem = g_dev.total_mem;
  for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
    int v = map[i].attr < NATTR ? g_dev.attr[map[i].attr] : 0;
    if (map[i].is_size_t) *(size_t *)((char *)prop + map[i].off) = (size_t)v;
    else *(int *)((char *)prop + map[i].off) = v;
  }
  return cudaSuccess;
}

/* The session has one device: no peers. */
cudaError_t cudaDeviceCanAccessPeer(int *canAccessPeer, int device, int peerDevice) {
  RRTO_ENTER(cudaDeviceCanAccessPeer, canAccessPeer, device, peerDevice);
  int err = check_device(device);
  if (!err) err = check_device(peerDevice);
  if (!err && !canAccessPeer) err = cudaErrorInvalidValue;
  if (!err) *canAccessPeer = 0;
  return rrto_ret(err);
}

cudaError_t cudaDeviceEnablePeerAccess(int peerDevice, unsigned int flags) {
  RRTO_ENTER(cudaDeviceEnablePeerAccess, peerDevice, flags);
  return rrto_ret(cudaErrorInvalidDevice);   /* as CUDA answers for a device and itself */
}

cudaError_t cudaDeviceDisablePeerAccess(int peerDevice) {
  RRTO_ENTER(cudaDeviceDisablePeerAccess, peerDevice);
  return rrto_ret(cudaErrorPeerAccessNotEnabled);
}

cudaError_t cudaDeviceGetPCIBusId(char *pciBusId, int len, int device) {
  RRTO_ENTER(cudaDeviceGetPCIBusId, pciBusId, len, device);
  int err = check_device(device);
  if (!err && (!pciBusId || len <= 0)) err = cudaErrorInvalidValue;
  if (!err) err = fetch_device();
  if (!err)   /* the server's device, in the driver's domain:bus:device.function form */
    snprintf(pciBusId, (size_t)len, "%08x:%02x:%02x.0", g_dev.attr[cudaDevAttrPciDomainId],
             g_dev.attr[cudaDevAttrPciBusId], g_dev.attr[cudaDevAttrPciDeviceId]);
  return rrto_ret(err);
}

/* Device flags belong to the app's view of its context: kept here, as the runtime keeps
 * them until the context exists (the server's context has its own). */
static unsigned g_device_flags;

cudaError_t cudaSetDeviceFlags(unsigned int flags) {
  RRTO_ENTER(cudaSetDeviceFlags, flags);
  if (flags & ~(unsigned)(cudaDeviceScheduleMask | cudaDeviceMapHost |
                          cudaDeviceLmemResizeToMax | cudaDeviceSyncMemops))
    return rrto_ret(cudaErrorInvalidValue);
  __atomic_store_n(&g_device_flags, flags, __ATOMIC_RELAXED);
  return cudaSuccess;
}

cudaError_t cudaGetDeviceFlags(unsigned int *flags) {
  RRTO_ENTER(cudaGetDeviceFlags, flags);
  if (!flags) return rrto_ret(cudaErrorInvalidValue);
  *flags = __atomic_load_n(&g_device_flags, __ATOMIC_RELAXED) | cudaDeviceMapHost;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  RRTO_ENTER(cudaDeviceSynchronize);
  return rrto_ret(rrto_call(RRTO_OP_DEVICE_SYNC, NULL, 0, NULL, 0, NULL));
}

cudaError_t cudaDeviceReset(void) {
  RRTO_ENTER(cudaDeviceReset);
  return rrto_ret(rrto_call(RRTO_OP_DEVICE_RESET, NULL, 0, NULL, 0, NULL));
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  RRTO_ENTER(cudaMemGetInfo, free_bytes, total);
  struct rrto_reply rep = {0};
  int err = rrto_call(RRTO_OP_MEM_GET_INFO, NULL, 0, NULL, 0, &rep);
  if (!err) {
    *free_bytes = rep.res[0];
    *total = rep.res[1];
  }
  return rrto_ret(err);
}

cudaError_t cudaDriverGetVersion(int *driverVersion) {
  RRTO_ENTER(cudaDriverGetVersion, driverVersion);
  *driverVersion = CUDART_VERSION;  /* the remote driver serves this runtime's API level */
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *runtimeVersion) {
  RRTO_ENTER(cudaRuntimeGetVersion, runtimeVersion);
  *runtimeVersion = CUDART_VERSION;
  return cudaSuccess;
}

/* ---------------------------------------------------------------- memory */

static cudaError_t dev_malloc(void **devPtr, size_t size) {
  if (!devPtr) return rrto_ret(cudaErrorInvalidValue);
  struct rrto_reply rep = {0};
  int err = rrto_call(RRTO_OP_MALLOC, RRTO_ARGS(size), NULL, 0, &rep);
  if (!err) {
    *devPtr = (void *)(uintptr_t)rep.res[0];
    rrto_mem_add(rep.res[0], size);
  }
  return rrto_ret(err);
}

static cudaError_t dev_free(void *devPtr) {
  if (!devPtr) {  /* the classic "initialise the context" idiom */
    int n = rrto_device_count();
    return rrto_ret(n < 0 ? -n : 0);
  }
  int err = rrto_call(RRTO_OP_FREE, RRTO_ARGS(PTR(devPtr)), NULL, 0, NULL);
  if (!err) rrto_mem_remove(PTR(devPtr));
  return rrto_ret(err);
}

cudaError_t cudaMalloc(void **devPtr, size_t size) {
  RRTO_ENTER(cudaMalloc, devPtr, size);
  return dev_malloc(devPtr, size);
}

cudaError_t cudaFree(void *devPtr) {
  RRTO_ENTER(cudaFree, devPtr);
  return dev_free(devPtr);
}

/* Stream-ordered allocation: the server allocates at once (the memory is usable by the
 * stream's later work, as required) and frees after the work before it (cuMemFree waits). */
cudaError_t cudaMallocAsync(void **devPtr, size_t size, cudaStream_t stream) {
  RRTO_ENTER(cudaMallocAsync, devPtr, size, stream);
  return dev_malloc(devPtr, size);
}

cudaError_t cudaFreeAsync(void *devPtr, cudaStream_t stream) {
  RRTO_ENTER(cudaFreeAsync, devPtr, stream);
  return devPtr ? dev_free(devPtr) : cudaSuccess;
}

/* Page-locked host memory is plain host memory here: the GPU is on another machine. */
cudaError_t cudaMallocHost(void **ptr, size_t size) {
  RRTO_ENTER(cudaMallocHost, ptr, size);
  return rrto_ret(posix_memalign(ptr, 4096, size ? size : 1) ? cudaErrorMemoryAllocation : 0);
}

cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags) {
  RRTO_ENTER(cudaHostAlloc, pHost, size, flags);
  return rrto_ret(posix_memalign(pHost, 4096, size ? size : 1) ? cudaErrorMemoryAllocation
                                                               : 0);
}

/* Registering host memory page-locks it for the local GPU's DMA: there is none, copies
 * from it travel like any host memory. A mapped registration (device access to host
 * memory) cannot be offered across the network and fails by name. */
cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags) {
  RRTO_ENTER(cudaHostRegister, ptr, size, flags);
  if (!ptr || !size) return rrto_ret(cudaErrorInvalidValue);
  if (flags & (cudaHostRegisterMapped | cudaHostRegisterIoMemory)) {
    rrto_log("cudaHostRegister with cudaHostRegisterMapped/IoMemory (flags 0x%x): the GPU is "
             "on another machine and cannot reach this memory; returning "
             "cudaErrorNotSupported", flags);
    return rrto_ret(cudaErrorNotSupported);
  }
  return cudaSuccess;
}

cudaError_t cudaHostUnregister(void *ptr) {
  RRTO_ENTER(cudaHostUnregister, ptr);
  return ptr ? cudaSuccess : rrto_ret(cudaErrorInvalidValue);
}

cudaError_t cudaFreeHost(void *ptr) {
  RRTO_ENTER(cudaFreeHost, ptr);
  free(ptr);
  return cudaSuccess;
}

static enum cudaMemcpyKind resolve_kind(void *dst, const void *src, enum cudaMemcpyKind kind) {
  if (kind != cudaMemcpyDefault) return kind;
  int d = rrto_mem_is_device(dst), s = rrto_mem_is_device(src);
  return d ? (s ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
           : (s ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
}

/* Copies in pieces: RRTO_CHUNK bytes at most per message, RRTO_COPY_CHUNK in `pipelined`
 * (the client node forwards one piece while the next arrives, and buffers get reused). To
 * the device: every piece but a blocking copy's last is posted. To the host: the pieces go
 * out deferred (transport.c), so they travel back to back; a blocking copy waits with its
 * last piece. An async copy to the host returns at once and its data arrive when the app
 * synchronises, if its range lies in one allocation the interposer knows (so the server's
 * range check cannot fail after the call returned); else it waits, as before.
 * async: the app called an *Async variant. */
static int copy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                cudaStream_t stream, int async) {
  kind = resolve_kind(dst, src, kind);
  if (kind == cudaMemcpyHostToHost) {
    memmove(dst, src, count);
    return 0;
  }
  if (kind == cudaMemcpyDeviceToDevice)
    return rrto_post(RRTO_OP_MEMCPY_DTOD,
                     RRTO_ARGS(PTR(dst), PTR(src), count, PTR(stream), (uint64_t)async), NULL,
                     0);
  if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToHost)
    return cudaErrorInvalidMemcpyDirection;
  int mode = rrto_mode();
  size_t chunk = mode == RRTO_MODE_PIPELINED ? RRTO_COPY_CHUNK : RRTO_CHUNK;
  int defer_all = async && rrto_mem_contains(src, count);
  size_t off = 0;
  do {
    size_t n = count - off < chunk ? count - off : chunk;
    int last = off + n == count;
    int err;
    if (kind == cudaMemcpyHostToDevice) {
      uint64_t args[3] = {PTR(dst) + off, PTR(stream), (uint64_t)async};
      err = async || !last
                ? rrto_post(RRTO_OP_MEMCPY_HTOD, args, 3, (const char *)src + off, n)
                : rrto_call(RRTO_OP_MEMCPY_HTOD, args, 3, (const char *)src + off, n, NULL);
    } else {
      uint64_t args[4] = {PTR(src) + off, n, PTR(stream), (uint64_t)async};
      if (defer_all || (!async && !last)) {
        err = rrto_call_deferred(RRTO_OP_MEMCPY_DTOH, args, 4, (char *)dst + off, n);
      } else {
        struct rrto_reply rep = {.out = (char *)dst + off, .out_cap = n};
        err = rrto_call(RRTO_OP_MEMCPY_DTOH, args, 4, NULL, 0, &rep);
        if (!err && rep.out_len != n) err = cudaErrorUnknown;
      }
    }
    if (err) return err;
    off += n;
  } while (off < count);
  return 0;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind) {
  RRTO_ENTER(cudaMemcpy, dst, src, count, kind);
  return rrto_ret(copy(dst, src, count, kind, 0, 0));
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count,
                            enum cudaMemcpyKind kind, cudaStream_t stream) {
  RRTO_ENTER(cudaMemcpyAsync, dst, src, count, kind, stream);
  return rrto_ret(copy(dst, src, count, kind, stream, 1));
}

cudaError_t cudaMemset(void *devPtr, int value, size_t count) {
  RRTO_ENTER(cudaMemset, devPtr, value, count);
  return rrto_ret(rrto_post(RRTO_OP_MEMSET, RRTO_ARGS(PTR(devPtr), (uint64_t)(value & 0xff),
                                                      count, 0, 0), NULL, 0));
}

cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream) {
  RRTO_ENTER(cudaMemsetAsync, devPtr, value, count, stream);
  return rrto_ret(rrto_post(RRTO_OP_MEMSET, RRTO_ARGS(PTR(devPtr), (uint64_t)(value & 0xff),
                                                      count, PTR(stream), 1), NULL, 0));
}

static int symbol_range(const void *symbol, size_t count, size_t offset, uint64_t *addr) {
  size_t size;
  int err = rrto_var_address(symbol, addr, &size);
  if (!err && offset + count > size) err = cudaErrorInvalidValue;
  *addr += offset;
  return err;
}

cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t count,
                               size_t offset, enum cudaMemcpyKind kind) {
  RRTO_ENTER(cudaMemcpyToSymbol, symbol, src, count, offset, kind);
  uint64_t addr;
  int err = symbol_range(symbol, count, offset, &addr);
  if (!err)
    err = copy((void *)(uintptr_t)addr, src, count,
               kind == cudaMemcpyDefault ? cudaMemcpyHostToDevice : kind, 0, 0);
  return rrto_ret(err);
}

cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t count, size_t offset,
                                 enum cudaMemcpyKind kind) {
  RRTO_ENTER(cudaMemcpyFromSymbol, dst, symbol, count, offset, kind);
  uint64_t addr;
  int err = symbol_range(symbol, count, offset, &addr);
  if (!err)
    err = copy(dst, (void *)(uintptr_t)addr, count,
               kind == cudaMemcpyDefault ? cudaMemcpyDeviceToHost : kind, 0, 0);
  return rrto_ret(err);
}

cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t count,
                                    size_t offset, enum cudaMemcpyKind kind,
                                    cudaStream_t stream) {
  RRTO_ENTER(cudaMemcpyToSymbolAsync, symbol, src, count, offset, kind, stream);
  uint64_t addr;
  int err = symbol_range(symbol, count, offset, &addr);
  if (!err)
    err = copy((void *)(uintptr_t)addr, src, count,
               kind == cudaMemcpyDefault ? cudaMemcpyHostToDevice : kind, stream, 1);
  return rrto_ret(err);
}

cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const void *symbol, size_t count,
                                      size_t offset, enum cudaMemcpyKind kind,
                                      cudaStream_t stream) {
  RRTO_ENTER(cudaMemcpyFromSymbolAsync, dst, symbol, count, offset, kind, stream);
  uint64_t addr;
  int err = symbol_range(symbol, count, offset, &addr);
  if (!err)
    err = copy(dst, (void *)(uintptr_t)addr, count,
               kind == cudaMemcpyDefault ? cudaMemcpyDeviceToHost : kind, stream, 1);
  return rrto_ret(err);
}

cudaError_t cudaGetSymbolAddress(void **devPtr, const void *symbol) {
  RRTO_ENTER(cudaGetSymbolAddress, devPtr, symbol);
  uint64_t addr;
  size_t size;
  int err = rrto_var_address(symbol, &addr, &size);
  if (!err) *devPtr = (void *)(uintptr_t)addr;
  return rrto_ret(err);
}

cudaError_t cudaGetSymbolSize(size_t *size, const void *symbol) {
  RRTO_ENTER(cudaGetSymbolSize, size, symbol);
  uint64_t addr;
  return rrto_ret(rrto_var_address(symbol, &addr, size));
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes,
                                     const void *ptr) {
  RRTO_ENTER(cudaPointerGetAttributes, attributes, ptr);
  memset(attributes, 0, sizeof *attributes);
  if (rrto_mem_is_device(ptr)) {
    attributes->type = cudaMemoryTypeDevice;
    attributes->device = 0;
    attributes->devicePointer = (void *)ptr;
  } else {
    attributes->type = cudaMemoryTypeUnregistered;
    attributes->device = -2;
    attributes->hostPointer = (void *)ptr;
  }
  return cudaSuccess;
}

/* ---------------------------------------------------------------- streams and events */

static cudaError_t create(uint16_t op, uint64_t a, uint64_t b, void **out) {
  struct rrto_reply rep = {0};
  int err = rrto_call(op, RRTO_ARGS(a, b), NULL, 0, &rep);
  if (!err) *out = (void *)(uintptr_t)rep.res[0];
  return rrto_ret(err);
}

static cudaError_t on_handle(uint16_t op, const void *h) {
  return rrto_ret(rrto_call(op, RRTO_ARGS(PTR(h)), NULL, 0, NULL));
}

cudaError_t cudaStreamCreate(cudaStream_t *pStream) {
  RRTO_ENTER(cudaStreamCreate, pStream);
  return create(RRTO_OP_STREAM_CREATE, 0, 0, (void **)pStream);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags) {
  RRTO_ENTER(cudaStreamCreateWithFlags, pStream, flags);
  return create(RRTO_OP_STREAM_CREATE, flags, 0, (void **)pStream);
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *pStream, unsigned int flags,
                                         int priority) {
  RRTO_ENTER(cudaStreamCreateWithPriority, pStream, flags, priority);
  return create(RRTO_OP_STREAM_CREATE, flags, (uint64_t)(int64_t)priority, (void **)pStream);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  RRTO_ENTER(cudaStreamDestroy, stream);
  return on_handle(RRTO_OP_STREAM_DESTROY, stream);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  RRTO_ENTER(cudaStreamSynchronize, stream);
  return on_handle(RRTO_OP_STREAM_SYNC, stream);
}

/* A query while a copy to the host is still arriving: not ready, answered here (the data
 * that have arrived are taken in), so that "ready" always means the data are there. */
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  RRTO_ENTER(cudaStreamQuery, stream);
  if (rrto_deferred_pending()) return cudaErrorNotReady;
  return on_handle(RRTO_OP_STREAM_QUERY, stream);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  RRTO_ENTER(cudaStreamWaitEvent, stream, event, flags);
  return rrto_ret(rrto_post(RRTO_OP_STREAM_WAIT_EVENT, RRTO_ARGS(PTR(stream), PTR(event),
                                                                 flags), NULL, 0));
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream,
                                  enum cudaStreamCaptureStatus *pCaptureStatus) {
  RRTO_ENTER(cudaStreamIsCapturing, stream, pCaptureStatus);
  *pCaptureStatus = cudaStreamCaptureStatusNone;  /* stream capture is not forwarded */
  return cudaSuccess;
}

/* Stream capture is not forwarded (cudaStreamBeginCapture fails by name), so no stream of
 * this process is ever capturing; the capture mode is the thread's own setting. */
#if CUDART_VERSION >= 13000
cudaError_t cudaStreamGetCaptureInfo(cudaStream_t stream,
                                     enum cudaStreamCaptureStatus *captureStatus_out,
                                     unsigned long long *id_out, cudaGraph_t *graph_out,
                                     const cudaGraphNode_t **dependencies_out,
                                     const cudaGraphEdgeData **edgeData_out,
                                     size_t *numDependencies_out) {
  RRTO_ENTER(cudaStreamGetCaptureInfo, stream, captureStatus_out, id_out, graph_out,
             dependencies_out, edgeData_out, numDependencies_out);
  if (!captureStatus_out) return rrto_ret(cudaErrorInvalidValue);
  *captureStatus_out = cudaStreamCaptureStatusNone;
  return cudaSuccess;   /* the other outputs are defined only while capturing */
}
#else   /* CUDA 12: the name is a macro for cudaStreamGetCaptureInfo_v2 */
cudaError_t cudaStreamGetCaptureInfo(cudaStream_t stream,
                                     enum cudaStreamCaptureStatus *captureStatus_out,
                                     unsigned long long *id_out, cudaGraph_t *graph_out,
                                     const cudaGraphNode_t **dependencies_out,
                                     size_t *numDependencies_out) {
  RRTO_ENTER(cudaStreamGetCaptureInfo, stream, captureStatus_out, id_out, graph_out,
             dependencies_out, numDependencies_out);
  if (!captureStatus_out) return rrto_ret(cudaErrorInvalidValue);
  *captureStatus_out = cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
#endif

static __thread enum cudaStreamCaptureMode t_capture_mode = cudaStreamCaptureModeGlobal;

cudaError_t cudaThreadExchangeStreamCaptureMode(enum cudaStreamCaptureMode *mode) {
  RRTO_ENTER(cudaThreadExchangeStreamCaptureMode, mode);
  if (!mode || (unsigned)*mode > cudaStreamCaptureModeRelaxed)
    return rrto_ret(cudaErrorInvalidValue);
  enum cudaStreamCaptureMode old = t_capture_mode;
  t_capture_mode = *mode;
  *mode = old;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) {
  RRTO_ENTER(cudaEventCreate, event);
  return create(RRTO_OP_EVENT_CREATE, 0, 0, (void **)event);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
  RRTO_ENTER(cudaEventCreateWithFlags, event, flags);
  return create(RRTO_OP_EVENT_CREATE, flags, 0, (void **)event);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  RRTO_ENTER(cudaEventDestroy, event);
  return on_handle(RRTO_OP_EVENT_DESTROY, event);
}

static cudaError_t record(cudaEvent_t event, cudaStream_t stream) {
  return rrto_ret(rrto_post(RRTO_OP_EVENT_RECORD, RRTO_ARGS(PTR(event), PTR(stream)), NULL,
                            0));
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  RRTO_ENTER(cudaEventRecord, event, stream);
  return record(event, stream);
}

cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream,
                                     unsigned int flags) {
  RRTO_ENTER(cudaEventRecordWithFlags, event, stream, flags);
  if (flags & ~(unsigned)cudaEventRecordExternal) return rrto_ret(cudaErrorInvalidValue);
  return record(event, stream);   /* cudaEventRecordExternal matters only in a capture */
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  RRTO_ENTER(cudaEventSynchronize, event);
  return on_handle(RRTO_OP_EVENT_SYNC, event);
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  RRTO_ENTER(cudaEventQuery, event);
  if (rrto_deferred_pending()) return cudaErrorNotReady;   /* see cudaStreamQuery */
  return on_handle(RRTO_OP_EVENT_QUERY, event);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  RRTO_ENTER(cudaEventElapsedTime, ms, start, end);
  struct rrto_reply rep = {0};
  int err = rrto_call(RRTO_OP_EVENT_ELAPSED, RRTO_ARGS(PTR(start), PTR(end)), NULL, 0, &rep);
  if (!err) {
    uint32_t bits = (uint32_t)rep.res[0];
    memcpy(ms, &bits, sizeof *ms);
  }
  return rrto_ret(err);
}

/* ---------------------------------------------------------------- launches */

static __thread char t_params[MAX_PARAM_BYTES];

static cudaError_t launch(struct rrto_function *fn, const void *what, dim3 g, dim3 b,
                          void **args, size_t shmem, cudaStream_t stream) {
  if (!fn) {
    rrto_log("launch of %p, which no fatbin of this program registered as a kernel", what);
    return rrto_ret(cudaErrorInvalidDeviceFunction);
  }
  int err = rrto_function_resolve(fn);
  if (err) return rrto_ret(err);
  long n = rrto_function_pack(fn, args, t_params, sizeof t_params);
  if (n < 0) return rrto_ret(cudaErrorInvalidValue);
  return rrto_ret(rrto_post(RRTO_OP_LAUNCH,
                            RRTO_ARGS(rrto_function_handle(fn), g.x, g.y, g.z, b.x, b.y, b.z,
                                      shmem, PTR(stream)),
                            t_params, (size_t)n));
}

cudaError_t cudaLaunchKernel(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                             size_t sharedMem, cudaStream_t stream) {
  RRTO_ENTER(cudaLaunchKernel, func, gridDim, blockDim, args, sharedMem, stream);
  return launch(rrto_function_by_host(func), func, gridDim, blockDim, args, sharedMem, stream);
}

cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t *config, const void *func,
                                void **args) {
  RRTO_ENTER(cudaLaunchKernelExC, config, func, args);
  if (config->numAttrs) {
    rrto_log("cudaLaunchKernelExC with launch attributes (first id %d) is not supported",
             (int)config->attrs[0].id);
    return rrto_ret(cudaErrorNotSupported);
  }
  return launch(rrto_function_by_host(func), func, config->gridDim, config->blockDim, args,
                config->dynamicSmemBytes, config->stream);
}

/* <<<>>> pushes the launch configuration, the generated stub pops it (per thread). */
struct call_config {
  dim3 grid, block;
  size_t shmem;
  void *stream;
};
static __thread struct call_config t_configs[16];
static __thread int t_nconfigs;

unsigned __cudaPushCallConfiguration(dim3 gridDim, dim3 blockDim, size_t sharedMem,
                                     struct CUstream_st *stream) {
  RRTO_ENTER(__cudaPushCallConfiguration, gridDim, blockDim, sharedMem, stream);
  if (t_nconfigs == 16) return cudaErrorInvalidConfiguration;
  t_configs[t_nconfigs++] = (struct call_config){gridDim, blockDim, sharedMem, stream};
  return 0;
}

cudaError_t __cudaPopCallConfiguration(dim3 *gridDim, dim3 *blockDim, size_t *sharedMem,
                                       void *stream) {
  RRTO_ENTER(__cudaPopCallConfiguration, gridDim, blockDim, sharedMem, stream);
  if (!t_nconfigs) return rrto_ret(cudaErrorMissingConfiguration);
  struct call_config c = t_configs[--t_nconfigs];
  *gridDim = c.grid;
  *blockDim = c.block;
  *sharedMem = c.shmem;
  *(void **)stream = c.stream;
  return cudaSuccess;
}

cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *hostFun) {
  RRTO_ENTER(__cudaGetKernel, kernel, hostFun);
  struct rrto_function *fn = rrto_function_by_host(hostFun);
  *kernel = (cudaKernel_t)fn;
  return fn ? cudaSuccess : rrto_ret(cudaErrorInvalidDeviceFunction);
}

cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim, void **args,
                               size_t sharedMem, cudaStream_t stream) {
  RRTO_ENTER(__cudaLaunchKernel, kernel, gridDim, blockDim, args, sharedMem, stream);
  return launch((struct rrto_function *)kernel, kernel, gridDim, blockDim, args, sharedMem,
                stream);
}

cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim,
                                    void **args, size_t sharedMem, cudaStream_t stream) {
  RRTO_ENTER(__cudaLaunchKernel_ptsz, kernel, gridDim, blockDim, args, sharedMem, stream);
  return launch((struct rrto_function *)kernel, kernel, gridDim, blockDim, args, sharedMem,
                stream ? stream : cudaStreamPerThread);
}
