// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// cnn_infer: repeated inference of a small fixed CNN, the shape of a perception node's
// per-frame work: weights uploaded once, then per frame one input copy in, a handful of
// kernel launches on device-resident buffers, one small result copy out.
//
//   input 3x32x32 -> conv3x3(3->8, pad 1)+bias -> ReLU -> maxpool 2x2   -> 8x16x16
//                 -> conv3x3(8->16, pad 1)+bias -> ReLU -> maxpool 2x2  -> 16x8x8
//                 -> fully connected (1024 -> 10)+bias                  -> 10 scores
//
// usage: cnn_infer [iterations=3] [seed=1]

#include <cuda_runtime.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK(call)                                                                   \
  do {                                                                                \
    cudaError_t err_ = (call);                                                        \
    if (err_ != cudaSuccess) {                                                        \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                  \
              cudaGetErrorString(err_));                                              \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

#define IN_C 3
#define IN_HW 32
#define C1 8
#define C2 16
#define NCLASSES 10
#define FC_IN (C2 * (IN_HW / 4) * (IN_HW / 4))

struct Lcg {
  uint32_t state;
  explicit Lcg(uint32_t seed) : state(seed) {}
  uint32_t next() { return state = state * 1664525u + 1013904223u; }
  float uniform() { return static_cast<float>(next() >> 8) * (1.0f / 8388608.0f) - 1.0f; }
};

// acc + a * b rounded twice, never fused into an FMA (see matmul_tiled.cu).
__device__ __forceinline__ float mul_add(float acc, float a, float b) {
  return __fadd_rn(acc, __fmul_rn(a, b));
}

// One thread per output element (co, y, x) of a cout x h x w map; zero padding of 1.
// Sum order: ci, then ky, then kx; the bias is added last.
__global__ void conv3x3_bias(const float* in, const float* w, const float* bias, float* out,
                             int cin, int cout, int h, int wd) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= cout * h * wd) return;
  const int x = idx % wd;
  const int y = (idx / wd) % h;
  const int co = idx / (wd * h);
  float acc = 0.0f;
  for (int ci = 0; ci < cin; ++ci) {
    for (int ky = 0; ky < 3; ++ky) {
      const int iy = y + ky - 1;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < 3; ++kx) {
        const int ix = x + kx - 1;
        if (ix < 0 || ix >= wd) continue;
        acc = mul_add(acc, in[(ci * h + iy) * wd + ix], w[((co * cin + ci) * 3 + ky) * 3 + kx]);
      }
    }
  }
  out[idx] = acc + bias[co];
}

__global__ void relu_inplace(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// c x h x w -> c x (h/2) x (w/2); h and w even.
__global__ void maxpool2x2(const float* in, float* out, int c, int h, int w) {
  const int oh = h / 2, ow = w / 2;
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= c * oh * ow) return;
  const int x = idx % ow;
  const int y = (idx / ow) % oh;
  const int ch = idx / (ow * oh);
  const float* p = in + (ch * h + 2 * y) * w + 2 * x;
  float m = p[0];
  if (p[1] > m) m = p[1];
  if (p[w] > m) m = p[w];
  if (p[w + 1] > m) m = p[w + 1];
  out[idx] = m;
}

// out[o] = sum_i in[i] * w[o * in_features + i] (in order of i) + bias[o]
__global__ void fc_bias(const float* in, const float* w, const float* bias, float* out,
                        int in_features, int out_features) {
  int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= out_features) return;
  float acc = 0.0f;
  for (int i = 0; i < in_features; ++i) acc = mul_add(acc, in[i], w[o * in_features + i]);
  out[o] = acc + bias[o];
}

// ---- host reference, same operations in the same order ---------------------------------

static void ref_conv(const std::vector<float>& in, const std::vector<float>& w,
                     const std::vector<float>& bias, std::vector<float>& out, int cin,
                     int cout, int h, int wd) {
  out.assign(static_cast<size_t>(cout) * h * wd, 0.0f);
  for (int co = 0; co < cout; ++co) {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < wd; ++x) {
        float acc = 0.0f;
        for (int ci = 0; ci < cin; ++ci) {
          for (int ky = 0; ky < 3; ++ky) {
            const int iy = y + ky - 1;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < 3; ++kx) {
              const int ix = x + kx - 1;
              if (ix < 0 || ix >= wd) continue;
              const float prod =
                  in[(ci * h + iy) * wd + ix] * w[((co * cin + ci) * 3 + ky) * 3 + kx];
              acc = acc + prod;
            }
          }
        }
        out[(co * h + y) * wd + x] = acc + bias[co];
      }
    }
  }
}

static void ref_relu(std::vector<float>& x) {
  for (float& v : x) v = v > 0.0f ? v : 0.0f;
}

static void ref_pool(const std::vector<float>& in, std::vector<float>& out, int c, int h, int w) {
  const int oh = h / 2, ow = w / 2;
  out.assign(static_cast<size_t>(c) * oh * ow, 0.0f);
  for (int ch = 0; ch < c; ++ch) {
    for (int y = 0; y < oh; ++y) {
      for (int x = 0; x < ow; ++x) {
        const float* p = &in[(ch * h + 2 * y) * w + 2 * x];
        float m = p[0];
        if (p[1] > m) m = p[1];
        if (p[w] > m) m = p[w];
        if (p[w + 1] > m) m = p[w + 1];
        out[(ch * oh + y) * ow + x] = m;
      }
    }
  }
}

static void ref_fc(const std::vector<float>& in, const std::vector<float>& w,
                   const std::vector<float>& bias, std::vector<float>& out, int nin, int nout) {
  out.assign(nout, 0.0f);
  for (int o = 0; o < nout; ++o) {
    float acc = 0.0f;
    for (int i = 0; i < nin; ++i) {
      const float prod = in[i] * w[o * nin + i];
      acc = acc + prod;
    }
    out[o] = acc + bias[o];
  }
}

static void fill(std::vector<float>& v, Lcg& rng, float scale) {
  for (float& e : v) e = scale * rng.uniform();
}

static bool parse_int(const char* s, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  const long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

int main(int argc, char** argv) {
  long iterations = 3, seed = 1;
  if (argc > 3 || (argc > 1 && !parse_int(argv[1], 0, 1000000, &iterations)) ||
      (argc > 2 && !parse_int(argv[2], 0, 0xffffffffL, &seed))) {
    fprintf(stderr, "usage: %s [iterations=3] [seed=1]\n", argv[0]);
    return 2;
  }

  // Fixed weights, from a constant seed (independent of the image seed).
  Lcg wrng(20240601u);
  std::vector<float> w1(C1 * IN_C * 9), b1(C1), w2(C2 * C1 * 9), b2(C2);
  std::vector<float> wfc(NCLASSES * FC_IN), bfc(NCLASSES);
  fill(w1, wrng, 0.35f);
  fill(b1, wrng, 0.1f);
  fill(w2, wrng, 0.2f);
  fill(b2, wrng, 0.1f);
  fill(wfc, wrng, 0.06f);
  fill(bfc, wrng, 0.1f);

  const int in_n = IN_C * IN_HW * IN_HW;
  const int a1_n = C1 * IN_HW * IN_HW, p1_n = a1_n / 4;
  const int a2_n = C2 * (IN_HW / 2) * (IN_HW / 2), p2_n = a2_n / 4;

  // Every device buffer is allocated once, up front.
  float *d_w1, *d_b1, *d_w2, *d_b2, *d_wfc, *d_bfc;
  float *d_in, *d_a1, *d_p1, *d_a2, *d_p2, *d_scores;
  CHECK(cudaMalloc(&d_w1, w1.size() * sizeof(float)));
  CHECK(cudaMalloc(&d_b1, b1.size() * sizeof(float)));
  CHECK(cudaMalloc(&d_w2, w2.size() * sizeof(float)));
  CHECK(cudaMalloc(&d_b2, b2.size() * sizeof(float)));
  CHECK(cudaMalloc(&d_wfc, wfc.size() * sizeof(float)));
  CHECK(cudaMalloc(&d_bfc, bfc.size() * sizeof(float)));
  CHECK(cudaMalloc(&d_in, in_n * sizeof(float)));
  CHECK(cudaMalloc(&d_a1, a1_n * sizeof(float)));
  CHECK(cudaMalloc(&d_p1, p1_n * sizeof(float)));
  CHECK(cudaMalloc(&d_a2, a2_n * sizeof(float)));
  CHECK(cudaMalloc(&d_p2, p2_n * sizeof(float)));
  CHECK(cudaMalloc(&d_scores, NCLASSES * sizeof(float)));
  CHECK(cudaMemcpy(d_w1, w1.data(), w1.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_b1, b1.data(), b1.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_w2, w2.data(), w2.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_b2, b2.data(), b2.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_wfc, wfc.data(), wfc.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_bfc, bfc.data(), bfc.size() * sizeof(float), cudaMemcpyHostToDevice));

  const int block = 256;
  auto blocks = [&](int n) { return (n + block - 1) / block; };
  std::vector<float> image(in_n), ra1, rp1, ra2, rp2, rscores;
  float scores[NCLASSES];
  int failures = 0;

  for (long it = 0; it < iterations; ++it) {
    // A different image per iteration, a pure function of (seed, iteration).
    Lcg irng(static_cast<uint32_t>(seed) * 2654435761u + static_cast<uint32_t>(it) * 40503u +
             12345u);
    for (float& v : image) v = 0.5f * irng.uniform() + 0.5f;  // [0, 1)

    CHECK(cudaMemcpy(d_in, image.data(), in_n * sizeof(float), cudaMemcpyHostToDevice));
    conv3x3_bias<<<blocks(a1_n), block>>>(d_in, d_w1, d_b1, d_a1, IN_C, C1, IN_HW, IN_HW);
    relu_inplace<<<blocks(a1_n), block>>>(d_a1, a1_n);
    maxpool2x2<<<blocks(p1_n), block>>>(d_a1, d_p1, C1, IN_HW, IN_HW);
    conv3x3_bias<<<blocks(a2_n), block>>>(d_p1, d_w2, d_b2, d_a2, C1, C2, IN_HW / 2,
                                          IN_HW / 2);
    relu_inplace<<<blocks(a2_n), block>>>(d_a2, a2_n);
    maxpool2x2<<<blocks(p2_n), block>>>(d_a2, d_p2, C2, IN_HW / 2, IN_HW / 2);
    fc_bias<<<blocks(NCLASSES), block>>>(d_p2, d_wfc, d_bfc, d_scores, FC_IN, NCLASSES);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(scores, d_scores, sizeof(scores), cudaMemcpyDeviceToHost));

    ref_conv(image, w1, b1, ra1, IN_C, C1, IN_HW, IN_HW);
    ref_relu(ra1);
    ref_pool(ra1, rp1, C1, IN_HW, IN_HW);
    ref_conv(rp1, w2, b2, ra2, C1, C2, IN_HW / 2, IN_HW / 2);
    ref_relu(ra2);
    ref_pool(ra2, rp2, C2, IN_HW / 2, IN_HW / 2);
    ref_fc(rp2, wfc, bfc, rscores, FC_IN, NCLASSES);

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

  float* bufs[] = {d_w1, d_b1, d_w2, d_b2, d_wfc, d_bfc, d_in, d_a1, d_p1, d_a2, d_p2, d_scores};
  for (float* p : bufs) CHECK(cudaFree(p));

  printf("cnn_infer: %ld inferences %s\n", iterations, failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
