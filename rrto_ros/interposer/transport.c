/* The interposer's one connection to the client node: lazy connect, framing, locking.
 *
 * Nothing happens at load time: the first forwarded call connects (so processes that
 * never touch CUDA cost nothing), and a forked child connects again as its own session.
 * One mutex serialises all calls, which keeps every stream's order. */
#define _GNU_SOURCE
#include <errno.h>
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

static void child_after_fork(void) {
  /* The parent's session is not ours: start over lazily. */
  if (g_fd >= 0) close(g_fd);
  g_fd = -1;
  g_dead = 0;
  g_mode = RRTO_MODE_RPC;
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
int rrto_write_all(int fd, struct iovec *iov, int niov) {
  while (niov) {
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    while (niov && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      niov--;
    }
    if (niov) {
      iov->iov_base = (char *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
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

static int send_req(uint16_t op, uint16_t flags, const uint64_t *args, uint32_t nargs,
                    const void *data, size_t len) {
  struct rrto_req_hdr h = {RRTO_MAGIC, op, flags, nargs, (uint32_t)len};
  struct iovec iov[3] = {{&h, sizeof h},
                         {(void *)args, nargs * sizeof(uint64_t)},
                         {(void *)data, len}};
  return rrto_write_all(g_fd, iov, 3);
}

/* Reads a reply into rep; a message reply is logged. Returns -1 on a broken connection. */
static int recv_rep(struct rrto_reply *rep) {
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
    return 0;
  }
  size_t keep = h.len < rep->out_cap ? h.len : rep->out_cap;
  if (keep && rrto_read_all(g_fd, rep->out, keep)) return -1;
  if (rrto_discard(g_fd, h.len - keep)) return -1;
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
  return rrto_xfer_locked(op, flags, args, nargs, data, len, rep);
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
#define RRTO_OP(id, name, skip) [id] = skip,
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
