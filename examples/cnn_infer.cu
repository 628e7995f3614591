// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// cnn_infer: repeated inference of a small fixed CNN, the shape of a perception node's
// per-frame work: weights uploaded once, then per frame one input copy in, 19 kernel
// launches on device-resident buffers, one small result copy out. The model (kernels,
// weights, shapes: eight 3x3 convolutions with ReLU, two max pools, one fully connected
// layer) is in cnn_model.cuh, shared with the offload baseline.
//
// usage: cnn_infer [iterations=3] [seed=1] [diverge_at=-1]
//
// diverge_at: in that one iteration, the first ReLU runs twice (harmless: ReLU is
// idempotent), so the call sequence changes in the middle of an inference, the case the
// replayer must detect and leave without a wrong result.
//
// With CNN_INFER_TIMING=1 in the environment, each inference's latency (input copy in to
// result copy out, as the app sees it) is also printed to stderr, for the benchmarks; the
// normal output and the CUDA calls made are the same either way. CNN_INFER_HOST_US=N
// sleeps N microseconds after each layer (host work between operators, as a framework
// has), which spreads an inference's calls out in time.

#include "cnn_model.cuh"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  long iterations = 3, seed = 1, diverge_at = -1;
  if (argc > 4 || (argc > 1 && !parse_long(argv[1], 0, 1000000, &iterations)) ||
      (argc > 2 && !parse_long(argv[2], 0, 0xffffffffL, &seed)) ||
      (argc > 3 && !parse_long(argv[3], -1, 1000000, &diverge_at))) {
    fprintf(stderr, "usage: %s [iterations=3] [seed=1] [diverge_at=-1]\n", argv[0]);
    return 2;
  }
  const char* timing_env = getenv("CNN_INFER_TIMING");
  const bool timing = timing_env && *timing_env && strcmp(timing_env, "0") != 0;
  const char* host_env = getenv("CNN_INFER_HOST_US");
  long host_us = 0;
  if (host_env && *host_env && !parse_long(host_env, 0, 1000000, &host_us)) {
    fprintf(stderr, "cnn_infer: CNN_INFER_HOST_US=%s is not a number of microseconds\n",
            host_env);
    return 2;
  }

  const CnnWeights model = cnn_weights();
  CnnDevice dev = cnn_device_init(model);

  std::vector<float> image, rscores;
  float scores[NCLASSES];
  int failures = 0;

  for (long it = 0; it < iterations; ++it) {
    cnn_image(seed, it, image);

    const auto t0 = std::chrono::steady_clock::now();
    cnn_device_forward(dev, image.data(), scores, it == diverge_at, host_us);
    const auto t1 = std::chrono::steady_clock::now();
    if (timing) {
      fprintf(stderr, "cnn_infer: timing infer %ld %.3f us\n", it,
              std::chrono::duration<double, std::micro>(t1 - t0).count());
    }

    cnn_reference(model, image, rscores);

    int best = 0;
    bool ok = true;
    for (int k = 0; k < NCLASSES; ++k) {
      if (scores[k] > scores[best]) best = k;
      // 1e-3 relative, plus a tiny absolute term for scores that happen to be near zero.
      if (!(std::fabs(scores[k] - rscores[k]) <= 1e-3f * std::fabs(rscores[k]) + 1e-6f)) {
        fprintf(stderr, "cnn_infer: infer %ld score %d = %.9g expected %.9g\n", it, k,
                scores[k], rscores[k]);
        ok = false;
      }
    }
    printf("infer %ld: class=%d scores=", it, best);
    for (int k = 0; k < NCLASSES; ++k) printf("%s%.5f", k ? " " : "", scores[k]);
    printf("%s\n", ok ? "" : " FAIL");
    failures += !ok;
  }

  cnn_device_free(dev);

  printf("cnn_infer: %ld inferences %s\n", iterations, failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
