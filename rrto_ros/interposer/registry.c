/* Fatbins, kernels and variables the app registers at start-up, and their lazy
 * resolution on the server: a module is shipped only when one of its kernels or variables
 * is first used, and a kernel's parameter layout is learnt once (the server reads it with
 * cuFuncGetParamInfo), so a launch is packed into one flat parameter buffer. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rrto.h"

#define FATBINC_MAGIC 0x466243B1
#define FATBIN_MAGIC 0xBA55ED50u
#define MAX_PARAMS 256

struct fatbin_wrapper {
  int magic;
  int version;
  const unsigned long long *data;
  void *filename_or_fatbins;
};

struct fatbin_header {
  uint32_t magic;
  uint16_t version;
  uint16_t header_size;
  uint64_t fat_size;
};

struct rrto_module {
  void *handle_slot;   /* what the app holds: registration calls pass &handle_slot back */
  int id;
  const void *image;
  size_t size;
  unsigned sent_gen;   /* generation in which the server got it (0: never) */
};

struct rrto_function {
  const void *host_fun;
  struct rrto_module *module;
  char *name;
  unsigned resolved_gen;
  uint64_t handle;
  uint32_t nparams;
  uint32_t param_bytes;
  uint32_t offset[MAX_PARAMS];
  uint32_t size[MAX_PARAMS];
};

struct rrto_var {
  const void *host_var;
  struct rrto_module *module;
  char *name;
  size_t size;
  unsigned resolved_gen;
  uint64_t addr;
};

static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rrto_module **g_modules;
static int g_nmodules;
static struct rrto_function **g_funcs;   /* open addressing on host_fun */
static size_t g_funcs_cap, g_nfuncs;
static struct rrto_var **g_vars;
static size_t g_nvars;

static size_t hash_ptr(const void *p, size_t cap) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x & (cap - 1);
}

static void funcs_insert(struct rrto_function *fn) {
  if ((g_nfuncs + 1) * 2 > g_funcs_cap) {
    size_t cap = g_funcs_cap ? g_funcs_cap * 2 : 1024;
    struct rrto_function **t = calloc(cap, sizeof *t);
    for (size_t i = 0; i < g_funcs_cap; i++) {
      if (!g_funcs[i]) continue;
      size_t j = hash_ptr(g_funcs[i]->host_fun, cap);
      while (t[j]) j = (j + 1) & (cap - 1);
      t[j] = g_funcs[i];
    }
    free(g_funcs);
    g_funcs = t;
    g_funcs_cap = cap;
  }
  size_t j = hash_ptr(fn->host_fun, g_funcs_cap);
  while (g_funcs[j]) {
    if (g_funcs[j]->host_fun == fn->host_fun) return;  /* registered twice: keep the first */
    j = (j + 1) & (g_funcs_cap - 1);
  }
  g_funcs[j] = fn;
  g_nfuncs++;
}

struct rrto_function *rrto_function_by_host(const void *host_fun) {
  struct rrto_function *found = NULL;
  pthread_mutex_lock(&g_reg_lock);
  if (g_funcs_cap) {
    size_t j = hash_ptr(host_fun, g_funcs_cap);
    while (g_funcs[j]) {
      if (g_funcs[j]->host_fun == host_fun) {
        found = g_funcs[j];
        break;
      }
      j = (j + 1) & (g_funcs_cap - 1);
    }
  }
  pthread_mutex_unlock(&g_reg_lock);
  return found;
}

static struct rrto_module *module_of(void **handle) {
  return (struct rrto_module *)handle;  /* handle_slot is the first member */
}

void **__cudaRegisterFatBinary(void *fatCubin) {
  RRTO_ENTER(__cudaRegisterFatBinary, fatCubin);
  const struct fatbin_wrapper *w = fatCubin;
  struct rrto_module *m = calloc(1, sizeof *m);
  if (w && w->magic == FATBINC_MAGIC && w->data) {
    const struct fatbin_header *h = (const struct fatbin_header *)w->data;
    if (h->magic == FATBIN_MAGIC) {
      m->image = h;
      m->size = h->header_size + h->fat_size;
    }
  }
  if (!m->image)
    rrto_log("a fatbin registered by this program has an unknown format; its kernels "
             "will fail with cudaErrorInvalidKernelImage");
  pthread_mutex_lock(&g_reg_lock);
  g_modules = realloc(g_modules, (size_t)(g_nmodules + 1) * sizeof *g_modules);
  m->id = g_nmodules + 1;
  g_modules[g_nmodules++] = m;
  pthread_mutex_unlock(&g_reg_lock);
  return &m->handle_slot;
}

void __cudaRegisterFatBinaryEnd(void **fatCubinHandle) {
  RRTO_ENTER(__cudaRegisterFatBinaryEnd, fatCubinHandle);
}

void __cudaUnregisterFatBinary(void **fatCubinHandle) {
  RRTO_ENTER(__cudaUnregisterFatBinary, fatCubinHandle);
  /* Entries stay: other static destructors may still launch; the process is ending. */
}

char __cudaInitModule(void **fatCubinHandle) {
  RRTO_ENTER(__cudaInitModule, fatCubinHandle);
  return 1;
}

void __cudaRegisterFunction(void **fatCubinHandle, const char *hostFun, char *deviceFun,
                            const char *deviceName, int thread_limit, uint3 *tid, uint3 *bid,
                            dim3 *bDim, dim3 *gDim, int *wSize) {
  RRTO_ENTER(__cudaRegisterFunction, fatCubinHandle, hostFun, deviceFun, deviceName,
             thread_limit, tid, bid, bDim, gDim, wSize);
  struct rrto_function *fn = calloc(1, sizeof *fn);
  fn->host_fun = hostFun;
  fn->module = module_of(fatCubinHandle);
  fn->name = strdup(deviceFun ? deviceFun : deviceName);
  pthread_mutex_lock(&g_reg_lock);
  funcs_insert(fn);
  pthread_mutex_unlock(&g_reg_lock);
}

void __cudaRegisterVar(void **fatCubinHandle, char *hostVar, char *deviceAddress,
                       const char *deviceName, int ext, size_t size, int constant,
                       int global) {
  RRTO_ENTER(__cudaRegisterVar, fatCubinHandle, hostVar, deviceAddress, deviceName, ext,
             size, constant, global);
  struct rrto_var *v = calloc(1, sizeof *v);
  v->host_var = hostVar;
  v->module = module_of(fatCubinHandle);
  v->name = strdup(deviceAddress ? deviceAddress : deviceName);
  v->size = size;
  pthread_mutex_lock(&g_reg_lock);
  g_vars = realloc(g_vars, (g_nvars + 1) * sizeof *g_vars);
  g_vars[g_nvars++] = v;
  pthread_mutex_unlock(&g_reg_lock);
}

/* Ships the module to the server once per session. Called with g_reg_lock held. */
static int module_ensure(struct rrto_module *m) {
  if (!m->image) return cudaErrorInvalidKernelImage;
  if (m->sent_gen && m->sent_gen == rrto_generation()) return 0;
  /* Fatbins can exceed one message: send them in chunks; the last one loads. */
  size_t off = 0;
  do {
    size_t n = m->size - off < RRTO_CHUNK ? m->size - off : RRTO_CHUNK;
    int last = off + n >= m->size;
    int err = rrto_call(RRTO_OP_MODULE_LOAD, RRTO_ARGS((uint64_t)m->id, off, m->size),
                        (const char *)m->image + off, n, NULL);
    if (err) return err;
    off += n;
    if (last) break;
  } while (1);
  m->sent_gen = rrto_generation();
  return 0;
}

int rrto_function_resolve(struct rrto_function *fn) {
  pthread_mutex_lock(&g_reg_lock);
  int err = 0;
  if (!(fn->resolved_gen && fn->resolved_gen == rrto_generation())) {
    err = module_ensure(fn->module);
    if (!err) {
      uint32_t layout[2 * MAX_PARAMS];
      struct rrto_reply rep = {.out = layout, .out_cap = sizeof layout};
      err = rrto_call(RRTO_OP_FUNC_GET, RRTO_ARGS((uint64_t)fn->module->id), fn->name,
                      strlen(fn->name), &rep);
      if (!err && (rep.nres < 2 || rep.res[1] > MAX_PARAMS || rep.out_len < rep.res[1] * 8)) {
        rrto_log("the server's parameter layout for kernel %s is malformed", fn->name);
        err = cudaErrorInvalidDeviceFunction;
      }
      if (!err) {
        fn->handle = rep.res[0];
        fn->nparams = (uint32_t)rep.res[1];
        fn->param_bytes = 0;
        for (uint32_t i = 0; i < fn->nparams; i++) {
          fn->offset[i] = layout[2 * i];
          fn->size[i] = layout[2 * i + 1];
          if (fn->offset[i] + fn->size[i] > fn->param_bytes)
            fn->param_bytes = fn->offset[i] + fn->size[i];
        }
        fn->resolved_gen = rrto_generation();
      }
    }
  }
  pthread_mutex_unlock(&g_reg_lock);
  return err;
}

/* Start of this process's brk heap ([heap] in /proc/self/maps; 0: none, 1: not read yet). */
static uintptr_t heap_start(void) {
  static uintptr_t start = 1;
  uintptr_t s = __atomic_load_n(&start, __ATOMIC_RELAXED);
  if (s != 1) return s;
  s = 0;
  FILE *f = fopen("/proc/self/maps", "re");
  if (f) {
    char line[512];
    unsigned long lo, hi;
    while (fgets(line, sizeof line, f))
      if (strstr(line, "[heap]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
        s = lo;
        break;
      }
    fclose(f);
  }
  __atomic_store_n(&start, s, __ATOMIC_RELAXED);
  return s;
}

/* A word of a by-value parameter that points into this process's heap is a robot host
 * address, which no kernel can dereference on the server's GPU. PyTorch's host-device
 * lambdas carry one (nvcc's wrapper keeps a pointer to a heap copy of the lambda for host
 * calls): a new address every launch, which would make every inference look different to
 * record/replay. Such words travel as RRTO_HOST_WORD, the same every time. */
static void mask_host_words(const struct rrto_function *fn, unsigned char *buf) {
  uintptr_t lo = heap_start();
  if (!lo) return;
  uintptr_t hi = (uintptr_t)sbrk(0);
  for (uint32_t i = 0; i < fn->nparams; i++) {
    if (fn->size[i] < 16) continue;   /* a struct: plain pointers (8 bytes) stay as they are */
    for (uint32_t o = (fn->offset[i] + 7) & ~7u; o + 8 <= fn->offset[i] + fn->size[i]; o += 8) {
      uint64_t w;
      memcpy(&w, buf + o, 8);
      if (w >= lo && w < hi && !(w & 7)) {
        w = RRTO_HOST_WORD;
        memcpy(buf + o, &w, 8);
      }
    }
  }
}

long rrto_function_pack(struct rrto_function *fn, void **args, void *buf, size_t cap) {
  if (fn->param_bytes > cap) return -1;
  memset(buf, 0, fn->param_bytes);
  for (uint32_t i = 0; i < fn->nparams; i++)
    memcpy((char *)buf + fn->offset[i], args[i], fn->size[i]);
  mask_host_words(fn, buf);
  return fn->param_bytes;
}

uint64_t rrto_function_handle(const struct rrto_function *fn) { return fn->handle; }

int rrto_var_address(const void *host_var, uint64_t *addr, size_t *size) {
  struct rrto_var *v = NULL;
  pthread_mutex_lock(&g_reg_lock);
  for (size_t i = 0; i < g_nvars; i++)
    if (g_vars[i]->host_var == host_var) {
      v = g_vars[i];
      break;
    }
  int err = v ? 0 : cudaErrorInvalidSymbol;
  if (v && !(v->resolved_gen && v->resolved_gen == rrto_generation())) {
    err = module_ensure(v->module);
    if (!err) {
      struct rrto_reply rep = {0};
      err = rrto_call(RRTO_OP_VAR_GET, RRTO_ARGS((uint64_t)v->module->id, v->size), v->name,
                      strlen(v->name), &rep);
      if (!err) {
        v->addr = rep.res[0];
        v->resolved_gen = rrto_generation();
      }
    }
  }
  if (!err) {
    *addr = v->addr;
    *size = v->size;
  }
  pthread_mutex_unlock(&g_reg_lock);
  return err;
}

void __cudaRegisterManagedVar(void **fatCubinHandle, void **hostVarPtrAddress,
                              char *deviceAddress, const char *deviceName, int ext,
                              size_t size, int constant, int global) {
  RRTO_ENTER(__cudaRegisterManagedVar, fatCubinHandle, hostVarPtrAddress, deviceAddress,
             deviceName, ext, size, constant, global);
  rrto_unsupported(RRTO_ID___cudaRegisterManagedVar);  /* __managed__ needs unified memory */
}
