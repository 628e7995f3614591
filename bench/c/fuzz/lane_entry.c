/* lane.c with an entry point for the fuzz harness (parsers.c): its reply reader is static. */
#include "lane.c"

int fuzz_lane_replies(int fd) {
  char out[256], msg[512];
  L.fd = fd;
  L.state = LANE_OPEN;
  L.seq = 1000;   /* replies up to this number are expected; the last is waited for */
  struct rrto_reply rep = {.out = out, .out_cap = sizeof out};
  int r = await(L.seq, &rep, msg, sizeof msg);
  L.fd = -1;
  return r;
}
