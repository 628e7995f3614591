/* Fuzz harness for the interposer's parsers, in libFuzzer's interface
 * (LLVMFuzzerTestOneInput): built with clang -fsanitize=fuzzer when clang is there, else
 * with gcc and driver.c, a seeded mutation loop that takes the same flags (bench/fuzz.py).
 * The first byte of an input picks the parser; the rest is what a broken or hostile client
 * node (or server, on the lane) would send:
 *   0  a replay table (rrto_replay_install), then every entry matched against itself
 *   1  the replay lane description of the hello reply (rrto_lane_describe)
 *   2  a stream of client node replies (recv_rep, which installs replay tables it carries)
 *   3  the frames of lane replies, as their records held them (the lane's take_reply) */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rrto.h"

int fuzz_recv_replies(int fd);        /* transport.c's recv_rep until the stream ends */
int fuzz_lane_replies(const uint8_t *p, size_t len);   /* lane.c's take_reply */
void fuzz_replay_walk(void);          /* matches each installed entry against itself */

void rrto_log(const char *fmt, ...) { (void)fmt; }   /* quiet: sanitizers use stderr */
const char *rrto_error_name(int err) { (void)err; return NULL; }   /* only for log lines */

/* The input's bytes as a stream on a socket, the way the parser reads them. */
static int stream_of(const uint8_t *data, size_t len) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) abort();
  while (len) {
    ssize_t n = write(sv[1], data, len);
    if (n <= 0) abort();   /* inputs are bounded (-max_len) below the socket buffer */
    data += n;
    len -= (size_t)n;
  }
  close(sv[1]);
  return sv[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const uint8_t *p = data + 1;
  size_t len = size - 1;
  switch (data[0] % 4) {
    case 0: {
      void *blob = NULL;
      if (posix_memalign(&blob, 8, len ? len : 8)) abort();   /* as transport.c reads it */
      memcpy(blob, p, len);
      rrto_replay_install(blob, len);   /* takes the blob */
      fuzz_replay_walk();
      rrto_replay_drop();
      break;
    }
    case 1:
      rrto_lane_describe((const char *)p, len);
      rrto_lane_reset();
      break;
    case 2: {
      int fd = stream_of(p, len);
      fuzz_recv_replies(fd);
      close(fd);
      rrto_replay_drop();
      break;
    }
    default:
      fuzz_lane_replies(p, len);
      rrto_lane_reset();
      break;
  }
  return 0;
}
