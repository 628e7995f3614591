/* The replay lane: this process's own TCP connection to the rrto server, which carries the
 * replay hot path (REPLAY_RUN and its answer) without a hop through the client node.
 * rrto_ros/protocol/lane_wire.py is the server's side and says why; lane_seal.py says how
 * the lane is encrypted and authenticated (libsodium's XChaCha20-Poly1305, one key per
 * connection derived from the session's lane key, counted nonces).
 *
 * The client node describes the lane in its hello reply ("lane HOST PORT TIMEOUT_MS SID
 * KEY SODIUM"); the first replayed range loads libsodium (SODIUM: the client node found
 * it), connects and authenticates. A lane that cannot be opened is logged once and replays
 * go through the client node (slower, same results); nothing travels on the lane in plain.
 * An open lane that fails, stays silent for the timeout or sends a record that does not
 * authenticate, loses the session, as the client node's connection would: the client node
 * is told (REPLAY_NOTE, RRTO_NOTE_LOST) and the app's calls fail.
 * Every range run here is noted to the client node, which keeps the session's statistics;
 * a blocking range's note is answered while the server works, so it costs no extra wait.
 * All functions run with the transport lock held. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "rrto.h"

enum { LANE_NONE, LANE_DESCRIBED, LANE_OPEN, LANE_LOST };
enum { TO_SERVER = 0, TO_APP = 1 };   /* directions, part of each nonce (lane_seal.py) */
#define RECORD_MAX ((size_t)1 << 31)   /* largest frame accepted from the server */

static struct {
  int state;
  int fd;
  char host[64], port[8], sodium[512];
  int timeout_ms;
  unsigned char sid[16];
  unsigned char key[RRTO_LANE_KEY_BYTES];    /* the session's lane key */
  unsigned char ckey[RRTO_LANE_KEY_BYTES];   /* this connection's */
  uint64_t sealed, opened;  /* records sent and received on this connection */
  int forged;               /* the last record received did not authenticate */
  uint64_t seq;            /* number of the last request sent */
  uint64_t settled;        /* every request up to this one has run */
  uint64_t last[2];        /* sequence id and end of the last range sent */
  int deferred;            /* first error of a quiet range, for the next blocking one */
  char deferred_msg[512];
  uint64_t bytes_up, bytes_down, rtt_ns;
} L = {.state = LANE_NONE, .fd = -1};

/* Record buffers: a frame to seal, a sealed record, a received frame. */
static struct buf {
  unsigned char *p;
  size_t cap, len;
} Plain, Box, In;

static int grow(struct buf *b, size_t n) {
  if (n <= b->cap) return 0;
  unsigned char *p = realloc(b->p, n);
  if (!p) return -1;
  b->p = p;
  b->cap = n;
  return 0;
}

/* libsodium, loaded on first use: the interposer links nothing but libc. */
static struct {
  int ok;
  int (*init)(void);
  void (*random)(void *, size_t);
  int (*hash)(unsigned char *, size_t, const unsigned char *, unsigned long long,
              const unsigned char *, size_t);
  int (*seal)(unsigned char *, unsigned long long *, const unsigned char *,
              unsigned long long, const unsigned char *, unsigned long long,
              const unsigned char *, const unsigned char *, const unsigned char *);
  int (*open)(unsigned char *, unsigned long long *, unsigned char *, const unsigned char *,
              unsigned long long, const unsigned char *, unsigned long long,
              const unsigned char *, const unsigned char *);
  void (*wipe)(void *, size_t);
} S;

/* Loads libsodium (`lib`: a soname or a path); NULL or why not. */
static const char *load_sodium(const char *lib) {
  static char why[640];
  if (S.ok) return NULL;
  dlerror();
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(why, sizeof why, "%s", dlerror());
    return why;
  }
  static const char *const names[] = {
      "sodium_init", "randombytes_buf", "crypto_generichash",
      "crypto_aead_xchacha20poly1305_ietf_encrypt", "crypto_aead_xchacha20poly1305_ietf_decrypt",
      "sodium_memzero"};
  void *f[6];
  for (int i = 0; i < 6; i++) {
    if (!(f[i] = dlsym(h, names[i]))) {
      snprintf(why, sizeof why, "%s has no %s", lib, names[i]);
      dlclose(h);
      return why;
    }
  }
  memcpy(&S.init, &f[0], sizeof f[0]);
  memcpy(&S.random, &f[1], sizeof f[1]);
  memcpy(&S.hash, &f[2], sizeof f[2]);
  memcpy(&S.seal, &f[3], sizeof f[3]);
  memcpy(&S.open, &f[4], sizeof f[4]);
  memcpy(&S.wipe, &f[5], sizeof f[5]);
  if (S.init() < 0) {
    snprintf(why, sizeof why, "sodium_init of %s failed", lib);
    dlclose(h);
    return why;
  }
  S.ok = 1;    /* stays loaded: libsodium keeps no state that a fork would break */
  return NULL;
}

static void nonce_of(unsigned char n[24], int direction, uint64_t counter) {
  memset(n, 0, 24);
  memcpy(n, &counter, 8);   /* little-endian, as every lane header */
  n[8] = (unsigned char)direction;
}

/* Seals the frame head + data as one record and sends it; 0 or -1 (errno). */
static int send_record(const void *head, size_t hlen, const void *data, size_t len) {
  size_t n = hlen + len;
  if (n > RECORD_MAX || grow(&Plain, n) ||
      grow(&Box, 4 + n + RRTO_LANE_TAG_BYTES)) {
    errno = ENOMEM;
    return -1;
  }
  memcpy(Plain.p, head, hlen);
  if (len) memcpy(Plain.p + hlen, data, len);
  uint32_t size = (uint32_t)(n + RRTO_LANE_TAG_BYTES);
  memcpy(Box.p, &size, 4);
  unsigned char nonce[24];
  nonce_of(nonce, TO_SERVER, L.sealed++);
  unsigned long long out = 0;
  S.seal(Box.p + 4, &out, Plain.p, n, Box.p, 4, NULL, nonce, L.ckey);
  struct iovec iov = {Box.p, 4 + (size_t)out};
  if (rrto_write_all(L.fd, &iov, 1)) return -1;
  L.bytes_up += 4 + (size_t)out;
  return 0;
}

/* Reads one record and opens it into In; 0, or -1 (errno; L.forged when it did not
 * authenticate). */
static int recv_record(void) {
  uint32_t size;
  L.forged = 0;
  if (rrto_read_all(L.fd, &size, 4)) return -1;
  if (size < RRTO_LANE_TAG_BYTES || size - RRTO_LANE_TAG_BYTES > RECORD_MAX) {
    errno = EPROTO;
    return -1;
  }
  if (grow(&Box, size) || grow(&In, size)) {
    errno = ENOMEM;
    return -1;
  }
  if (rrto_read_all(L.fd, Box.p, size)) return -1;
  unsigned char nonce[24];
  nonce_of(nonce, TO_APP, L.opened);
  unsigned long long got = 0;
  if (S.open(In.p, &got, NULL, Box.p, size, (const unsigned char *)&size, 4, nonce, L.ckey)) {
    L.forged = 1;
    errno = EBADMSG;
    return -1;
  }
  L.opened++;
  In.len = (size_t)got;
  L.bytes_down += 4 + (size_t)size;
  return 0;
}

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

static void wipe(void *p, size_t n) {
  if (S.ok) S.wipe(p, n);
  else memset(p, 0, n);
}

void rrto_lane_reset(void) {
  shut(LANE_NONE);
  L.seq = L.settled = 0;
  L.deferred = 0;
  wipe(L.key, sizeof L.key);
  wipe(L.ckey, sizeof L.ckey);
  struct buf *bufs[3] = {&Plain, &Box, &In};   /* they held inputs and results */
  for (int i = 0; i < 3; i++) {
    if (bufs[i]->p) wipe(bufs[i]->p, bufs[i]->cap);
    free(bufs[i]->p);
    *bufs[i] = (struct buf){0};
  }
}

/* Hex digits to n bytes; 0 or -1. */
static int unhex(const char *hex, unsigned char *out, size_t n) {
  if (strlen(hex) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (unsigned char)v;
  }
  return 0;
}

void rrto_lane_describe(const char *desc, size_t len) {
  rrto_lane_reset();
  char text[RRTO_LANE_DESC_MAX], sid[33], key[65];
  if (len == 0 || len >= sizeof text) return;   /* no lane: replays use the client node */
  memcpy(text, desc, len);
  text[len] = 0;
  if (sscanf(text, "lane %63s %7s %d %32s %64s %511s", L.host, L.port, &L.timeout_ms, sid,
             key, L.sodium) != 6 || L.timeout_ms <= 0 || unhex(sid, L.sid, sizeof L.sid) ||
      unhex(key, L.key, sizeof L.key)) {
    wipe(text, sizeof text);
    wipe(L.key, sizeof L.key);
    rrto_log("ignoring a malformed replay lane description from the client node; "
             "replays go through the client node");
    return;
  }
  wipe(text, sizeof text);
  wipe(key, sizeof key);
  L.state = LANE_DESCRIBED;
}

int rrto_lane_lost(void) { return L.state == LANE_LOST; }

/* Connects within the timeout, says hello and authenticates; returns 0 or an error text. */
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
  L.fd = fd;
  unsigned char mine[RRTO_LANE_RANDOM_BYTES], theirs[RRTO_LANE_RANDOM_BYTES];
  S.random(mine, sizeof mine);
  struct iovec iov[3] = {{(void *)RRTO_LANE_HELLO, sizeof RRTO_LANE_HELLO - 1},
                         {L.sid, sizeof L.sid}, {mine, sizeof mine}};
  const char *fail = NULL;
  if (rrto_write_all(fd, iov, 3) || rrto_read_all(fd, theirs, sizeof theirs)) {
    fail = "the server did not accept it (an unknown session, or one with a lane already)";
  } else {
    unsigned char in[sizeof RRTO_LANE_HELLO - 1 + 2 * RRTO_LANE_RANDOM_BYTES];
    memcpy(in, RRTO_LANE_HELLO, sizeof RRTO_LANE_HELLO - 1);
    memcpy(in + sizeof RRTO_LANE_HELLO - 1, mine, sizeof mine);
    memcpy(in + sizeof RRTO_LANE_HELLO - 1 + sizeof mine, theirs, sizeof theirs);
    S.hash(L.ckey, sizeof L.ckey, in, sizeof in, L.key, sizeof L.key);
    L.sealed = L.opened = 0;
    if (send_record(RRTO_LANE_PROOF, sizeof RRTO_LANE_PROOF - 1, NULL, 0) ||
        recv_record())
      fail = L.forged ? "the server's answer does not authenticate (not the server of this "
                        "session, or an altered answer)"
                      : "the server refused its key (its log says why)";
    else if (In.len != 1 || In.p[0] != RRTO_LANE_ACK)
      fail = "the server did not acknowledge it";
  }
  if (fail) {
    close(fd);
    L.fd = -1;
  }
  return fail;
}

int rrto_lane_ready(void) {
  if (L.state == LANE_DESCRIBED) {
    const char *why = load_sodium(L.sodium);
    if (why) {
      rrto_log("no replay lane to the rrto server at %s:%s: it is encrypted with libsodium, "
               "which cannot be loaded (%s); replays go through the client node, about 1 ms "
               "slower per inference on an edge link. Install libsodium23 (sudo apt-get "
               "install libsodium23).", L.host, L.port, why);
      L.state = LANE_NONE;
      return 0;
    }
    why = open_lane();
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
  if (send_record(&h, sizeof h, data, len)) return -1;
  L.last[0] = seq_id;
  L.last[1] = to;
  return 0;
}

/* What went wrong on the lane, from errno after a failed read or write (0: closed). */
static const char *failure(void) {
  static char why[160];
  if (L.forged)
    snprintf(why, sizeof why, "received a record that does not authenticate (altered, "
             "replayed or out of order)");
  else if (errno == EPROTO)
    snprintf(why, sizeof why, "broke the lane protocol");
  else if (errno == EAGAIN || errno == EWOULDBLOCK)
    snprintf(why, sizeof why, "stayed silent for %d ms", L.timeout_ms);
  else if (errno)
    snprintf(why, sizeof why, "failed (%s)", strerror(errno));
  else
    snprintf(why, sizeof why, "was closed by the server");
  return why;
}

/* Takes the reply frame in In: 1 when it answers request `seq` (into rep, msg), 0 when it
 * is an earlier quiet range's error (the first is kept for the next blocking range), -1
 * when it is not a reply (errno EPROTO). */
static int take_reply(uint64_t seq, struct rrto_reply *rep, char *msg, size_t cap) {
  struct rrto_lane_rep h;
  if (In.len < sizeof h) goto bad;
  memcpy(&h, In.p, sizeof h);
  if (h.magic != RRTO_LANE_REP_MAGIC || h.nres > RRTO_MAX_ARGS || h.seq > L.seq ||
      sizeof h + 8 * (uint64_t)h.nres + h.len + h.msg_len != In.len)
    goto bad;
  const unsigned char *res = In.p + sizeof h, *data = res + 8 * (size_t)h.nres,
                      *note = data + h.len;
  char text[512];
  size_t shown = h.msg_len < sizeof text - 1 ? h.msg_len : sizeof text - 1;
  memcpy(text, note, shown);
  text[shown] = 0;
  if (h.seq != seq) {   /* a quiet range failed */
    if (!L.deferred) {
      L.deferred = h.err;
      snprintf(L.deferred_msg, sizeof L.deferred_msg, "%s", text);
    }
    return 0;
  }
  size_t keep = h.len < rep->out_cap ? h.len : rep->out_cap;
  if (keep) memcpy(rep->out, data, keep);
  L.settled = seq;
  memcpy(rep->res, res, 8 * (size_t)h.nres);
  snprintf(msg, cap, "%s", text);
  rep->err = h.err;
  rep->nres = h.nres;
  rep->out_len = h.len;
  return 1;
bad:
  errno = EPROTO;
  return -1;
}

/* Reads answers until the one to request `seq`. Returns 0, or -1 if the lane failed
 * (errno and L.forged as failure() reads them). */
static int await(uint64_t seq, struct rrto_reply *rep, char *msg, size_t cap) {
  for (;;) {
    errno = 0;
    if (recv_record()) return -1;
    int r = take_reply(seq, rep, msg, cap);
    if (r) return r < 0 ? -1 : 0;
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
  L.forged = 0;
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
    L.forged = 0;
    if (send_range(L.last[0], L.last[1], L.last[1], NULL, 0, 0) ||
        await(L.seq, &rep, msg, cap))
      return lose(failure());
    err = rep.err;           /* e.g. out of step after a quiet range failed midway */
  }
  return take_error(err, msg, cap);   /* that quiet range's own error comes first */
}
