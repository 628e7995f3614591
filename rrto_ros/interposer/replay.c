/* Replay: matching the app's calls against the recorded inference sequence (IOS).
 *
 * The client node pushes a compiled table (rrto_ros/client/replay_table.py writes it) in a
 * reply. While it is installed and the session's mode is `replay`, every forwarded call is
 * compared with the next entry of the table:
 *   LOCAL  entries (launches, memsets, syncs, event records...) return the recorded result
 *          at once; they are validated, and the server runs them once the frontier passes.
 *   INPUT  entries (copies to the device) keep a copy of their payload, which travels with
 *          the next frontier, so an inference costs one message up and one down.
 *   BLOCK  entries (results the app needs: copies to the host, queries, allocations) send
 *          the frontier and wait for the server's real answer.
 * The frontier (REPLAY_RUN seq, from, to) asks the server to run table entries [from, to),
 * all of which the app has really called: nothing runs that the app did not ask for. It
 * travels on the replay lane (lane.c) when the server offers one, else through the client
 * node. It is
 * sent at every BLOCK entry and, so that the server starts on long inferences early, once
 * FRONTIER_BATCH entries are pending and the oldest has waited FRONTIER_WAIT_NS (or
 * FRONTIER_MAX are pending): an app that issues its calls in a quick burst pays one
 * message per inference, not one per batch. The
 * first call that does not match flushes the validated prefix, reports REPLAY_DIVERGE and
 * drops the table; that call and all after it are forwarded as usual.
 *
 * A launch matches on its function, configuration, stream and parameter-buffer length; when
 * its parameter bytes differ from the table's (PyTorch passes structs whose padding and
 * unused members hold whatever was on the app's stack, which differs between forwarding and
 * replaying), the app's bytes travel with the frontier as a patch and become the table's,
 * so the server runs exactly what the app passed. The frontier's payload is the INPUT
 * entries' data, then the patches: u32 entry position, u32 length, the bytes. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rrto.h"

#define TABLE_MAGIC 0x4c425452u   /* "RTBL" */
#define FRONTIER_BATCH 16u        /* pending entries worth a message of their own ... */
#define FRONTIER_WAIT_NS 50000    /* ... once the oldest has waited this long */
#define FRONTIER_MAX 64u          /* pending entries sent in any case */

enum { KIND_LOCAL = 0, KIND_INPUT = 1, KIND_BLOCK = 2 };
enum { ENTRY_HEAD_BYTES = 28 };   /* op, kind, pad, nargs, key_len, var_len, nres, err */

struct entry {
  uint16_t op;
  uint8_t kind;
  uint32_t nargs, key_len, var_len, nres;
  int32_t err;
  const uint64_t *args, *res;
  const unsigned char *key;
};

struct seq {
  uint32_t id, n;
  struct entry *e;
};

static struct {
  void *blob;
  uint32_t nseq;
  struct seq *seqs;
  int cur;            /* sequence being replayed, -1 at an inference boundary */
  uint32_t pos;       /* next entry the app must call */
  uint32_t flushed;   /* entries [0, flushed) were sent to the server */
  int64_t pending_since;        /* when entry `flushed` was validated */
  unsigned char *pending;       /* payloads of INPUT entries in [flushed, pos), in order */
  size_t pending_len, pending_cap;
  unsigned char *patch;         /* launch parameter patches of entries in [flushed, pos) */
  size_t patch_len, patch_cap;
} R = {.cur = -1};

int rrto_replay_active(void) { return R.blob != NULL; }

void rrto_replay_drop(void) {
  if (R.seqs)
    for (uint32_t i = 0; i < R.nseq; i++) free(R.seqs[i].e);
  free(R.seqs);
  free(R.blob);
  R.blob = NULL;
  R.seqs = NULL;
  R.nseq = 0;
  R.cur = -1;
  free(R.pending);
  R.pending = NULL;
  R.pending_len = R.pending_cap = 0;
  free(R.patch);
  R.patch = NULL;
  R.patch_len = R.patch_cap = 0;
}

static int parse(const unsigned char *p, size_t len, uint32_t *start_seq, uint32_t *start_pos) {
  const unsigned char *end = p + len;
#define TAKE(dst, n)                        \
  do {                                      \
    if ((size_t)(end - p) < (size_t)(n)) return -1; \
    memcpy((dst), p, (n));                  \
    p += (n);                               \
  } while (0)
  uint32_t magic, nseq;
  TAKE(&magic, 4);
  TAKE(&nseq, 4);
  TAKE(start_seq, 4);
  TAKE(start_pos, 4);
  if (magic != TABLE_MAGIC || nseq == 0 || nseq > 64) return -1;
  R.seqs = calloc(nseq, sizeof *R.seqs);
  if (!R.seqs) return -1;
  R.nseq = nseq;
  for (uint32_t s = 0; s < nseq; s++) {
    struct seq *q = &R.seqs[s];
    TAKE(&q->id, 4);
    TAKE(&q->n, 4);
    /* the count is checked against the bytes left before anything is allocated for it */
    if (q->n == 0 || q->n > (size_t)(end - p) / ENTRY_HEAD_BYTES) return -1;
    q->e = calloc(q->n, sizeof *q->e);
    if (!q->e) return -1;
    for (uint32_t i = 0; i < q->n; i++) {
      struct entry *e = &q->e[i];
      uint8_t pad;
      TAKE(&e->op, 2);
      TAKE(&e->kind, 1);
      TAKE(&pad, 1);
      TAKE(&e->nargs, 4);
      TAKE(&e->key_len, 4);
      TAKE(&e->var_len, 4);
      TAKE(&e->nres, 4);
      TAKE(&e->err, 4);
      if (e->nargs > RRTO_MAX_ARGS || e->nres > RRTO_MAX_ARGS || e->kind > KIND_BLOCK)
        return -1;
      size_t need = 8 * (size_t)(e->nargs + e->nres) + (((size_t)e->key_len + 7) & ~(size_t)7);
      if ((size_t)(end - p) < need) return -1;
      e->args = (const uint64_t *)p;
      e->res = e->args + e->nargs;
      e->key = (const unsigned char *)(e->res + e->nres);
      p += need;
    }
  }
  return p == end ? 0 : -1;
#undef TAKE
}

void rrto_replay_install(void *blob, size_t len) {
  rrto_replay_drop();
  if (len == 0) {   /* the client node withdrew the table (e.g. "record again") */
    free(blob);
    return;
  }
  R.blob = blob;   /* entries point into it: 8-byte fields are 8-byte aligned */
  uint32_t start_seq = 0, start_pos = 0;
  if (parse(blob, len, &start_seq, &start_pos) || start_seq >= R.nseq ||
      start_pos > R.seqs[start_seq].n) {
    rrto_log("ignoring a malformed replay table from the client node (%zu bytes); calls "
             "keep being forwarded", len);
    rrto_replay_drop();
    return;
  }
  R.cur = (int)start_seq;
  R.pos = R.flushed = start_pos;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* 0: no match; 1: the same call; MATCH_PATCH: a launch whose parameter bytes differ. */
#define MATCH_PATCH 2
static int matches(const struct entry *e, uint16_t op, const uint64_t *args, uint32_t nargs,
                   const void *data, size_t len) {
  if (e->op != op || e->nargs != nargs || memcmp(e->args, args, 8 * (size_t)nargs)) return 0;
  if (e->kind == KIND_INPUT) return e->var_len == len;
  if (e->key_len != len) return 0;
  if (len == 0 || memcmp(e->key, data, len) == 0) return 1;
  return op == RRTO_OP_LAUNCH && e->kind == KIND_LOCAL ? MATCH_PATCH : 0;
}

static int grow(unsigned char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 65536;
  while (c < need) c *= 2;
  unsigned char *p = realloc(*buf, c);
  if (!p) return cudaErrorMemoryAllocation;
  *buf = p;
  *cap = c;
  return 0;
}

/* Runs entries [R.flushed, to) of the current sequence on the server, with the payloads
 * of the INPUT entries among them. */
static int flush(uint32_t to, int wait, struct rrto_reply *rep) {
  uint64_t args[3] = {R.seqs[R.cur].id, R.flushed, to};
  R.flushed = to;
  if (R.patch_len) {   /* the patches follow the inputs */
    if (grow(&R.pending, &R.pending_cap, R.pending_len + R.patch_len)) {
      R.patch_len = 0;
      return cudaErrorMemoryAllocation;
    }
    memcpy(R.pending + R.pending_len, R.patch, R.patch_len);
    R.pending_len += R.patch_len;
    R.patch_len = 0;
  }
  size_t len = R.pending_len;
  R.pending_len = 0;
  if (rrto_lane_ready()) return rrto_lane_run(args, R.pending, len, wait, rep);
  return rrto_xfer_locked(RRTO_OP_REPLAY_RUN, wait ? 0 : RRTO_F_NOREPLY, args, 3, R.pending,
                          len, rep);
}

/* Keeps an INPUT entry's payload for the next frontier (the app may reuse its buffer). */
static int keep_input(const void *data, size_t len) {
  if (R.pending_len + R.patch_len + len > RRTO_CHUNK && R.flushed < R.pos - 1) {
    int err = flush(R.pos - 1, 0, NULL);   /* one message must stay within a chunk */
    if (err) return err;
  }
  int err = grow(&R.pending, &R.pending_cap, R.pending_len + len);
  if (err) return err;
  memcpy(R.pending + R.pending_len, data, len);
  R.pending_len += len;
  return 0;
}

/* Sends a launch's parameter bytes with the frontier and makes them the table's (the
 * patch lands at entry R.pos, which the app is calling now). */
static int keep_patch(const struct entry *e, const void *data, size_t len) {
  if (R.pending_len + R.patch_len + len + 8 > RRTO_CHUNK && R.flushed < R.pos) {
    int err = flush(R.pos, 0, NULL);   /* one message must stay within a chunk */
    if (err) return err;
  }
  if (grow(&R.patch, &R.patch_cap, R.patch_len + 8 + len)) return cudaErrorMemoryAllocation;
  uint32_t head[2] = {R.pos, (uint32_t)len};
  memcpy(R.patch + R.patch_len, head, 8);
  memcpy(R.patch + R.patch_len + 8, data, len);
  R.patch_len += 8 + len;
  memcpy((unsigned char *)e->key, data, len);   /* the table is ours: blob is writable */
  return 0;
}

/* Hands the session back to the client node: the validated prefix runs, the lane settles
 * (so nothing sent through the client node can overtake it), and an error of a quiet range
 * not yet reported travels with REPLAY_DIVERGE, for the app's next blocking call. */
static void diverge(void) {
  uint64_t args[3] = {~0ull, 0, 0};
  if (R.cur >= 0) {
    args[0] = R.seqs[R.cur].id;
    args[1] = R.pos;
    if (R.flushed < R.pos) flush(R.pos, 0, NULL);
  }
  char msg[512];
  args[2] = (uint32_t)rrto_lane_settle(msg, sizeof msg);
  rrto_xfer_locked(RRTO_OP_REPLAY_DIVERGE, RRTO_F_NOREPLY, args, 3, msg, strlen(msg), NULL);
  rrto_replay_drop();
}

int rrto_replay_handle(uint16_t op, const uint64_t *args, uint32_t nargs, const void *data,
                       size_t len, struct rrto_reply *rep, int *err) {
  if (!R.blob) return 0;
  if (rrto_lane_lost()) {   /* the session is lost: the client node answers from now on */
    rrto_replay_drop();
    return 0;
  }
  if (R.cur >= 0 && R.pos == R.seqs[R.cur].n) {   /* the inference ended: wrap around */
    if (R.flushed < R.pos) flush(R.pos, 0, NULL);
    R.cur = -1;
  }
  if (R.cur < 0) {   /* a boundary: the next inference may follow any recorded sequence */
    for (uint32_t s = 0; s < R.nseq; s++)
      if (matches(&R.seqs[s].e[0], op, args, nargs, data, len)) {
        R.cur = (int)s;
        break;
      }
    R.pos = R.flushed = 0;
    if (R.cur < 0) {
      diverge();
      return 0;
    }
  }
  const struct entry *e = &R.seqs[R.cur].e[R.pos];
  int m = matches(e, op, args, nargs, data, len);
  if (m == MATCH_PATCH && keep_patch(e, data, len)) m = 0;
  if (!m) {
    diverge();
    return 0;
  }
  R.pos++;
  uint32_t pending = R.pos - R.flushed;
  if (pending == 1) R.pending_since = now_ns();
  switch (e->kind) {
    case KIND_LOCAL:
      rep->nres = e->nres;
      memcpy(rep->res, e->res, 8 * (size_t)e->nres);
      rep->out_len = 0;
      *err = e->err;
      if (pending >= FRONTIER_MAX || (pending >= FRONTIER_BATCH &&
                                      now_ns() - R.pending_since >= FRONTIER_WAIT_NS))
        flush(R.pos, 0, NULL);
      return 1;
    case KIND_INPUT:
      *err = keep_input(data, len);
      if (!*err) *err = e->err;
      return 1;
    default:
      *err = flush(R.pos, 1, rep);
      return 1;
  }
}
