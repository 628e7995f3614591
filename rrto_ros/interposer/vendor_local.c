/* The few cuBLAS / cuDNN functions that return no status, answered here: versions from the
 * server's library (through the forwarded, memoised cudnnGetProperty) and host-side
 * strings. gen_api_table.py leaves the names defined here out of the generated stubs. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rrto.h"
#include "rrto_forward.h"

uint32_t cudnnGetProperty(uint32_t type, void *value);   /* forwarded (generated) */

/* cuDNN 9: version = major * 10000 + minor * 100 + patch (libraryPropertyType 0, 1, 2). */
size_t cudnnGetVersion(void) {
  rrto_count(RRTO_ID_cudnnGetVersion);
  if (rrto_tracing()) {
    static const char *const libs[] = {"libcudnn.so.9", "libcudnn.so", 0};
    size_t (*real)(void) = (size_t (*)(void))rrto_real_in("cudnnGetVersion", libs);
    return real ? real() : 0;
  }
  int v[3] = {0, 0, 0};
  for (uint32_t i = 0; i < 3; i++)
    if (cudnnGetProperty(i, &v[i])) return 0;   /* no server: "no cuDNN", as 0 says */
  return (size_t)v[0] * 10000 + (size_t)v[1] * 100 + (size_t)v[2];
}

/* The runtime the app links: what cuDNN reports for its own build is the server's. */
size_t cudnnGetCudartVersion(void) {
  rrto_count(RRTO_ID_cudnnGetCudartVersion);
  return CUDART_VERSION;
}

const char *cudnnGetErrorString(uint32_t status) {
  rrto_count(RRTO_ID_cudnnGetErrorString);
  static const struct { uint32_t code; const char *name; } names[] = {
      {0, "CUDNN_STATUS_SUCCESS"}, {1000, "CUDNN_STATUS_NOT_INITIALIZED"},
      {1001, "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH"},
      {1002, "CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH"},
      {1003, "CUDNN_STATUS_DEPRECATED"}, {1004, "CUDNN_STATUS_LICENSE_ERROR"},
      {1005, "CUDNN_STATUS_RUNTIME_IN_PROGRESS"}, {1006, "CUDNN_STATUS_RUNTIME_FP_OVERFLOW"},
      {2000, "CUDNN_STATUS_BAD_PARAM"}, {3000, "CUDNN_STATUS_NOT_SUPPORTED"},
      {4000, "CUDNN_STATUS_INTERNAL_ERROR"}, {5000, "CUDNN_STATUS_EXECUTION_FAILED"}};
  static const char *const families[] = {
      "CUDNN_STATUS_SUCCESS", "CUDNN_STATUS_NOT_INITIALIZED", "CUDNN_STATUS_BAD_PARAM",
      "CUDNN_STATUS_NOT_SUPPORTED", "CUDNN_STATUS_INTERNAL_ERROR",
      "CUDNN_STATUS_EXECUTION_FAILED"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (names[i].code == status) return names[i].name;
  return status / 1000 < 6 ? families[status / 1000] : "CUDNN_STATUS_UNKNOWN";
}

/* The server keeps cuDNN's messages (its log names each failed call); none here. */
void cudnnGetLastErrorString(char *message, size_t max_size) {
  rrto_count(RRTO_ID_cudnnGetLastErrorString);
  if (message && max_size) message[0] = 0;
}
