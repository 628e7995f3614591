/* CUDA's last-error semantics, answered locally: every runtime call that fails sets the
 * calling thread's last error; cudaGetLastError returns and clears it, except for sticky
 * errors (a corrupted context), which every later call keeps returning. */
#include "rrto.h"

static __thread int t_last_error;
static int g_sticky;

static int is_sticky(int err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
      return 1;
    default:
      return 0;
  }
}

cudaError_t rrto_ret(int err) {
  if (err && err != cudaErrorNotReady) {
    t_last_error = err;
    if (is_sticky(err)) __atomic_store_n(&g_sticky, err, __ATOMIC_RELAXED);
  }
  return (cudaError_t)err;
}

cudaError_t cudaGetLastError(void) {
  RRTO_ENTER(cudaGetLastError);
  int sticky = __atomic_load_n(&g_sticky, __ATOMIC_RELAXED);
  if (sticky) return (cudaError_t)sticky;
  int e = t_last_error;
  t_last_error = 0;
  return (cudaError_t)e;
}

cudaError_t cudaPeekAtLastError(void) {
  RRTO_ENTER(cudaPeekAtLastError);
  int sticky = __atomic_load_n(&g_sticky, __ATOMIC_RELAXED);
  return (cudaError_t)(sticky ? sticky : t_last_error);
}

static const char *real_string(const char *fn, int err) {
  const char *(*real)(cudaError_t) = (const char *(*)(cudaError_t))rrto_real(fn);
  return real ? real((cudaError_t)err) : NULL;
}

const char *cudaGetErrorString(cudaError_t error) {
  RRTO_ENTER(cudaGetErrorString, error);
  const char *s = real_string("cudaGetErrorString", error);
  return s ? s : "unknown CUDA error (rrto: the local CUDA runtime has no string table)";
}

/* The names of the errors the interposer returns itself (its log lines name them without
 * a local CUDA runtime); NULL for any other code. */
const char *rrto_error_name(int err) {
#define RRTO_NAME(e) \
  case e:            \
    return #e;
  switch (err) {
    RRTO_NAME(cudaSuccess)
    RRTO_NAME(cudaErrorInvalidValue)
    RRTO_NAME(cudaErrorMemoryAllocation)
    RRTO_NAME(cudaErrorInvalidConfiguration)
    RRTO_NAME(cudaErrorInvalidMemcpyDirection)
    RRTO_NAME(cudaErrorMissingConfiguration)
    RRTO_NAME(cudaErrorDevicesUnavailable)
    RRTO_NAME(cudaErrorNoDevice)
    RRTO_NAME(cudaErrorInvalidDevice)
    RRTO_NAME(cudaErrorInvalidKernelImage)
    RRTO_NAME(cudaErrorInvalidSymbol)
    RRTO_NAME(cudaErrorInvalidDeviceFunction)
    RRTO_NAME(cudaErrorInvalidResourceHandle)
    RRTO_NAME(cudaErrorNotReady)
    RRTO_NAME(cudaErrorIllegalAddress)
    RRTO_NAME(cudaErrorLaunchFailure)
    RRTO_NAME(cudaErrorNotSupported)
    RRTO_NAME(cudaErrorUnknown)
    default:
      return NULL;
  }
#undef RRTO_NAME
}

const char *cudaGetErrorName(cudaError_t error) {
  RRTO_ENTER(cudaGetErrorName, error);
  const char *s = real_string("cudaGetErrorName", error);
  if (!s) s = rrto_error_name(error);
  return s ? s : "cudaErrorUnknown";
}
