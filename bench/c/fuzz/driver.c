/* A plain mutation fuzzer with libFuzzer's command line, for machines without clang: runs
 * LLVMFuzzerTestOneInput (parsers.c) on seeded mutations of its corpus (no coverage
 * guidance). Flags: -runs=N -seed=S -max_len=L -timeout=S, then corpus directories or
 * files (each run once first).
 * Prints libFuzzer-style progress lines ("#N pulse ... rss: XMb") and "Done N runs". */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {   /* xorshift64 */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

struct unit { uint8_t *d; size_t n; };
static struct unit *corpus;
static size_t ncorpus, capcorpus;

static void add(const uint8_t *d, size_t n) {
  if (ncorpus == capcorpus) {
    capcorpus = capcorpus ? 2 * capcorpus : 64;
    corpus = realloc(corpus, capcorpus * sizeof *corpus);
  }
  corpus[ncorpus].d = malloc(n ? n : 1);
  memcpy(corpus[ncorpus].d, d, n);
  corpus[ncorpus++].n = n;
}

static void load(const char *path) {
  DIR *dir = opendir(path);
  if (dir) {
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(dir)))
      if (e->d_name[0] != '.') {
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        load(sub);
      }
    closedir(dir);
    return;
  }
  FILE *f = fopen(path, "rb");
  if (!f) return;
  uint8_t buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  add(buf, n);
}

static const uint64_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff,
                                       0x80000000u, 0xffffffffu, 0xfffffff9u, 0x4c425452u,
                                       0x4f545252u, 0x50524c52u, 16, 64, 256, 4096};

static size_t mutate(uint8_t *d, size_t n, size_t max) {
  int k = 1 + (int)(next() % 4);
  while (k--) {
    size_t at = n ? next() % n : 0;
    switch (next() % 7) {
      case 0: if (n) d[at] ^= (uint8_t)(1u << (next() % 8)); break;
      case 1: if (n) d[at] = (uint8_t)next(); break;
      case 2:   /* an interesting 1, 2, 4 or 8-byte value */
        if (n) {
          uint64_t v = interesting[next() % (sizeof interesting / sizeof *interesting)];
          size_t w = (size_t)1 << (next() % 4);
          if (at + w <= n) memcpy(d + at, &v, w);
        }
        break;
      case 3:   /* insert random bytes */
        if (n < max) {
          size_t m = 1 + next() % 8;
          if (n + m > max) m = max - n;
          memmove(d + at + m, d + at, n - at);
          for (size_t i = 0; i < m; i++) d[at + i] = (uint8_t)next();
          n += m;
        }
        break;
      case 4:   /* erase */
        if (n) {
          size_t m = 1 + next() % (n - at);
          memmove(d + at, d + at + m, n - at - m);
          n -= m;
        }
        break;
      case 5:   /* splice another unit's tail */
        if (ncorpus) {
          struct unit *u = &corpus[next() % ncorpus];
          size_t from = u->n ? next() % u->n : 0, m = u->n - from;
          if (at + m > max) m = max - at;
          memcpy(d + at, u->d + from, m);
          if (at + m > n) n = at + m;
        }
        break;
      default:  /* truncate */
        n = at;
    }
  }
  return n;
}

static void on_alarm(int sig) {   /* an input ran past -timeout: a hang */
  static const char msg[] = "==ERROR: libFuzzer: timeout (an input ran past -timeout)\n";
  ssize_t w = write(1, msg, sizeof msg - 1);
  (void)w;
  (void)sig;
  _exit(70);
}

static long rss_mb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return res * 4096 / (1 << 20);
}

int main(int argc, char **argv) {
  long runs = 100000;
  size_t max = 4096;
  unsigned timeout = 10;
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "-runs=", 6)) runs = atol(argv[i] + 6);
    else if (!strncmp(argv[i], "-seed=", 6)) rng = strtoull(argv[i] + 6, NULL, 10) | 1;
    else if (!strncmp(argv[i], "-max_len=", 9)) max = (size_t)atol(argv[i] + 9);
    else if (!strncmp(argv[i], "-timeout=", 9)) timeout = (unsigned)atoi(argv[i] + 9);
    else if (argv[i][0] != '-') load(argv[i]);
  }
  if (!ncorpus) add((const uint8_t *)"", 0);
  uint8_t *buf = malloc(max + 16);
  signal(SIGALRM, on_alarm);
  alarm(timeout);
  time_t t0 = time(NULL);
  printf("INFO: plain mutation driver (no coverage), %zu seed units\n", ncorpus);
  for (size_t i = 0, n = ncorpus; i < n; i++)   /* the corpus as it is first, as libFuzzer */
    LLVMFuzzerTestOneInput(corpus[i].d, corpus[i].n < max ? corpus[i].n : max);
  printf("#%zu INITED rss: %ldMb\n", ncorpus, rss_mb());
  for (long r = 1; r <= runs; r++) {
    struct unit *u = &corpus[next() % ncorpus];
    size_t n = u->n < max ? u->n : max;
    memcpy(buf, u->d, n);
    n = mutate(buf, n, max);
    alarm(timeout);
    LLVMFuzzerTestOneInput(buf, n);
    if (next() % 64 == 0 && ncorpus < 4096) add(buf, n);   /* keep some mutants to mutate */
    if ((r & (r - 1)) == 0 || r == runs) {
      printf("#%ld pulse rss: %ldMb\n", r, rss_mb());
      fflush(stdout);
    }
  }
  printf("Done %ld runs in %ld second(s)\n", runs, (long)(time(NULL) - t0));
  for (size_t i = 0; i < ncorpus; i++) free(corpus[i].d);
  free(corpus);
  free(buf);
  return 0;
}
