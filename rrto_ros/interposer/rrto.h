/* Internal interfaces of librrto_cuda.so. */
#ifndef RRTO_H
#define RRTO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <cuda_runtime_api.h>
#include "rrto_wire.h"

/* Internal symbols stay out of the app's namespace. */
#pragma GCC visibility push(hidden)

/* --- transport.c: one connection per process to the client node --- */
struct rrto_reply {
  int err;                 /* cudaError_t */
  uint32_t nres;
  uint64_t res[RRTO_MAX_ARGS];
  void *out;               /* caller's buffer for the reply data */
  size_t out_cap;
  size_t out_len;          /* bytes the reply carried */
};
/* Blocking call: send, wait, fill *rep. Returns rep->err. */
int rrto_call(uint16_t op, const uint64_t *args, uint32_t nargs,
              const void *data, size_t len, struct rrto_reply *rep);
/* A call whose result the app does not need: sent without waiting in `pipelined` mode,
 * a blocking rrto_call otherwise. */
int rrto_post(uint16_t op, const uint64_t *args, uint32_t nargs, const void *data, size_t len);
/* The same; when the call was waited for (not `pipelined`), its reply is in *rep. */
int rrto_post_reply(uint16_t op, const uint64_t *args, uint32_t nargs, const void *data,
                    size_t len, struct rrto_reply *rep);
/* A call whose reply data the app reads later (cudaMemcpyAsync to the host): in `pipelined`
 * and `replay` sent at once, its reply read into dst (cap bytes expected) when the app next
 * waits; a blocking call in `rpc` and when replay answers it. Returns cudaError_t of the
 * send; the copy's own error comes with the next call that waits, or rrto_settle(). */
int rrto_call_deferred(uint16_t op, const uint64_t *args, uint32_t nargs, void *dst,
                       size_t cap);
/* 1 while deferred replies are outstanding; reads what has arrived, never waits. */
int rrto_deferred_pending(void);
/* Waits for every deferred reply; returns the first error among them (cleared), else 0. */
int rrto_settle(void);
int rrto_mode(void);   /* the session's enum rrto_mode; connects if needed */
/* Number of successful connections so far; registry entries resolved under an older
 * generation belong to a dead session (e.g. before fork) and are resolved again. */
unsigned rrto_generation(void);
int rrto_device_count(void);  /* from the hello reply; connects if needed */
/* The live session's device count without connecting or locking; 0 while there is no
 * session (before the first CUDA call, after a fork, once the session is lost). */
int rrto_session_devices(void);

/* Sends one request with the lock held (no replay matching); rep may be NULL. */
int rrto_xfer_locked(uint16_t op, uint16_t flags, const uint64_t *args, uint32_t nargs,
                     const void *data, size_t len, struct rrto_reply *rep);
/* The two halves of rrto_xfer_locked, for a reply read later (lock held throughout). */
int rrto_send_locked(uint16_t op, uint16_t flags, const uint64_t *args, uint32_t nargs,
                     const void *data, size_t len);
int rrto_recv_locked(struct rrto_reply *rep);
/* Whole reads and writes on a blocking socket (EINTR retried); -1 on failure or EOF. */
int rrto_read_all(int fd, void *buf, size_t len);
int rrto_discard(int fd, size_t len);
int rrto_write_all(int fd, struct iovec *iov, int niov);

/* --- lane.c: the replay lane, this process's own connection to the server (lock held) --- */
#define RRTO_LANE_DESC_MAX 1024   /* the hello reply's lane description (transport.c) */
void rrto_lane_describe(const char *desc, size_t len);   /* from the client node's hello */
void rrto_lane_reset(void);     /* forget the lane (fork, lost client node) */
int rrto_lane_ready(void);      /* connects on first use; 0: replay through the client node */
int rrto_lane_lost(void);       /* the lane broke: the session is lost */
/* Runs table entries args = {sequence id, from, to} on the server, with the input payload;
 * waits for the answer into rep if wait. Returns cudaError_t. */
int rrto_lane_run(const uint64_t *args, const void *data, size_t len, int wait,
                  struct rrto_reply *rep);
/* Waits until the server has run every range sent so far. Returns the first error of a
 * quiet range not yet reported (its message into msg), else 0. */
int rrto_lane_settle(char *msg, size_t cap);

/* --- replay.c: matching calls against the recorded inference sequence (lock held) --- */
int rrto_replay_active(void);
void rrto_replay_install(void *blob, size_t len);   /* takes ownership of blob */
void rrto_replay_drop(void);
/* 1 if the call was answered by replay (its result in *err and rep), 0 to forward it. */
int rrto_replay_handle(uint16_t op, const uint64_t *args, uint32_t nargs, const void *data,
                       size_t len, struct rrto_reply *rep, int *err);

/* --- registry.c: fatbins, kernels and variables the app registered --- */
struct rrto_function;
struct rrto_function *rrto_function_by_host(const void *host_fun);
/* Resolve on the server (ships the module on first use); returns cudaError_t. */
int rrto_function_resolve(struct rrto_function *fn);
/* Pack a launch's void** args into one flat parameter buffer; returns size or -1. */
/* What a kernel parameter word pointing into the app's heap is sent as (registry.c). */
#define RRTO_HOST_WORD 0xffff800000000000ull
long rrto_function_pack(struct rrto_function *fn, void **args, void *buf, size_t cap);
uint64_t rrto_function_handle(const struct rrto_function *fn);
/* Device address of a registered __device__/__constant__ variable. */
int rrto_var_address(const void *host_var, uint64_t *addr, size_t *size);

/* --- memtrack.c: device allocations, to classify pointers for cudaMemcpyDefault --- */
void rrto_mem_add(uint64_t base, size_t size);
void rrto_mem_remove(uint64_t base);
int rrto_mem_is_device(const void *p);
int rrto_mem_contains(const void *p, size_t len);   /* [p, p+len) lies in one allocation */
void rrto_mem_reset(void);

/* --- trace.c: pass-through mode, call counts, unsupported-call reports --- */
int rrto_tracing(void);
void *rrto_real(const char *name);
void *rrto_real_in(const char *name, const char *const *sonames);  /* NULL-terminated list */
void rrto_count(int id);
void rrto_unsupported(int id);
/* A library or driver function with no forwarding yet: says so once, naming what it returns
 * and the object that called it (a return address). */
void rrto_not_forwarded(int id, const char *returns, const void *caller);
void rrto_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- errors.c: CUDA's last-error semantics, answered locally --- */
cudaError_t rrto_ret(int err);
const char *rrto_error_name(int err); /* e.g. "cudaErrorDevicesUnavailable"; NULL: unknown */

#pragma GCC visibility pop

#include "rrto_api_ids.h"   /* generated: enum of every runtime, driver and library function */

/* Count the call; in trace mode forward it to the real runtime and return its result.
 * The name is macro-expanded first, so a function the header renames (CUDA 12:
 * cudaGetDeviceProperties -> cudaGetDeviceProperties_v2) counts and forwards as the symbol
 * its definition really defines. */
#define RRTO_ENTER(name, ...) RRTO_ENTER_(name, __VA_ARGS__)
#define RRTO_ENTER_(name, ...)                                                  \
  do {                                                                        \
    rrto_count(RRTO_ID_##name);                                               \
    if (rrto_tracing()) {                                                     \
      static __typeof__(&name) real_;                                         \
      if (!real_) real_ = (__typeof__(&name))rrto_real(#name);                \
      return real_(__VA_ARGS__);                                              \
    }                                                                         \
  } while (0)

#define RRTO_ARGS(...) ((uint64_t[]){__VA_ARGS__}), \
  (uint32_t)(sizeof((uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t))

#endif
