/* The replay lane: this process's own TCP connection to the rrto server, which carries the
 * replay hot path (REPLAY_RUN and its answer) without a hop through the client node.
 * rrto_ros/protocol/lane_wire.py is the server's side and says why.
 *
 * The client node describes the lane in its hello reply ("lane HOST PORT TIMEOUT_MS SID");
 * the first replayed range connects. A lane that cannot be opened is logged once and
 * replays go through the client node (slower, same results). An open lane that fails, or
 * stays silent for the timeout, loses the session, as the client node's connection would:
 * the client node is told (REPLAY_NOTE, RRTO_NOTE_LOST) and the app's calls fail.
 * Every range run here is noted to the client node, which keeps the session's statistics;
 * a blocking range's note is answered while the server works, so it costs no extra wait.
 * All functions run with the transport lock held. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "rrto.h"

enum { LANE_NONE, LANE_DESCRIBED, LANE_OPEN, LANE_LOST };

static struct {
  int state;
  int fd;
  char host[64], port[8];
  int timeout_ms;
  unsigned char sid[16];
  uint64_t seq;            /* number of the last request sent */
  uint64_t settled;        /* every request up to this one has run */
  uint64_t last[2];        /* sequence id and end of the last range sent */
  int deferred;            /* first error of a quiet range, for the next blocking one */
  char deferred_msg[512];
  uint64_t bytes_up, bytes_down, rtt_ns;
} L = {.state = LANE_NONE, .fd = -1};

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Closes the connection, if any, and leaves the lane in `state`. */
static void shut(int state) {
  if (L.fd >= 0) close(L.fd);
  L.fd = -1;
  L.state = state;
}

void rrto_lane_reset(void) {
  shut(LANE_NONE);
  L.seq = L.settled = 0;
  L.deferred = 0;
}

void rrto_lane_describe(const char *desc, size_t len) {
  rrto_lane_reset();
  char text[256], sid[33];
  if (len == 0 || len >= sizeof text) return;   /* no lane: replays use the client node */
  memcpy(text, desc, len);
  text[len] = 0;
  if (sscanf(text, "lane %63s %7s %d %32s", L.host, L.port, &L.timeout_ms, sid) != 4 ||
      strlen(sid) != 32 || L.timeout_ms <= 0) {
    rrto_log("ignoring a malformed replay lane description from the client node (%s); "
             "replays go through the client node", text);
    return;
  }
  for (int i = 0; i < 16; i++) {
    unsigned v;
    if (sscanf(sid + 2 * i, "%2x", &v) != 1) return;
    L.sid[i] = (unsigned char)v;
  }
  L.state = LANE_DESCRIBED;
}

int rrto_lane_lost(void) { return L.state == LANE_LOST; }

/* Connects within the timeout and says hello; returns 0 or an error text. */
static const char *open_lane(void) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  if (getaddrinfo(L.host, L.port, &hints, &ai) || !ai) return "not a numeric address";
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {L.timeout_ms / 1000, (L.timeout_ms % 1000) * 1000};
  int one = 1;
  int bad = fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) ||
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
            connect(fd, ai->ai_addr, ai->ai_addrlen);   /* SO_SNDTIMEO bounds it */
  freeaddrinfo(ai);
  static char why[160];
  if (bad) {
    snprintf(why, sizeof why, "%s", strerror(errno));
    if (fd >= 0) close(fd);
    return why;
  }
  struct iovec iov[2] = {{(void *)RRTO_LANE_HELLO, sizeof RRTO_LANE_HELLO - 1},
                         {L.sid, sizeof L.sid}};
  unsigned char ack = 0;
  if (rrto_write_all(fd, iov, 2) || rrto_read_all(fd, &ack, 1) || ack != RRTO_LANE_ACK) {
    close(fd);
    return "the server did not accept it";
  }
  L.fd = fd;
  return NULL;
}

int rrto_lane_ready(void) {
  if (L.state == LANE_DESCRIBED) {
    const char *why = open_lane();
    if (why) {
      rrto_log("no replay lane to the rrto server at %s:%s (%s); replays go through the "
               "client node, about 1 ms slower per inference on an edge link. Open that "
               "TCP port of the server (its lane_port setting) or set the client's "
               "lane_endpoint.", L.host, L.port, why);
      L.state = LANE_NONE;
    } else {
      L.state = LANE_OPEN;
    }
  }
  return L.state == LANE_OPEN;
}

/* The lane failed: the session is lost. Tells the client node and returns the app's error. */
static int lose(const char *what) {
  char why[256];
  snprintf(why, sizeof why, "the replay lane to the rrto server at %s:%s %s", L.host, L.port,
           what);
  shut(LANE_LOST);
  uint64_t note[8] = {0, 0, 0, RRTO_NOTE_LOST, 0, L.bytes_up, L.bytes_down, 0};
  rrto_xfer_locked(RRTO_OP_REPLAY_NOTE, RRTO_F_NOREPLY, note, 8, why, strlen(why), NULL);
  rrto_log("%s; CUDA calls now fail with cudaErrorDevicesUnavailable (%d). Check that the "
           "server runs and the network is up, then restart the app.", why,
           cudaErrorDevicesUnavailable);
  return cudaErrorDevicesUnavailable;
}

static int send_range(uint64_t seq_id, uint64_t from, uint64_t to, const void *data,
                      size_t len, int quiet) {
  struct rrto_lane_req h = {RRTO_LANE_REQ_MAGIC, quiet ? RRTO_LANE_QUIET : 0, ++L.seq,
                            (uint32_t)seq_id, (uint32_t)from, (uint32_t)to, (uint32_t)len};
  struct iovec iov[2] = {{&h, sizeof h}, {(void *)data, len}};
  if (rrto_write_all(L.fd, iov, len ? 2 : 1)) return -1;
  L.last[0] = seq_id;
  L.last[1] = to;
  L.bytes_up += sizeof h + len;
  return 0;
}

/* What went wrong on the lane, from errno after a failed read or write (0: closed). */
static const char *failure(void) {
  static char why[160];
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    snprintf(why, sizeof why, "stayed silent for %d ms", L.timeout_ms);
  else if (errno)
    snprintf(why, sizeof why, "failed (%s)", strerror(errno));
  else
    snprintf(why, sizeof why, "was closed by the server");
  return why;
}

/* Reads answers until the one to request `seq` (earlier ones are quiet ranges' errors:
 * the first is kept for the next blocking range). Returns 0, or -1 if the lane failed
 * (errno as failure() reads it). */
static int await(uint64_t seq, struct rrto_reply *rep, char *msg, size_t cap) {
  for (;;) {
    struct rrto_lane_rep h;
    errno = 0;
    if (rrto_read_all(L.fd, &h, sizeof h)) return -1;
    if (h.magic != RRTO_LANE_REP_MAGIC || h.nres > RRTO_MAX_ARGS || h.seq > L.seq) {
      errno = EPROTO;
      return -1;
    }
    L.bytes_down += sizeof h + 8 * (size_t)h.nres + h.len + h.msg_len;
    int mine = h.seq == seq;
    uint64_t res[RRTO_MAX_ARGS];
    char text[512];
    size_t keep = !mine ? 0 : h.len < rep->out_cap ? h.len : rep->out_cap;
    size_t shown = h.msg_len < sizeof text - 1 ? h.msg_len : sizeof text - 1;
    if ((h.nres && rrto_read_all(L.fd, res, 8 * (size_t)h.nres)) ||
        (keep && rrto_read_all(L.fd, rep->out, keep)) || rrto_discard(L.fd, h.len - keep) ||
        (shown && rrto_read_all(L.fd, text, shown)) || rrto_discard(L.fd, h.msg_len - shown))
      return -1;
    text[shown] = 0;
    if (!mine) {   /* a quiet range failed */
      if (!L.deferred) {
        L.deferred = h.err;
        snprintf(L.deferred_msg, sizeof L.deferred_msg, "%s", text);
      }
      continue;
    }
    L.settled = seq;
    memcpy(rep->res, res, 8 * (size_t)h.nres);
    snprintf(msg, cap, "%s", text);
    rep->err = h.err;
    rep->nres = h.nres;
    rep->out_len = h.len;
    return 0;
  }
}

/* The error to return for a blocking range: a quiet range's earlier one comes first. */
static int take_error(int err, char *msg, size_t cap) {
  if (L.deferred) {
    err = L.deferred;
    snprintf(msg, cap, "%s", L.deferred_msg);
    L.deferred = 0;
  }
  return err;
}

int rrto_lane_run(const uint64_t *args, const void *data, size_t len, int wait,
                  struct rrto_reply *rep) {
  int64_t t0 = now_ns();
  errno = 0;
  if (send_range(args[0], args[1], args[2], data, len, !wait)) return lose(failure());
  uint64_t note[8] = {args[0], args[1], args[2], wait ? RRTO_NOTE_BLOCKING : 0, len,
                      L.bytes_up, L.bytes_down, L.rtt_ns};
  int noted = !rrto_send_locked(RRTO_OP_REPLAY_NOTE, wait ? 0 : RRTO_F_NOREPLY, note, 8,
                                NULL, 0);
  if (!wait) return 0;
  char msg[512] = "";
  struct rrto_reply scratch = {0};
  if (!rep) rep = &scratch;
  if (await(L.seq, rep, msg, sizeof msg)) {
    const char *why = failure();
    struct rrto_reply answer = {0};
    if (noted) rrto_recv_locked(&answer);   /* first the note's answer: the client node must
                                               not be left answering an app that may exit */
    return lose(why);
  }
  L.rtt_ns = (uint64_t)(now_ns() - t0);
  int err = take_error(rep->err, msg, sizeof msg);
  if (err && msg[0]) rrto_log("%s", msg);
  struct rrto_reply answer = {0};   /* the note's: mode, a withdrawn table, a lost session */
  if (noted && rrto_recv_locked(&answer)) shut(LANE_LOST);   /* the node gave it up */
  return err;
}

int rrto_lane_settle(char *msg, size_t cap) {
  msg[0] = 0;
  if (L.state != LANE_OPEN) return 0;
  int err = 0;
  if (L.settled < L.seq) {   /* an empty range: answered after everything before it */
    struct rrto_reply rep = {0};
    errno = 0;
    if (send_range(L.last[0], L.last[1], L.last[1], NULL, 0, 0) ||
        await(L.seq, &rep, msg, cap))
      return lose(failure());
    err = rep.err;           /* e.g. out of step after a quiet range failed midway */
  }
  return take_error(err, msg, cap);   /* that quiet range's own error comes first */
}
