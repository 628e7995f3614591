/* Device allocations this process holds, so that cudaMemcpyDefault and
 * cudaPointerGetAttributes can tell device pointers from host pointers locally. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rrto.h"

struct range {
  uint64_t base;
  size_t size;
};

static pthread_mutex_t g_mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range *g_ranges;   /* sorted by base */
static size_t g_n, g_cap;

/* Index of the first range with base > addr. */
static size_t upper(uint64_t addr) {
  size_t lo = 0, hi = g_n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (g_ranges[mid].base <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

void rrto_mem_add(uint64_t base, size_t size) {
  pthread_mutex_lock(&g_mem_lock);
  if (g_n == g_cap) {
    g_cap = g_cap ? g_cap * 2 : 256;
    g_ranges = realloc(g_ranges, g_cap * sizeof *g_ranges);
  }
  size_t i = upper(base);
  memmove(g_ranges + i + 1, g_ranges + i, (g_n - i) * sizeof *g_ranges);
  g_ranges[i] = (struct range){base, size ? size : 1};
  g_n++;
  pthread_mutex_unlock(&g_mem_lock);
}

void rrto_mem_remove(uint64_t base) {
  pthread_mutex_lock(&g_mem_lock);
  size_t i = upper(base);
  if (i > 0 && g_ranges[i - 1].base == base) {
    memmove(g_ranges + i - 1, g_ranges + i, (g_n - i) * sizeof *g_ranges);
    g_n--;
  }
  pthread_mutex_unlock(&g_mem_lock);
}

int rrto_mem_is_device(const void *p) {
  uint64_t a = (uint64_t)(uintptr_t)p;
  pthread_mutex_lock(&g_mem_lock);
  size_t i = upper(a);
  int hit = i > 0 && a - g_ranges[i - 1].base < g_ranges[i - 1].size;
  pthread_mutex_unlock(&g_mem_lock);
  return hit;
}

int rrto_mem_contains(const void *p, size_t len) {
  uint64_t a = (uint64_t)(uintptr_t)p;
  pthread_mutex_lock(&g_mem_lock);
  size_t i = upper(a);
  int hit = i > 0 && a - g_ranges[i - 1].base <= g_ranges[i - 1].size &&
            len <= g_ranges[i - 1].size - (a - g_ranges[i - 1].base);
  pthread_mutex_unlock(&g_mem_lock);
  return hit;
}

void rrto_mem_reset(void) {
  pthread_mutex_init(&g_mem_lock, NULL);
  g_n = 0;
}
