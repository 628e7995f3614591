/* The generic call for every function vendor_api/forwarded.txt describes: its words and
 * host buffers packed as protocol/forwarding.py documents, sent as one LIBCALL.
 *
 * Handles and descriptors are the interposer's: a create returns at once with an id it
 * assigns (the server maps ids to its own objects), so create / set / destroy never wait.
 * Ids are reused last-freed-first, so an inference that makes and destroys the same
 * descriptors sends the same calls every time (record/replay sees a repeating sequence).
 * A call that writes host memory waits for the server, unless it is `memo` and its
 * arguments and handle states were asked before in this session: then it is answered here. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rrto.h"
#include "rrto_forward.h"

#define HANDLE_MAGIC 0x7272746f68646c31ULL   /* "rrtohdl1" */
#define MAX_SLOTS 24
#define MEMO_CAP 4096            /* entries; the table is cleared when half full */
#define MAX_BUF (1u << 20)       /* one in/out buffer (protocol/forwarding.py MAX_BUFFER) */
#define NULL_LEN 0xFFFFFFFFu

struct slot {
  uint64_t key, value;
};

/* What the app holds as a handle or descriptor. */
struct rrto_handle {
  uint64_t magic;
  uint64_t id;
  uint64_t prop;      /* create(P): P's value, e.g. a descriptor's scale type */
  uint64_t base;      /* digest of the create call */
  uint32_t nslots;    /* > MAX_SLOTS: too many to track, its state never repeats */
  struct slot slots[MAX_SLOTS];
};

struct memo {
  uint64_t key;
  uint32_t status;
  uint32_t len;
  unsigned char *bytes;
};

static pthread_mutex_t g_fwd_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_next_id = 1;
static uint64_t *g_free_ids;
static size_t g_nfree, g_free_cap;
static struct memo g_memo[MEMO_CAP];
static size_t g_nmemo;
static unsigned g_memo_gen;

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

static uint64_t mix_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t w;
  for (; n >= 8; n -= 8, b += 8) {
    memcpy(&w, b, 8);
    h = mix(h, w);
  }
  w = 0;
  memcpy(&w, b, n);
  return mix(h, w ^ ((uint64_t)n << 56));
}

static uint64_t state_of(const struct rrto_handle *h) {
  if (h->nslots > MAX_SLOTS) return mix(h->base, h->id ^ (uint64_t)(uintptr_t)h);
  uint64_t s = h->base;
  for (uint32_t i = 0; i < h->nslots; i++) s ^= mix(h->slots[i].key, h->slots[i].value);
  return s;
}

static struct rrto_handle *handle_of(uint64_t word) {
  struct rrto_handle *h = (struct rrto_handle *)(uintptr_t)word;
  return h && h->magic == HANDLE_MAGIC ? h : NULL;
}

static uint64_t take_id(void) {
  pthread_mutex_lock(&g_fwd_lock);
  uint64_t id = g_nfree ? g_free_ids[--g_nfree] : g_next_id++;
  pthread_mutex_unlock(&g_fwd_lock);
  return id;
}

static void give_id(uint64_t id) {
  pthread_mutex_lock(&g_fwd_lock);
  if (g_nfree == g_free_cap) {
    size_t cap = g_free_cap ? 2 * g_free_cap : 256;
    uint64_t *t = realloc(g_free_ids, cap * sizeof *t);
    if (!t) {
      pthread_mutex_unlock(&g_fwd_lock);
      return;   /* the id is not reused: harmless */
    }
    g_free_ids = t;
    g_free_cap = cap;
  }
  g_free_ids[g_nfree++] = id;
  pthread_mutex_unlock(&g_fwd_lock);
}

static size_t dtype_size(uint64_t t) {
  static const unsigned char sizes[] = {4, 8, 2, 1, 8, 16, 4, 2, 1, 2, 4, 8, 4, 8, 2,
                                        4, 2, 4, 1, 2, 8, 16, 8, 16, 8, 16, 8, 16, 1, 1};
  return t < sizeof sizes ? sizes[t] : 0;
}

static size_t buf_size(const struct rrto_fwd_param *p, const uint64_t *w) {
  if (p->size_param < 0) return p->size_const;
  uint64_t v = w[p->size_param];
  if (p->size_dtype) {   /* 1: the cudaDataType's size; 2: a cuDNN scaling factor's */
    struct rrto_handle *h = handle_of(v);
    if (!h) return 0;
    return p->size_dtype == 1 ? dtype_size(h->prop) : (h->prop == 1 ? 8 : 4);
  }
  if ((int64_t)v < 0) return MAX_BUF + 1;   /* a negative count: refused below */
  return (size_t)v * p->size_scale;
}

/* ---------------------------------------------------------------- memo */

static void memo_clear(void) {
  for (size_t i = 0; i < MEMO_CAP; i++) {
    free(g_memo[i].bytes);
    g_memo[i] = (struct memo){0};
  }
  g_nmemo = 0;
}

static void memo_check_gen(void) {   /* lock held: a new session knows nothing yet */
  if (g_memo_gen != rrto_generation()) {
    memo_clear();
    g_memo_gen = rrto_generation();
  }
}

static int memo_get(uint64_t key, void *out, size_t len, uint32_t *status) {
  int hit = 0;
  pthread_mutex_lock(&g_fwd_lock);
  memo_check_gen();
  for (size_t j = key & (MEMO_CAP - 1); g_memo[j].key; j = (j + 1) & (MEMO_CAP - 1))
    if (g_memo[j].key == key) {
      hit = g_memo[j].len == len;
      if (hit) {
        if (len) memcpy(out, g_memo[j].bytes, len);
        *status = g_memo[j].status;
      }
      break;
    }
  pthread_mutex_unlock(&g_fwd_lock);
  return hit;
}

static void memo_put(uint64_t key, const void *out, size_t len, uint32_t status) {
  unsigned char *copy = malloc(len ? len : 1);
  if (!copy) return;
  if (len) memcpy(copy, out, len);
  pthread_mutex_lock(&g_fwd_lock);
  memo_check_gen();
  if (2 * (g_nmemo + 1) > MEMO_CAP) memo_clear();
  size_t j = key & (MEMO_CAP - 1);
  while (g_memo[j].key && g_memo[j].key != key) j = (j + 1) & (MEMO_CAP - 1);
  if (g_memo[j].key) free(g_memo[j].bytes);
  else g_nmemo++;
  g_memo[j] = (struct memo){key ? key : 1, status, (uint32_t)len, copy};
  pthread_mutex_unlock(&g_fwd_lock);
}

static void memo_forget(void) {
  pthread_mutex_lock(&g_fwd_lock);
  memo_clear();
  pthread_mutex_unlock(&g_fwd_lock);
}

/* ---------------------------------------------------------------- the call */

static uint32_t fail(const struct rrto_fwd_fn *fn, int cuda_err, uint32_t status) {
  return fn->flags & RRTO_FWD_CUDART ? (uint32_t)rrto_ret(cuda_err) : status;
}

/* cuDNN backend attribute elements (cudnnBackendAttributeType_t): bytes per element, and
 * whether an element is a handle or descriptor of ours (sent as its id). */
static size_t elem_size(uint64_t type, int *is_handle) {
  static const unsigned char sizes[] = {8, 4, 1, 8, 4, 8, 8, 4, 4, 4, 4, 4, 4, 4, 4, 8, 4,
                                        4, 4, 4, 4, 4, 4, 4, 1, 4, 16, 4, 4, 4, 4, 4, 4};
  *is_handle = type == 0 || type == 15;   /* CUDNN_TYPE_HANDLE, CUDNN_TYPE_BACKEND_DESCRIPTOR */
  return type < sizeof sizes ? sizes[type] : 0;
}

struct pending {           /* per parameter: what goes on the wire besides its word */
  const void *in;          /* in bytes (NULL with in_len NULL_LEN: a NULL pointer) */
  size_t in_len, out_len;
  uint64_t *ids;           /* elements: the ids of handles, malloc'd */
  int handles;             /* elements that are handles */
  uint64_t states;         /* ... and a digest of their states (what a `set` keeps) */
};

uint32_t rrto_forward(const struct rrto_fwd_fn *fn, const uint64_t *in_words) {
  const struct rrto_fwd_param *ps = fn->params;
  uint64_t words[64];
  struct pending pd[64];
  size_t name_len = strlen(fn->name), total = 2 + name_len + 2 + 8 * (size_t)fn->nparams;
  size_t out_total = 0;
  uint32_t status = 0;
  int memo = fn->flags & RRTO_FWD_MEMO, refused = 0;
  unsigned char *outs = NULL, *data = NULL, stack[4096];
  if (fn->nparams > 64) return fail(fn, cudaErrorInvalidValue, fn->invalid_value);
  memset(pd, 0, sizeof pd[0] * fn->nparams);
  uint64_t key = mix((uint64_t)fn->id, 0x6d656d6fULL);
  for (int i = 0; i < fn->nparams && !refused; i++) {
    const struct rrto_fwd_param *p = &ps[i];
    uint64_t w = in_words[i];
    words[i] = 0;
    switch (p->role) {
      case RRTO_R_USE:
      case RRTO_R_SET:
      case RRTO_R_DESTROY: {
        struct rrto_handle *h = handle_of(w);
        if (w && !h) {
          rrto_log("%s: parameter %d is not a handle this process made through rrto",
                   fn->name, i);
          status = fail(fn, cudaErrorInvalidResourceHandle, fn->bad_handle);
          refused = 1;
          break;
        }
        words[i] = h ? h->id : 0;
        key = mix(key, h ? state_of(h) : 0);
        break;
      }
      case RRTO_R_CREATE:
        if (!w) {
          status = fail(fn, cudaErrorInvalidValue, fn->invalid_value);
          refused = 1;
        }
        break;   /* the id is assigned below, once the call is known to be well formed */
      case RRTO_R_KERNEL: {
        struct rrto_function *k = rrto_function_by_host((const void *)(uintptr_t)w);
        int err = k ? rrto_function_resolve(k) : cudaErrorInvalidDeviceFunction;
        if (err) {
          status = fail(fn, err, k ? fn->failed : fn->invalid_value);
          refused = 1;
          break;
        }
        words[i] = rrto_function_handle(k);
        key = mix(key, words[i]);
        break;
      }
      case RRTO_R_IN:
      case RRTO_R_OUT: {
        size_t n = buf_size(p, in_words);
        if (n > MAX_BUF) {
          rrto_log("%s: parameter %d asks for %zu bytes; refused", fn->name, i, n);
          status = fail(fn, cudaErrorInvalidValue, fn->invalid_value);
          refused = 1;
          break;
        }
        total += 4;
        if (p->role == RRTO_R_IN) {
          pd[i].in = (const void *)(uintptr_t)w;
          pd[i].in_len = w ? n : NULL_LEN;
          total += w ? n : 0;
          key = w ? mix_bytes(key, pd[i].in, n) : mix(key, NULL_LEN);
        } else {
          pd[i].out_len = w ? n : NULL_LEN;
          out_total += w ? n : 0;
          key = mix(key, pd[i].out_len);
        }
        break;
      }
      case RRTO_R_ELEMS: {
        int is_handle;
        size_t esz = elem_size(in_words[p->prop], &is_handle);
        int64_t count = (int64_t)in_words[p->size_param];
        if (!esz || count < 0 || (uint64_t)count * esz > MAX_BUF || (count && !w)) {
          rrto_log("%s: %lld elements of attribute type %llu: refused", fn->name,
                   (long long)count, (unsigned long long)in_words[p->prop]);
          status = fail(fn, cudaErrorInvalidValue, fn->invalid_value);
          refused = 1;
          break;
        }
        size_t n = (size_t)count * esz;
        total += 8;
        key = mix(key, n);
        if (is_handle) {   /* in either direction the handles go up, as ids */
          pd[i].handles = 1;
          pd[i].ids = malloc(n ? n : 1);
          if (!pd[i].ids) {
            status = fail(fn, cudaErrorMemoryAllocation, fn->failed);
            refused = 1;
            break;
          }
          for (int64_t j = 0; j < count; j++) {
            uint64_t e;
            memcpy(&e, (const char *)(uintptr_t)w + 8 * j, 8);
            struct rrto_handle *h = handle_of(e);
            if (e && !h) {
              rrto_log("%s: element %lld is not a handle this process made through rrto",
                       fn->name, (long long)j);
              status = fail(fn, cudaErrorInvalidResourceHandle, fn->bad_handle);
              refused = 1;
              break;
            }
            pd[i].ids[j] = h ? h->id : 0;
            pd[i].states = mix(pd[i].states, h ? state_of(h) : 0);
          }
          pd[i].in = pd[i].ids;
          pd[i].in_len = n;
          total += n;
          key = mix(key, pd[i].states);
          memo = 0;   /* the server fills those descriptors: it must see every call */
        } else if (p->is_float) {   /* the library writes them */
          pd[i].out_len = n;
          out_total += n;
        } else {
          pd[i].in = (const void *)(uintptr_t)w;
          pd[i].in_len = n;
          total += n;
          key = mix_bytes(key, pd[i].in, n);
        }
        break;
      }
      default:   /* value, key, stream, device */
        words[i] = w;
        key = mix(key, w);
    }
  }
  if (refused) goto done;
  if (fn->flags & RRTO_FWD_BLOCKS) {
    outs = malloc(out_total ? out_total : 1);
    if (!outs) {
      status = fail(fn, cudaErrorMemoryAllocation, fn->failed);
      goto done;
    }
  }
  if (memo && memo_get(key, outs, out_total, &status)) goto scatter;
  /* predict: a repeat of a call that succeeded is sent without waiting (its status is
   * known); the first of its kind, or one that failed before, waits for its status. */
  uint32_t seen = 1;
  int wait = (fn->flags & RRTO_FWD_BLOCKS) ||
             ((fn->flags & RRTO_FWD_PREDICT) && !(memo_get(key, NULL, 0, &seen) && !seen));

  for (int i = 0; i < fn->nparams; i++)
    if (ps[i].role == RRTO_R_CREATE) words[i] = take_id();
  data = total <= sizeof stack ? stack : malloc(total);
  if (!data) {
    status = fail(fn, cudaErrorMemoryAllocation, fn->failed);
    goto done;
  }
  unsigned char *q = data;
  uint16_t n16 = (uint16_t)name_len;
  memcpy(q, &n16, 2);
  memcpy(q + 2, fn->name, name_len);
  q += 2 + name_len;
  n16 = fn->nparams;
  memcpy(q, &n16, 2);
  memcpy(q + 2, words, 8 * (size_t)fn->nparams);
  q += 2 + 8 * (size_t)fn->nparams;
  for (int i = 0; i < fn->nparams; i++) {
    int role = ps[i].role;
    if (role != RRTO_R_IN && role != RRTO_R_OUT && role != RRTO_R_ELEMS) continue;
    if (role != RRTO_R_OUT) {
      uint32_t n32 = (uint32_t)pd[i].in_len;
      memcpy(q, &n32, 4);
      q += 4;
      if (pd[i].in_len != NULL_LEN && pd[i].in_len) {
        memcpy(q, pd[i].in, pd[i].in_len);
        q += pd[i].in_len;
      }
    }
    if (role != RRTO_R_IN) {
      uint32_t n32 = (uint32_t)pd[i].out_len;
      memcpy(q, &n32, 4);
      q += 4;
    }
  }
  int err;
  struct rrto_reply rep = {.out = outs, .out_cap = out_total};
  if (wait) err = rrto_call(RRTO_OP_LIBCALL, NULL, 0, data, total, &rep);
  else err = rrto_post_reply(RRTO_OP_LIBCALL, NULL, 0, data, total, &rep);
  if (err) {
    /* The library's own status when the server ran it; else the session failed it. */
    status = rep.nres ? (uint32_t)rep.res[0] : 0;
    if ((fn->flags & RRTO_FWD_PREDICT) && rep.nres && status) memo_put(key, NULL, 0, status);
    for (int i = 0; i < fn->nparams; i++)
      if (ps[i].role == RRTO_R_CREATE) give_id(words[i]);
    if (fn->flags & RRTO_FWD_CUDART) status = (uint32_t)rrto_ret(err);
    else if (!status) status = fn->failed;
    goto done;
  }
  if ((fn->flags & RRTO_FWD_BLOCKS) && rep.out_len != out_total) {
    rrto_log("%s: the server answered %zu bytes, %zu expected", fn->name, rep.out_len,
             out_total);
    status = fail(fn, cudaErrorUnknown, fn->failed);
    goto done;
  }
  if (memo || (fn->flags & RRTO_FWD_PREDICT)) memo_put(key, outs, out_total, status);
  if (fn->flags & RRTO_FWD_FORGET) memo_forget();

scatter:;
  size_t off = 0;
  for (int i = 0; i < fn->nparams; i++) {
    const struct rrto_fwd_param *p = &ps[i];
    uint64_t w = in_words[i];
    if ((p->role == RRTO_R_OUT || p->role == RRTO_R_ELEMS) && pd[i].out_len &&
        pd[i].out_len != NULL_LEN) {
      memcpy((void *)(uintptr_t)w, outs + off, pd[i].out_len);
      off += pd[i].out_len;
    } else if (p->role == RRTO_R_ELEMS && pd[i].handles && p->is_float) {
      /* descriptors the server filled: their state is what they were filled from */
      for (size_t j = 0; j < pd[i].in_len / 8; j++) {
        uint64_t e;
        memcpy(&e, (const char *)(uintptr_t)w + 8 * j, 8);
        struct rrto_handle *h = handle_of(e);
        if (h) {
          h->base = mix(key, j);
          h->nslots = 0;
        }
      }
    } else if (p->role == RRTO_R_CREATE && words[i]) {
      struct rrto_handle *h = calloc(1, sizeof *h);
      if (!h) continue;   /* the app sees NULL: its next use fails with bad_handle */
      h->magic = HANDLE_MAGIC;
      h->id = words[i];
      h->prop = p->prop >= 0 ? in_words[p->prop] : 0;
      h->base = key;
      *(void **)(uintptr_t)w = h;
    } else if (p->role == RRTO_R_DESTROY && w) {
      struct rrto_handle *h = handle_of(w);
      give_id(h->id);
      h->magic = 0;
      free(h);
    } else if (p->role == RRTO_R_SET && w) {
      struct rrto_handle *h = handle_of(w);
      uint64_t slot = (uint64_t)fn->id, value = 0;
      for (int j = 0; j < fn->nparams; j++) {
        if (j == i) continue;
        if (ps[j].role == RRTO_R_KEY) slot = mix(slot, in_words[j]);
        else if (pd[j].handles) value = mix(value, pd[j].states);   /* not their ids */
        else if (pd[j].in_len && pd[j].in_len != NULL_LEN)
          value = mix_bytes(value, pd[j].in, pd[j].in_len);
        else value = mix(value, words[j]);
      }
      if (p->prop >= 0) h->prop = in_words[p->prop];
      uint32_t k = 0;
      while (k < h->nslots && k < MAX_SLOTS && h->slots[k].key != slot) k++;
      if (k < MAX_SLOTS) {
        h->slots[k] = (struct slot){slot, value};
        if (k == h->nslots) h->nslots++;
      } else {
        h->nslots = MAX_SLOTS + 1;
      }
    }
  }
  if (fn->flags & RRTO_FWD_CUDART) status = (uint32_t)rrto_ret((int)status);
done:
  for (int i = 0; i < fn->nparams; i++) free(pd[i].ids);
  if (data && data != stack) free(data);
  free(outs);
  return status;
}
