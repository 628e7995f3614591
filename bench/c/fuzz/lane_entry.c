/* lane.c with an entry point for the fuzz harness (parsers.c): its reply parser is static.
 * The input is what the lane's records held once opened (each: uint32 length, frame);
 * sealed records that do not authenticate never reach the parser. */
#include "lane.c"

int fuzz_lane_replies(const uint8_t *p, size_t len) {
  char out[256], msg[512];
  L.state = LANE_OPEN;
  L.seq = 1000;   /* replies up to this number are expected; the last is waited for */
  struct rrto_reply rep = {.out = out, .out_cap = sizeof out};
  int r = 0;
  while (len >= 4 && r == 0) {
    uint32_t n;
    memcpy(&n, p, 4);
    p += 4;
    len -= 4;
    if (n > len) n = (uint32_t)len;
    if (grow(&In, n ? n : 1)) abort();
    memcpy(In.p, p, n);
    In.len = n;
    p += n;
    len -= n;
    r = take_reply(L.seq, &rep, msg, sizeof msg);
  }
  return r;
}
