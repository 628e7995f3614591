/* The generic forwarding of the functions vendor_api/forwarded.txt describes (forward.c),
 * and what the generated rrto_forward_table.c needs. No CUDA header here: the generated
 * definitions use the vendor headers' ABI types, which a CUDA header would contradict. */
#ifndef RRTO_FORWARD_H
#define RRTO_FORWARD_H
#include <stdint.h>
#include <string.h>

#include "rrto_api_ids.h"

enum {
  RRTO_R_VALUE, RRTO_R_USE, RRTO_R_CREATE, RRTO_R_DESTROY, RRTO_R_SET, RRTO_R_KEY,
  RRTO_R_STREAM, RRTO_R_DEVICE, RRTO_R_KERNEL, RRTO_R_IN, RRTO_R_OUT, RRTO_R_ELEMS
};
enum {
  RRTO_FWD_BLOCKS = 1,   /* writes host memory: the app waits for the answer */
  RRTO_FWD_MEMO = 2,     /* a repeat with equal arguments and handle states is answered here */
  RRTO_FWD_STREAM = 4,   /* stream work */
  RRTO_FWD_FORGET = 8,   /* changes what memo answers depend on */
  RRTO_FWD_CUDART = 16,  /* returns cudaError_t (and sets the runtime's last error) */
  RRTO_FWD_PREDICT = 32  /* the app acts on its status: a repeat that succeeded before is
                          * not waited for */
};

struct rrto_fwd_param {
  uint8_t role;
  uint8_t is_float;      /* elements: 1 when the library writes them (elems_out) */
  int8_t size_param;     /* in/out size: this parameter's value times size_scale ... */
  uint8_t size_dtype;    /* ... or the size of the data type that handle keeps (1: a
                          * cudaDataType, 2: a cuDNN scaling factor for a cudnnDataType_t) */
  uint32_t size_const;   /* ... or this many bytes (size_param < 0) */
  uint32_t size_scale;
  int8_t prop;           /* create, set: the parameter whose value the handle keeps;
                          * elements: the parameter that gives their type */
};

struct rrto_fwd_fn {
  const char *name;
  int id;
  uint8_t nparams;
  uint8_t flags;
  uint32_t bad_handle, invalid_value, failed;   /* the library's statuses for these */
  const struct rrto_fwd_param *params;
};

#pragma GCC visibility push(hidden)
uint32_t rrto_forward(const struct rrto_fwd_fn *fn, const uint64_t *words);
void rrto_count(int id);
int rrto_tracing(void);
void *rrto_real(const char *name);
void *rrto_real_in(const char *name, const char *const *sonames);
#pragma GCC visibility pop

static inline uint64_t rrto_fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline uint64_t rrto_dbits(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u;
}
#endif
