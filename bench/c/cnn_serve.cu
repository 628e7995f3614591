// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// cnn_serve: the offload baseline's server (mode `offload`, MCOP-style non-transparent
// offloading). It runs cnn_infer's network (examples/cnn_model.cuh) natively on this
// machine's GPU for clients that send only the input and get back only the result:
//
//   request:  3x32x32 float32 image (12288 bytes, little-endian)
//   reply:    10 float32 scores (40 bytes)
//
// as many requests per connection as the client sends; one connection at a time.
// The weights are uploaded and the kernels run once before it listens, so the first
// request costs what every other one does.
//
// usage: cnn_serve [port=0] [lifetime_s=600] [host=127.0.0.1]
//
// Prints "cnn_serve: listening on HOST:PORT" once ready. Stops by itself after lifetime_s
// (SIGALRM), or on SIGTERM/SIGINT. Build (from the repository root):
//   nvcc -cudart shared -O2 -std=c++17 -I examples -o cnn_serve bench/c/cnn_serve.cu

#include "cnn_model.cuh"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

static bool io_all(int fd, void* buf, size_t n, bool reading) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t k = reading ? recv(fd, p, n, 0) : send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

int main(int argc, char** argv) {
  long port = 0, lifetime = 600;
  const char* host = argc > 3 ? argv[3] : "127.0.0.1";
  in_addr addr{};
  if (argc > 4 || (argc > 1 && !parse_long(argv[1], 0, 65535, &port)) ||
      (argc > 2 && !parse_long(argv[2], 1, 86400, &lifetime)) ||
      inet_pton(AF_INET, host, &addr) != 1) {
    fprintf(stderr, "usage: %s [port=0] [lifetime_s=600] [host=127.0.0.1]\n", argv[0]);
    return 2;
  }
  alarm(static_cast<unsigned>(lifetime));   // bounded: SIGALRM ends the process

  const CnnWeights model = cnn_weights();
  CnnDevice dev = cnn_device_init(model);
  std::vector<float> image(CNN_IN_N, 0.0f);
  float scores[NCLASSES];
  cnn_device_forward(dev, image.data(), scores);   // warm-up: module load, first launches

  const int ls = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr = addr;
  socklen_t len = sizeof sa;
  if (ls < 0 || bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      listen(ls, 4) != 0 || getsockname(ls, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    fprintf(stderr, "cnn_serve: cannot listen on %s:%ld: %s\n", host, port, strerror(errno));
    return 1;
  }
  printf("cnn_serve: listening on %s:%d\n", host, ntohs(sa.sin_port));
  fflush(stdout);

  for (;;) {
    const int c = accept(ls, nullptr, nullptr);
    if (c < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "cnn_serve: accept: %s\n", strerror(errno));
      return 1;
    }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    long served = 0;
    while (io_all(c, image.data(), CNN_IN_N * sizeof(float), true)) {
      cnn_device_forward(dev, image.data(), scores);
      if (!io_all(c, scores, sizeof scores, false)) break;
      ++served;
    }
    close(c);
    fprintf(stderr, "cnn_serve: connection closed after %ld requests\n", served);
  }
}
