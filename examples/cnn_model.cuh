// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// The small fixed CNN of cnn_infer.cu, shared with the offload baseline's server
// (bench/c/cnn_serve.cu) so both run exactly the same kernels on the same weights:
//
//   input 3x32x32 -> conv3x3(3->8, pad 1)+bias -> ReLU -> maxpool 2x2   -> 8x16x16
//                 -> conv3x3(8->16, pad 1)+bias -> ReLU -> maxpool 2x2  -> 16x8x8
//                 -> fully connected (1024 -> 10)+bias                  -> 10 scores
//
// Weights and images come from a fixed LCG, so the inputs are reproducible anywhere
// (rrto_ros/bench/offload.py generates the same images in Python).

#ifndef RRTO_EXAMPLES_CNN_MODEL_CUH
#define RRTO_EXAMPLES_CNN_MODEL_CUH

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "example_util.cuh"

#define IN_C 3
#define IN_HW 32
#define C1 8
#define C2 16
#define NCLASSES 10
#define FC_IN (C2 * (IN_HW / 4) * (IN_HW / 4))

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

inline void ref_conv(const std::vector<float>& in, const std::vector<float>& w,
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

inline void ref_relu(std::vector<float>& x) {
  for (float& v : x) v = v > 0.0f ? v : 0.0f;
}

inline void ref_pool(const std::vector<float>& in, std::vector<float>& out, int c, int h, int w) {
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

inline void ref_fc(const std::vector<float>& in, const std::vector<float>& w,
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

inline void fill(std::vector<float>& v, Lcg& rng, float scale) {
  for (float& e : v) e = scale * rng.uniform();
}

// ---- the model: weights, inputs, one inference on the device ------------------------

static const int CNN_IN_N = IN_C * IN_HW * IN_HW;
static const int CNN_A1_N = C1 * IN_HW * IN_HW, CNN_P1_N = CNN_A1_N / 4;
static const int CNN_A2_N = C2 * (IN_HW / 2) * (IN_HW / 2), CNN_P2_N = CNN_A2_N / 4;
static const int CNN_BLOCK = 256;

inline int cnn_blocks(int n) { return (n + CNN_BLOCK - 1) / CNN_BLOCK; }

struct CnnWeights {
  std::vector<float> w1, b1, w2, b2, wfc, bfc;
};

// Fixed weights, from a constant seed (independent of the image seed).
inline CnnWeights cnn_weights() {
  Lcg wrng(20240601u);
  CnnWeights m{std::vector<float>(C1 * IN_C * 9), std::vector<float>(C1),
               std::vector<float>(C2 * C1 * 9), std::vector<float>(C2),
               std::vector<float>(NCLASSES * FC_IN), std::vector<float>(NCLASSES)};
  fill(m.w1, wrng, 0.35f);
  fill(m.b1, wrng, 0.1f);
  fill(m.w2, wrng, 0.2f);
  fill(m.b2, wrng, 0.1f);
  fill(m.wfc, wrng, 0.06f);
  fill(m.bfc, wrng, 0.1f);
  return m;
}

// A different image per iteration, a pure function of (seed, iteration), values in [0, 1).
inline void cnn_image(long seed, long it, std::vector<float>& image) {
  image.resize(CNN_IN_N);
  Lcg irng(static_cast<uint32_t>(seed) * 2654435761u + static_cast<uint32_t>(it) * 40503u +
           12345u);
  for (float& v : image) v = 0.5f * irng.uniform() + 0.5f;
}

// The host reference of one inference, same operations in the same order.
inline void cnn_reference(const CnnWeights& m, const std::vector<float>& image,
                          std::vector<float>& scores) {
  std::vector<float> a1, p1, a2, p2;
  ref_conv(image, m.w1, m.b1, a1, IN_C, C1, IN_HW, IN_HW);
  ref_relu(a1);
  ref_pool(a1, p1, C1, IN_HW, IN_HW);
  ref_conv(p1, m.w2, m.b2, a2, C1, C2, IN_HW / 2, IN_HW / 2);
  ref_relu(a2);
  ref_pool(a2, p2, C2, IN_HW / 2, IN_HW / 2);
  ref_fc(p2, m.wfc, m.bfc, scores, FC_IN, NCLASSES);
}

// Every device buffer, allocated once up front; the weights uploaded once.
struct CnnDevice {
  float *w1, *b1, *w2, *b2, *wfc, *bfc;
  float *in, *a1, *p1, *a2, *p2, *scores;
};

inline CnnDevice cnn_device_init(const CnnWeights& m) {
  CnnDevice d;
  CHECK(cudaMalloc(&d.w1, m.w1.size() * sizeof(float)));
  CHECK(cudaMalloc(&d.b1, m.b1.size() * sizeof(float)));
  CHECK(cudaMalloc(&d.w2, m.w2.size() * sizeof(float)));
  CHECK(cudaMalloc(&d.b2, m.b2.size() * sizeof(float)));
  CHECK(cudaMalloc(&d.wfc, m.wfc.size() * sizeof(float)));
  CHECK(cudaMalloc(&d.bfc, m.bfc.size() * sizeof(float)));
  CHECK(cudaMalloc(&d.in, CNN_IN_N * sizeof(float)));
  CHECK(cudaMalloc(&d.a1, CNN_A1_N * sizeof(float)));
  CHECK(cudaMalloc(&d.p1, CNN_P1_N * sizeof(float)));
  CHECK(cudaMalloc(&d.a2, CNN_A2_N * sizeof(float)));
  CHECK(cudaMalloc(&d.p2, CNN_P2_N * sizeof(float)));
  CHECK(cudaMalloc(&d.scores, NCLASSES * sizeof(float)));
  CHECK(cudaMemcpy(d.w1, m.w1.data(), m.w1.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d.b1, m.b1.data(), m.b1.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d.w2, m.w2.data(), m.w2.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d.b2, m.b2.data(), m.b2.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d.wfc, m.wfc.data(), m.wfc.size() * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d.bfc, m.bfc.data(), m.bfc.size() * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}

// One inference: one input copy in, seven launches, one result copy out. With relu_twice
// the first ReLU runs twice (same result, since ReLU is idempotent; a different call
// sequence, which cnn_infer uses to test the replayer's divergence handling).
inline void cnn_device_forward(const CnnDevice& d, const float* image, float* scores,
                               bool relu_twice = false) {
  CHECK(cudaMemcpy(d.in, image, CNN_IN_N * sizeof(float), cudaMemcpyHostToDevice));
  conv3x3_bias<<<cnn_blocks(CNN_A1_N), CNN_BLOCK>>>(d.in, d.w1, d.b1, d.a1, IN_C, C1, IN_HW,
                                                    IN_HW);
  relu_inplace<<<cnn_blocks(CNN_A1_N), CNN_BLOCK>>>(d.a1, CNN_A1_N);
  if (relu_twice) relu_inplace<<<cnn_blocks(CNN_A1_N), CNN_BLOCK>>>(d.a1, CNN_A1_N);
  maxpool2x2<<<cnn_blocks(CNN_P1_N), CNN_BLOCK>>>(d.a1, d.p1, C1, IN_HW, IN_HW);
  conv3x3_bias<<<cnn_blocks(CNN_A2_N), CNN_BLOCK>>>(d.p1, d.w2, d.b2, d.a2, C1, C2, IN_HW / 2,
                                                    IN_HW / 2);
  relu_inplace<<<cnn_blocks(CNN_A2_N), CNN_BLOCK>>>(d.a2, CNN_A2_N);
  maxpool2x2<<<cnn_blocks(CNN_P2_N), CNN_BLOCK>>>(d.a2, d.p2, C2, IN_HW / 2, IN_HW / 2);
  fc_bias<<<cnn_blocks(NCLASSES), CNN_BLOCK>>>(d.p2, d.wfc, d.bfc, d.scores, FC_IN, NCLASSES);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpy(scores, d.scores, NCLASSES * sizeof(float), cudaMemcpyDeviceToHost));
}

inline void cnn_device_free(CnnDevice& d) {
  float* bufs[] = {d.w1, d.b1, d.w2, d.b2, d.wfc, d.bfc, d.in, d.a1, d.p1, d.a2, d.p2, d.scores};
  for (float* p : bufs) CHECK(cudaFree(p));
}

#endif  // RRTO_EXAMPLES_CNN_MODEL_CUH
