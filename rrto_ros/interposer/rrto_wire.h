/* Framing between the interposer and the client node (a local UNIX stream socket).
 * Little-endian, fixed headers; rrto_ros/protocol/agent_wire.py is the Python side.
 *
 * request:  rrto_req_hdr, nargs x uint64 arguments, len bytes of data
 * reply:    rrto_rep_hdr, nres  x uint64 results,   len bytes of data
 * A request with RRTO_F_NOREPLY gets no reply. */
#ifndef RRTO_WIRE_H
#define RRTO_WIRE_H
#include <stdint.h>

#define RRTO_MAGIC 0x4f545252u        /* "RRTO" */
#define RRTO_PROTO_VERSION 1u
#define RRTO_F_NOREPLY 1u             /* request flag: do not answer */
#define RRTO_F_DEFERRED 2u            /* request flag: the interposer reads the answer later,
                                         when the app synchronises (attach no table to it) */
#define RRTO_R_MESSAGE 1u             /* reply flag: data is a message for the app's log */
#define RRTO_R_TABLE 2u               /* reply flag: a replay table follows the data
                                         (uint32 length, then the table) */
#define RRTO_R_OUTPUT 4u              /* reply flag: device printf text follows the data,
                                         before a table (uint32 length, then the text):
                                         the interposer writes it to the app's stdout */
#define RRTO_MAX_ARGS 16u
#define RRTO_CHUNK (64u << 20)        /* largest data part of one message */
#define RRTO_SOCKET_BUFFER (4 << 20)  /* SO_SNDBUF of both ends: bulk data in fewer writes */
#define RRTO_COPY_CHUNK (4u << 20)    /* copies in `pipelined` travel in pieces this large:
                                         stages overlap, buffers get reused */

enum rrto_mode { RRTO_MODE_RPC = 0, RRTO_MODE_PIPELINED = 1, RRTO_MODE_REPLAY = 2 };

enum rrto_op {
#define RRTO_OP(id, name, may_skip_reply, nargs) RRTO_OP_##name = id,
#include "rrto_ops.def"
#undef RRTO_OP
};

struct rrto_req_hdr {
  uint32_t magic;
  uint16_t op;
  uint16_t flags;
  uint32_t nargs;
  uint32_t len;
};

struct rrto_rep_hdr {
  uint32_t magic;
  int32_t err;
  uint32_t nres;
  uint32_t len;
  uint32_t mode;
  uint32_t flags;
};

/* The replay lane: the interposer's own TCP connection to the server, for REPLAY_RUN only.
 * rrto_ros/protocol/lane_wire.py is the server's side and says why it exists.
 * hello: RRTO_LANE_HELLO + 16-byte session id + the app's random; the server answers its
 * random. Then sealed records (lane_seal.py: uint32 length, XChaCha20-Poly1305 ciphertext):
 * the app's RRTO_LANE_PROOF, answered by RRTO_LANE_ACK; then one frame per record:
 * request: rrto_lane_req, len bytes of payload.
 * reply: rrto_lane_rep, nres x uint64 results, len bytes of data, msg_len bytes of message.
 * A request with RRTO_LANE_QUIET is answered only if it fails. */
#define RRTO_LANE_HELLO "rrto-lane-3\n"
#define RRTO_LANE_PROOF "rrto-lane-3 proof"
#define RRTO_LANE_ACK 0x06
#define RRTO_LANE_RANDOM_BYTES 16
#define RRTO_LANE_KEY_BYTES 32
#define RRTO_LANE_TAG_BYTES 16
#define RRTO_LANE_REQ_MAGIC 0x51524c52u   /* "RLRQ" */
#define RRTO_LANE_REP_MAGIC 0x50524c52u   /* "RLRP" */
#define RRTO_LANE_QUIET 1u

struct rrto_lane_req {
  uint32_t magic;
  uint32_t flags;
  uint64_t seq;
  uint32_t seq_id;
  uint32_t from;
  uint32_t to;
  uint32_t len;
};

struct rrto_lane_rep {
  uint32_t magic;
  int32_t err;
  uint64_t seq;
  uint32_t nres;
  uint32_t len;
  uint32_t msg_len;
  uint32_t pad;
};

/* REPLAY_NOTE: the interposer ran a range on the lane; the client node keeps count.
 * args: sequence id, from, to, RRTO_NOTE_* flags, payload bytes, lane bytes up and down
 * so far, the last blocking round trip's time in ns. A blocking range's note is answered
 * (with the mode and, when withdrawn, an empty table); a lost lane's data is the reason. */
#define RRTO_NOTE_BLOCKING 1u
#define RRTO_NOTE_LOST 2u

#endif
