/* transport.c with an entry point for the fuzz harness (parsers.c): its reply parser is
 * static. */
#include "transport.c"

int fuzz_recv_replies(int fd) {
  char out[256];
  int n = 0;
  g_fd = fd;
  for (;; n++) {
    struct rrto_reply rep = {.out = out, .out_cap = sizeof out};
    if (recv_rep(&rep)) break;
  }
  g_fd = -1;
  return n;
}
