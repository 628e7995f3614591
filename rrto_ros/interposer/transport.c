/* The interposer's one connection to the client node: lazy connect, framing, locking.
 *
 * Nothing happens at load time: the first forwarded call connects (so processes that
 * never touch CUDA cost nothing), and a forked child connects again as its own session.
 * One mutex serialises all calls, which keeps every stream's order.
 *
 * Deferred replies: a device-to-host copy the app does not wait for (cudaMemcpyAsync) is
 * sent at once and its reply is read later, straight into the app's buffer: by the next
 * call that waits for a reply of its own (replies come back in request order), by a write
 * that would otherwise block (so that neither side waits for the other to read), and,
 * without waiting, by rrto_deferred_pending() (cudaStreamQuery/cudaEventQuery). An error
 * of a deferred reply is returned by the next call that waits, as CUDA reports errors of
 * asynchronous work at the next synchronising call. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "rrto.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_fd = -1;
static int g_dead;              /* connection lost or refused: fail fast, once logged */
static int g_dead_err;
static uint32_t g_mode = RRTO_MODE_RPC;
static unsigned g_generation;
static int g_device_count;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

/* ---- deferred replies (lock held) */
#define MAX_DEFERRED 4096u
static struct deferred {
  void *dst;
  size_t cap;
} g_def[MAX_DEFERRED];            /* a ring, in request order */
static unsigned g_def_head, g_def_n;
static int g_def_err;             /* first error of a deferred reply, for the next wait */

enum { RD_HDR, RD_RES, RD_BODY, RD_SKIP, RD_OLEN, RD_OTEXT, RD_TLEN, RD_TSKIP, RD_DONE };
static struct {                   /* the oldest deferred reply, as far as it has arrived */
  int step;
  char *p;                        /* where the current step's bytes go (NULL: discarded) */
  size_t left;
  size_t skip;                    /* bytes of the body past the caller's buffer */
  int to_stdout;                  /* the current step's bytes go to the app's stdout */
  struct rrto_rep_hdr h;
  uint64_t res[RRTO_MAX_ARGS];
  uint32_t olen, tlen;
  char msg[1024];
} g_rd;

static void deferred_reset(void) {
  g_def_head = g_def_n = 0;
  g_def_err = 0;
  memset(&g_rd, 0, sizeof g_rd);
}

static void child_after_fork(void) {
  /* The parent's session is not ours: start over lazily. */
  if (g_fd >= 0) close(g_fd);
  g_fd = -1;
  g_dead = 0;
  g_mode = RRTO_MODE_RPC;
  deferred_reset();
  rrto_replay_drop();
  rrto_lane_reset();
  pthread_mutex_init(&g_lock, NULL);
  rrto_mem_reset();
}

static void install_atfork(void) { pthread_atfork(NULL, NULL, child_after_fork); }

/* RRTO_AGENT_SOCKET, else the client node's default (rrto_ros/client/agent_socket.py):
 * $XDG_RUNTIME_DIR/rrto/agent.sock, else /tmp/rrto-<uid>/agent.sock. */
static const char *socket_path(void) {
  static char buf[sizeof ((struct sockaddr_un *)0)->sun_path + 64];
  const char *p = getenv("RRTO_AGENT_SOCKET");
  if (p && *p) return p;
  const char *run = getenv("XDG_RUNTIME_DIR");
  if (run && *run)
    snprintf(buf, sizeof buf, "%s/rrto/agent.sock", run);
  else
    snprintf(buf, sizeof buf, "/tmp/rrto-%u/agent.sock", (unsigned)getuid());
  return buf;
}

/* Why the socket at `path` must not get this process's calls (NULL: it may): it must be a
 * socket owned by this user or root, or whoever made it would receive them. */
static const char *untrusted_socket(const char *path, char *why, size_t cap) {
  struct stat st;
  if (stat(path, &st)) return NULL;   /* missing: connect() says so */
  if (!S_ISSOCK(st.st_mode)) {
    snprintf(why, cap, "%s is not a socket", path);
    return why;
  }
  if (st.st_uid != getuid() && st.st_uid != 0) {
    snprintf(why, cap, "%s belongs to uid %u, not to this user (%u) or root: another user "
             "may have made it to receive this app's CUDA calls",
             path, (unsigned)st.st_uid, (unsigned)getuid());
    return why;
  }
  return NULL;
}

/* Sends the buffers as one stream with as few system calls as the socket allows (one, for
 * a request that fits its buffer): the reader wakes once, with the whole request there. */
/* Drops the first n bytes written from an iovec array. */
static void advance(struct iovec **iov, int *niov, size_t n) {
  while (*niov && n >= (*iov)->iov_len) {
    n -= (*iov)->iov_len;
    (*iov)++;
    (*niov)--;
  }
  if (*niov) {
    (*iov)->iov_base = (char *)(*iov)->iov_base + n;
    (*iov)->iov_len -= n;
  }
}

int rrto_write_all(int fd, struct iovec *iov, int niov) {
  while (niov) {
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    advance(&iov, &niov, (size_t)n);
  }
  return 0;
}

int rrto_read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int rrto_discard(int fd, size_t len) {
  char tmp[4096];
  while (len) {
    size_t n = len < sizeof tmp ? len : sizeof tmp;
    if (rrto_read_all(fd, tmp, n)) return -1;
    len -= n;
  }
  return 0;
}

/* Device printf text of the session (RRTO_R_OUTPUT), for the app's own stdout, after what
 * the app itself has buffered there. */
static void write_stdout(const char *p, size_t n) {
  while (n) {
    ssize_t k = write(1, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return;   /* stdout closed: the text is lost, as the app's own would be */
    p += k;
    n -= (size_t)k;
  }
}

static int recv_output(void) {
  uint32_t n;
  char buf[16384];
  if (rrto_read_all(g_fd, &n, sizeof n)) return -1;
  fflush(stdout);
  while (n) {
    size_t k = n < sizeof buf ? n : sizeof buf;
    if (rrto_read_all(g_fd, buf, k)) return -1;
    write_stdout(buf, k);
    n -= (uint32_t)k;
  }
  return 0;
}

/* The next step of reading the oldest deferred reply, once the current one is complete. */
static int rd_next(void) {
  struct deferred *d = &g_def[g_def_head];
  switch (g_rd.step) {
    case RD_HDR:
      if (g_rd.h.magic != RRTO_MAGIC || g_rd.h.nres > RRTO_MAX_ARGS) return -1;
      g_mode = g_rd.h.mode;
      g_rd.step = RD_RES;
      g_rd.p = (char *)g_rd.res;
      g_rd.left = 8 * (size_t)g_rd.h.nres;
      return 0;
    case RD_RES: {
      size_t cap = (g_rd.h.flags & RRTO_R_MESSAGE) ? sizeof g_rd.msg - 1 : d->cap;
      g_rd.step = RD_BODY;
      g_rd.p = (g_rd.h.flags & RRTO_R_MESSAGE) ? g_rd.msg : d->dst;
      g_rd.left = g_rd.h.len < cap ? g_rd.h.len : cap;
      g_rd.skip = g_rd.h.len - g_rd.left;
      if (g_rd.h.flags & RRTO_R_MESSAGE) g_rd.msg[g_rd.left] = 0;
      return 0;
    }
    case RD_BODY:
      g_rd.step = RD_SKIP;
      g_rd.p = NULL;
      g_rd.left = g_rd.skip;
      return 0;
    case RD_SKIP:
      if (g_rd.h.flags & RRTO_R_OUTPUT) {
        g_rd.step = RD_OLEN;
        g_rd.p = (char *)&g_rd.olen;
        g_rd.left = sizeof g_rd.olen;
        return 0;
      }
      /* fall through */
    case RD_OTEXT:
      g_rd.to_stdout = 0;
      if (g_rd.h.flags & RRTO_R_TABLE) {
        g_rd.step = RD_TLEN;
        g_rd.p = (char *)&g_rd.tlen;
        g_rd.left = sizeof g_rd.tlen;
      } else {
        g_rd.step = RD_DONE;
      }
      return 0;
    case RD_OLEN:
      fflush(stdout);
      g_rd.step = RD_OTEXT;
      g_rd.p = NULL;
      g_rd.to_stdout = 1;
      g_rd.left = g_rd.olen;
      return 0;
    case RD_TLEN:   /* the client node attaches no table to a deferred reply: dropped */
      g_rd.step = RD_TSKIP;
      g_rd.p = NULL;
      g_rd.left = g_rd.tlen;
      rrto_log("ignoring a replay table that came with a deferred copy's reply; calls keep "
               "being forwarded");
      return 0;
    default:
      g_rd.step = RD_DONE;
      return 0;
  }
}

/* A deferred reply has arrived whole: its error is kept for the next wait. */
static void rd_complete(void) {
  struct deferred *d = &g_def[g_def_head];
  int err = g_rd.h.err;
  if (g_rd.h.flags & RRTO_R_MESSAGE) rrto_log("%s", g_rd.msg);
  else if (!err && g_rd.h.len != d->cap) err = cudaErrorUnknown;
  if (err && !g_def_err) g_def_err = err;
  if (g_mode != RRTO_MODE_REPLAY && rrto_replay_active()) rrto_replay_drop();
  g_def_head = (g_def_head + 1) % MAX_DEFERRED;
  g_def_n--;
  memset(&g_rd, 0, sizeof g_rd);
  g_rd.p = (char *)&g_rd.h;
  g_rd.left = sizeof g_rd.h;
}

/* Reads what has arrived of the deferred replies (all of them if block). -1: the
 * connection broke or the client node broke the framing. */
static int pump(int block) {
  static char scratch[65536];
  while (g_def_n) {
    if (g_rd.step == RD_HDR && !g_rd.p) {   /* a reply not yet started */
      g_rd.p = (char *)&g_rd.h;
      g_rd.left = sizeof g_rd.h;
    }
    if (g_rd.step == RD_DONE) {
      rd_complete();
      continue;
    }
    if (!g_rd.left) {
      if (rd_next()) return -1;
      continue;
    }
    size_t want = g_rd.left;
    char *into = g_rd.p;
    if (!into) {
      into = scratch;
      if (want > sizeof scratch) want = sizeof scratch;
    }
    ssize_t n = recv(g_fd, into, want, block ? 0 : MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n <= 0) return -1;
    if (g_rd.to_stdout) write_stdout(scratch, (size_t)n);
    if (g_rd.p) g_rd.p += n;
    g_rd.left -= (size_t)n;
  }
  return 0;
}

/* Writes a request; while deferred replies are outstanding it never blocks on a full
 * socket without reading them (the client node may be blocked writing one to us). */
static int write_req(struct iovec *iov, int niov) {
  while (niov) {
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    ssize_t n = sendmsg(g_fd, &m, MSG_NOSIGNAL | (g_def_n ? MSG_DONTWAIT : 0));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {.fd = g_fd, .events = POLLIN | POLLOUT};
      if (poll(&pfd, 1, -1) < 0 && errno != EINTR) return -1;
      if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && pump(0)) return -1;
      continue;
    }
    if (n <= 0) return -1;
    advance(&iov, &niov, (size_t)n);
  }
  return 0;
}

static int send_req(uint16_t op, uint16_t flags, const uint64_t *args, uint32_t nargs,
                    const void *data, size_t len) {
  struct rrto_req_hdr h = {RRTO_MAGIC, op, flags, nargs, (uint32_t)len};
  struct iovec iov[3] = {{&h, sizeof h},
                         {(void *)args, nargs * sizeof(uint64_t)},
                         {(void *)data, len}};
  return write_req(iov, 3);
}

/* Reads a reply into rep; a message reply is logged. Returns -1 on a broken connection. */
static int recv_rep(struct rrto_reply *rep) {
  if (pump(1)) return -1;   /* the deferred replies come first */
  struct rrto_rep_hdr h;
  if (rrto_read_all(g_fd, &h, sizeof h) || h.magic != RRTO_MAGIC || h.nres > RRTO_MAX_ARGS)
    return -1;
  rep->err = h.err;
  rep->nres = h.nres;
  if (h.nres && rrto_read_all(g_fd, rep->res, h.nres * sizeof(uint64_t))) return -1;
  g_mode = h.mode;
  rep->out_len = h.len;
  if (h.flags & RRTO_R_MESSAGE) {
    char msg[1024];
    size_t n = h.len < sizeof msg - 1 ? h.len : sizeof msg - 1;
    if (rrto_read_all(g_fd, msg, n) || rrto_discard(g_fd, h.len - n)) return -1;
    msg[n] = 0;
    rrto_log("%s", msg);
    rep->out_len = 0;
    return (h.flags & RRTO_R_OUTPUT) ? recv_output() : 0;
  }
  size_t keep = h.len < rep->out_cap ? h.len : rep->out_cap;
  if (keep && rrto_read_all(g_fd, rep->out, keep)) return -1;
  if (rrto_discard(g_fd, h.len - keep)) return -1;
  if ((h.flags & RRTO_R_OUTPUT) && recv_output()) return -1;
  if (h.flags & RRTO_R_TABLE) {   /* a replay table follows: install it */
    uint32_t n;
    if (rrto_read_all(g_fd, &n, sizeof n)) return -1;
    void *blob = NULL;
    if (n > (256u << 20) || posix_memalign(&blob, 8, n ? n : 8)) return -1;
    if (rrto_read_all(g_fd, blob, n)) {
      free(blob);
      return -1;
    }
    rrto_replay_install(blob, n);
  }
  if (g_mode != RRTO_MODE_REPLAY && rrto_replay_active()) rrto_replay_drop();
  return 0;
}

static void mark_dead(int err, const char *why) {
  if (g_fd >= 0) close(g_fd);
  g_fd = -1;
  g_dead = 1;
  g_dead_err = err;
  deferred_reset();
  rrto_replay_drop();
  rrto_lane_reset();
  const char *name = rrto_error_name(err);
  rrto_log("%s; CUDA calls now fail with %s (%d). Check the rrto client node's log.", why,
           name ? name : "CUDA error", err);
}

/* Connects and says hello; called with the lock held. */
static int ensure_connected(void) {
  if (g_fd >= 0) return 0;
  if (g_dead) return g_dead_err;
  pthread_once(&g_atfork_once, install_atfork);
  const char *path = socket_path();
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    g_dead = 1;
    g_dead_err = cudaErrorNoDevice;
    rrto_log("RRTO_AGENT_SOCKET path is too long: %s", path);
    return g_dead_err;
  }
  strcpy(addr.sun_path, path);
  char why[512];
  if (untrusted_socket(path, why, sizeof why)) {
    g_dead = 1;
    g_dead_err = cudaErrorNoDevice;
    rrto_log("not connecting to the rrto client node: %s. Remove it and start the client "
             "node, or set RRTO_AGENT_SOCKET to the node's socket. CUDA calls fail with "
             "cudaErrorNoDevice.", why);
    return g_dead_err;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
    int e = errno;
    if (fd >= 0) close(fd);
    g_dead = 1;
    g_dead_err = cudaErrorNoDevice;
    rrto_log("no rrto client node at %s (%s). Start it with `ros2 launch rrto_ros "
             "robot.launch.py` or `rrto-client`, or run without LD_PRELOAD to use a local "
             "GPU. CUDA calls fail with cudaErrorNoDevice.", path, strerror(e));
    return g_dead_err;
  }
  g_fd = fd;
  int sndbuf = RRTO_SOCKET_BUFFER;   /* the kernel caps it at net.core.wmem_max */
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  char exe[512];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0) n = 0;
  exe[n] = 0;
  uint64_t args[2] = {(uint64_t)getpid(), RRTO_PROTO_VERSION};
  char lane[RRTO_LANE_DESC_MAX];   /* the hello reply's data: where the replay lane is, if any */
  struct rrto_reply rep = {.out = lane, .out_cap = sizeof lane};
  if (send_req(RRTO_OP_HELLO, 0, args, 2, exe, (size_t)n) || recv_rep(&rep)) {
    mark_dead(cudaErrorNoDevice, "the rrto client node closed the connection during hello");
    return g_dead_err;
  }
  if (rep.err) {  /* the client node explained why (logged by recv_rep) */
    close(g_fd);
    g_fd = -1;
    g_dead = 1;
    g_dead_err = rep.err;
    return rep.err;
  }
  g_device_count = rep.nres > 0 ? (int)rep.res[0] : 1;
  rrto_lane_describe(lane, rep.out_len < sizeof lane ? rep.out_len : 0);
  g_generation++;
  return 0;
}

int rrto_send_locked(uint16_t op, uint16_t flags, const uint64_t *args, uint32_t nargs,
                     const void *data, size_t len) {
  int err = ensure_connected();
  if (err) return err;
  if (send_req(op, flags, args, nargs, data, len)) {
    mark_dead(cudaErrorDevicesUnavailable, "lost the connection to the rrto client node");
    return g_dead_err;
  }
  return 0;
}

int rrto_recv_locked(struct rrto_reply *rep) {
  if (g_fd < 0) return g_dead ? g_dead_err : cudaErrorDevicesUnavailable;
  if (recv_rep(rep)) {
    mark_dead(cudaErrorDevicesUnavailable, "lost the connection to the rrto client node");
    return g_dead_err;
  }
  return rep->err;
}

int rrto_xfer_locked(uint16_t op, uint16_t flags, const uint64_t *args, uint32_t nargs,
                     const void *data, size_t len, struct rrto_reply *rep) {
  struct rrto_reply scratch = {0};
  int err = rrto_send_locked(op, flags, args, nargs, data, len);
  if (err || (flags & RRTO_F_NOREPLY)) return err;
  return rrto_recv_locked(rep ? rep : &scratch);
}

/* A forwarded call: matched against the replay table when one is installed, else sent. */
static int call_locked(uint16_t op, uint16_t flags, const uint64_t *args, uint32_t nargs,
                       const void *data, size_t len, struct rrto_reply *rep) {
  int err = ensure_connected();
  if (err) return err;
  if (rrto_replay_handle(op, args, nargs, data, len, rep, &err)) return err;
  err = rrto_xfer_locked(op, flags, args, nargs, data, len, rep);
  if (!err && !(flags & RRTO_F_NOREPLY) && g_def_err) {   /* a deferred copy failed: */
    err = g_def_err;                                       /* the app's wait reports it */
    g_def_err = 0;
  }
  return err;
}

int rrto_call(uint16_t op, const uint64_t *args, uint32_t nargs, const void *data,
              size_t len, struct rrto_reply *rep) {
  struct rrto_reply scratch = {0};
  if (!rep) rep = &scratch;
  pthread_mutex_lock(&g_lock);
  int err = call_locked(op, 0, args, nargs, data, len, rep);
  rep->err = err;
  pthread_mutex_unlock(&g_lock);
  return err;
}

int rrto_post(uint16_t op, const uint64_t *args, uint32_t nargs, const void *data,
              size_t len) {
  struct rrto_reply rep = {0};
  return rrto_post_reply(op, args, nargs, data, len, &rep);
}

int rrto_post_reply(uint16_t op, const uint64_t *args, uint32_t nargs, const void *data,
                    size_t len, struct rrto_reply *rep) {
  static const unsigned char may_skip_reply[] = {
#define RRTO_OP(id, name, skip, nargs) [id] = skip,
#include "rrto_ops.def"
#undef RRTO_OP
  };
  pthread_mutex_lock(&g_lock);
  int err = ensure_connected();
  if (!err) {
    int skip = op < sizeof may_skip_reply && may_skip_reply[op] && g_mode != RRTO_MODE_RPC;
    uint16_t flags = skip ? RRTO_F_NOREPLY : 0;
    err = call_locked(op, flags, args, nargs, data, len, rep);
  }
  pthread_mutex_unlock(&g_lock);
  return err;
}

int rrto_call_deferred(uint16_t op, const uint64_t *args, uint32_t nargs, void *dst,
                       size_t cap) {
  struct rrto_reply rep = {.out = dst, .out_cap = cap};
  pthread_mutex_lock(&g_lock);
  int err = ensure_connected();
  if (!err && !rrto_replay_handle(op, args, nargs, NULL, 0, &rep, &err)) {
    if (g_mode == RRTO_MODE_RPC || g_def_n == MAX_DEFERRED) {
      err = rrto_xfer_locked(op, 0, args, nargs, NULL, 0, &rep);
      if (!err && rep.out_len != cap) err = cudaErrorUnknown;
      if (!err && g_def_err) {   /* as in call_locked */
        err = g_def_err;
        g_def_err = 0;
      }
    } else {
      err = rrto_send_locked(op, RRTO_F_DEFERRED, args, nargs, NULL, 0);
      if (!err) {
        g_def[(g_def_head + g_def_n) % MAX_DEFERRED] = (struct deferred){dst, cap};
        g_def_n++;
      }
    }
  } else if (!err && rep.out_len != cap) {
    err = cudaErrorUnknown;   /* answered by replay with the wrong size */
  }
  pthread_mutex_unlock(&g_lock);
  return err;
}

int rrto_deferred_pending(void) {
  pthread_mutex_lock(&g_lock);
  if (g_def_n && g_fd >= 0 && pump(0))
    mark_dead(cudaErrorDevicesUnavailable, "lost the connection to the rrto client node");
  int n = (int)g_def_n;
  pthread_mutex_unlock(&g_lock);
  return n > 0;
}

int rrto_settle(void) {
  pthread_mutex_lock(&g_lock);
  int err = 0;
  if (g_def_n && g_fd >= 0 && pump(1)) {
    mark_dead(cudaErrorDevicesUnavailable, "lost the connection to the rrto client node");
    err = g_dead_err;
  }
  if (!err) {
    err = g_dead ? g_dead_err : g_def_err;
    g_def_err = 0;
  }
  pthread_mutex_unlock(&g_lock);
  return err;
}

int rrto_mode(void) {
  pthread_mutex_lock(&g_lock);
  int err = ensure_connected();
  int mode = err ? RRTO_MODE_RPC : (int)g_mode;
  pthread_mutex_unlock(&g_lock);
  return mode;
}

unsigned rrto_generation(void) { return g_generation; }

int rrto_device_count(void) {
  pthread_mutex_lock(&g_lock);
  int err = ensure_connected();
  int n = err ? -err : g_device_count;
  pthread_mutex_unlock(&g_lock);
  return n;
}

int rrto_session_devices(void) {
  return __atomic_load_n(&g_fd, __ATOMIC_RELAXED) >= 0
             ? __atomic_load_n(&g_device_count, __ATOMIC_RELAXED) : 0;
}
