/* Call counting, the pass-through (trace) mode, unsupported-call reports and logging.
 *
 * RRTO_TRACE=1 makes every intercepted function call the real CUDA runtime; the counts are
 * written at exit to RRTO_TRACE_FILE (or stderr) as "name<TAB>count" lines, the data of
 * `rrto-trace`'s histogram. In remote mode, calls the interposer does not implement fail
 * with cudaErrorNotSupported and are listed by name at exit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rrto.h"

static const char *const g_names[RRTO_API_COUNT] = {
#define X(name) #name,
    RRTO_API_LIST(X)
#undef X
};
static unsigned long g_counts[RRTO_API_COUNT];
static unsigned char g_unsupported[RRTO_API_COUNT];
static int g_tracing = -1;

void rrto_log(const char *fmt, ...) {
  char buf[1200];
  int n = snprintf(buf, sizeof buf, "[rrto] ");
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(2, buf, (size_t)n);
  (void)w;
}

int rrto_tracing(void) {
  if (g_tracing < 0) {
    const char *t = getenv("RRTO_TRACE");
    g_tracing = t && *t && strcmp(t, "0") != 0;
  }
  return g_tracing;
}

void *rrto_real_in(const char *name, const char *const *sonames) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f) return f;
  /* The library may sit in a library loaded with RTLD_LOCAL (Python extensions). */
  for (; *sonames; sonames++) {
    void *h = dlopen(*sonames, RTLD_NOW | RTLD_NOLOAD);
    if (!h) h = dlopen(*sonames, RTLD_NOW | RTLD_LOCAL);
    if (h && (f = dlsym(h, name))) return f;
  }
  if (rrto_tracing()) rrto_log("trace mode: no loaded library has %s", name);
  return NULL;
}

void *rrto_real(const char *name) {
  static const char *const libs[] = {"libcudart.so.13", "libcudart.so.12", "libcudart.so", 0};
  return rrto_real_in(name, libs);
}

void rrto_count(int id) { __atomic_fetch_add(&g_counts[id], 1, __ATOMIC_RELAXED); }

void rrto_unsupported(int id) {
  if (!__atomic_exchange_n(&g_unsupported[id], 1, __ATOMIC_RELAXED))
    rrto_log("%s is not supported by the rrto interposer: it returns cudaErrorNotSupported. "
             "Run the app under `rrto-trace` to list every CUDA call it makes, and report "
             "this function to the rrto_ros maintainers.", g_names[id]);
}

void rrto_not_forwarded(int id, const char *returns, const void *caller) {
  if (__atomic_exchange_n(&g_unsupported[id], 1, __ATOMIC_RELAXED)) return;
  Dl_info di;
  const char *who = dladdr(caller, &di) && di.dli_fname && *di.dli_fname ? di.dli_fname
                                                                         : "the program";
  rrto_log("%s is not forwarded yet: it returns %s (called from %s). Run the app under "
           "`rrto-trace` to list every CUDA call it makes, and report this function to the "
           "rrto_ros maintainers.", g_names[id], returns, who);
}

__attribute__((destructor)) static void report_at_exit(void) {
  const char *path = getenv("RRTO_TRACE_FILE");
  if (rrto_tracing() || (path && *path)) {
    FILE *f = (path && *path) ? fopen(path, "a") : stderr;  /* one file for all processes */
    if (!f) {
      rrto_log("cannot write the call counts to %s", path);
      return;
    }
    for (int i = 0; i < RRTO_API_COUNT; i++)
      if (g_counts[i]) fprintf(f, "%s\t%lu\n", g_names[i], g_counts[i]);
    if (f != stderr) fclose(f);
  }
  char list[1024] = "";
  size_t used = 0;
  for (int i = 0; i < RRTO_API_COUNT; i++)
    if (g_unsupported[i] && used < sizeof list - 64)
      used += (size_t)snprintf(list + used, sizeof list - used, " %s(%lu calls)", g_names[i],
                               g_counts[i]);
  if (used) rrto_log("unsupported CUDA calls made by this process:%s", list);
}
