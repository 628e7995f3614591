/* dlopen and dlsym act for their caller; the interposer wraps both, so this checks that
 * they still do. Built several times (test_interposer_driver.py):
 * -DPART_DEP  libdep.so, found only through the RUNPATH of libcaller.so;
 * -DPART_NEXT libnext.so, a second definition of probe_value;
 * -DPART_CALLER libcaller.so (RUNPATH $ORIGIN/sub), the first definition;
 * the program, linked to libcaller.so then libnext.so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

#if defined(PART_DEP)
int dep_value(void) { return 42; }
#elif defined(PART_NEXT)
int probe_value(void) { return 2; }
#elif defined(PART_CALLER)
int probe_value(void) { return 1; }
int load_dep(void) {   /* RUNPATH of this library, not of the interposer */
  void *h = dlopen("libdep.so", RTLD_NOW);
  int (*f)(void) = h ? (int (*)(void))dlsym(h, "dep_value") : NULL;
  return f ? f() : -1;
}
int next_value(void) {   /* RTLD_NEXT after this library: libnext.so's */
  int (*f)(void) = (int (*)(void))dlsym(RTLD_NEXT, "probe_value");
  return f ? f() : -1;
}
#else
int load_dep(void);
int next_value(void);
int main(void) {
  printf("dep %d\nnext %d\n", load_dep(), next_value());
  return 0;
}
#endif
