// Copyright 2026 rrto_ros authors. Apache-2.0.
//
// The fixed CNN of cnn_infer.cu, shared with the offload baseline's server
// (bench/c/cnn_serve.cu) so both run exactly the same kernels on the same weights. A small
// VGG-style network: eight 3x3 convolutions (each + bias, then ReLU), two 2x2 max pools,
// one fully connected layer; 19 kernel launches per inference, the order of magnitude of a
// real perception model's layer count (KAPAO makes ~400 launches per inference, the paper's
// Table II), which is what makes per-call offloading slow:
//
//   input 3x32x32 -> conv(3->8) conv(8->8) conv(8->8)        -> maxpool -> 8x16x16
//                 -> conv(8->16) conv(16->16) conv(16->16)    -> maxpool -> 16x8x8
//                 -> conv(16->16) conv(16->16)                           -> 16x8x8
//                 -> fully connected (1024 -> 10)+bias                   -> 10 scores
//
// Weights and images come from a fixed LCG, so the inputs are reproducible anywhere
// (rrto_ros/bench/offload.py generates the same images in Python).

#ifndef RRTO_EXAMPLES_CNN_MODEL_CUH
#define RRTO_EXAMPLES_CNN_MODEL_CUH

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <vector>

#include "example_util.cuh"

#define IN_C 3
#define IN_HW 32
#define NCLASSES 10
#define FC_IN (16 * (IN_HW / 4) * (IN_HW / 4))

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

// One convolution layer: cin x hw x hw in, cout x hw x hw out (ReLU after it), then a 2x2
// max pool when pool is set. Weights uniform in [-scale, scale), about sqrt(6 / fan-in), so
// activations keep their size through the layers.
struct CnnConv {
  int cin, cout, hw;
  bool pool;
  float scale;
};
static const CnnConv CNN_CONVS[] = {
    {IN_C, 8, IN_HW, false, 0.45f},    {8, 8, IN_HW, false, 0.3f},
    {8, 8, IN_HW, true, 0.3f},         {8, 16, IN_HW / 2, false, 0.3f},
    {16, 16, IN_HW / 2, false, 0.2f},  {16, 16, IN_HW / 2, true, 0.2f},
    {16, 16, IN_HW / 4, false, 0.2f},  {16, 16, IN_HW / 4, false, 0.2f},
};
static const int CNN_NCONV = sizeof(CNN_CONVS) / sizeof(CNN_CONVS[0]);
static const int CNN_IN_N = IN_C * IN_HW * IN_HW;
static const int CNN_MAX_N = 8 * IN_HW * IN_HW;   // the largest activation map
static const int CNN_BLOCK = 256;

inline int cnn_blocks(int n) { return (n + CNN_BLOCK - 1) / CNN_BLOCK; }

struct CnnWeights {
  std::vector<float> w[CNN_NCONV], b[CNN_NCONV], wfc, bfc;
};

// Fixed weights, from a constant seed (independent of the image seed).
inline CnnWeights cnn_weights() {
  Lcg wrng(20240601u);
  CnnWeights m;
  for (int l = 0; l < CNN_NCONV; ++l) {
    const CnnConv& c = CNN_CONVS[l];
    m.w[l].resize(static_cast<size_t>(c.cout) * c.cin * 9);
    m.b[l].resize(c.cout);
    fill(m.w[l], wrng, c.scale);
    fill(m.b[l], wrng, 0.1f);
  }
  m.wfc.resize(static_cast<size_t>(NCLASSES) * FC_IN);
  m.bfc.resize(NCLASSES);
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
  std::vector<float> x = image, y;
  for (int l = 0; l < CNN_NCONV; ++l) {
    const CnnConv& c = CNN_CONVS[l];
    ref_conv(x, m.w[l], m.b[l], y, c.cin, c.cout, c.hw, c.hw);
    ref_relu(y);
    if (c.pool) {
      ref_pool(y, x, c.cout, c.hw, c.hw);
    } else {
      x.swap(y);
    }
  }
  ref_fc(x, m.wfc, m.bfc, scores, FC_IN, NCLASSES);
}

// Every device buffer, allocated once up front; the weights uploaded once. Activations
// ping-pong between two buffers (act[0], act[1]) sized for the largest map.
struct CnnDevice {
  float *w[CNN_NCONV], *b[CNN_NCONV], *wfc, *bfc;
  float *in, *act[2], *scores;
};

inline float* cnn_upload(const std::vector<float>& v) {
  float* p = nullptr;
  CHECK(cudaMalloc(&p, v.size() * sizeof(float)));
  CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  return p;
}

inline CnnDevice cnn_device_init(const CnnWeights& m) {
  CnnDevice d;
  for (int l = 0; l < CNN_NCONV; ++l) {
    d.w[l] = cnn_upload(m.w[l]);
    d.b[l] = cnn_upload(m.b[l]);
  }
  d.wfc = cnn_upload(m.wfc);
  d.bfc = cnn_upload(m.bfc);
  CHECK(cudaMalloc(&d.in, CNN_IN_N * sizeof(float)));
  CHECK(cudaMalloc(&d.act[0], CNN_MAX_N * sizeof(float)));
  CHECK(cudaMalloc(&d.act[1], CNN_MAX_N * sizeof(float)));
  CHECK(cudaMalloc(&d.scores, NCLASSES * sizeof(float)));
  return d;
}

// One inference: one input copy in, 19 launches, one result copy out. With relu_twice the
// first ReLU runs twice (same result, since ReLU is idempotent; a different call sequence,
// which cnn_infer uses to test the replayer's divergence handling). host_us > 0 sleeps that
// long after each layer's launches, like a framework's host-side work between operators.
inline void cnn_device_forward(const CnnDevice& d, const float* image, float* scores,
                               bool relu_twice = false, long host_us = 0) {
  CHECK(cudaMemcpy(d.in, image, CNN_IN_N * sizeof(float), cudaMemcpyHostToDevice));
  const float* x = d.in;
  int cur = 0;   // the conv writes act[cur]; a pool then writes act[1 - cur]
  for (int l = 0; l < CNN_NCONV; ++l) {
    const CnnConv& c = CNN_CONVS[l];
    const int n = c.cout * c.hw * c.hw;
    float* y = d.act[cur];
    conv3x3_bias<<<cnn_blocks(n), CNN_BLOCK>>>(x, d.w[l], d.b[l], y, c.cin, c.cout, c.hw,
                                               c.hw);
    relu_inplace<<<cnn_blocks(n), CNN_BLOCK>>>(y, n);
    if (relu_twice && l == 0) relu_inplace<<<cnn_blocks(n), CNN_BLOCK>>>(y, n);
    if (host_us > 0) usleep(static_cast<useconds_t>(host_us));
    if (c.pool) {
      float* p = d.act[1 - cur];
      maxpool2x2<<<cnn_blocks(n / 4), CNN_BLOCK>>>(y, p, c.cout, c.hw, c.hw);
      x = p;
    } else {
      x = y;
      cur = 1 - cur;
    }
  }
  fc_bias<<<cnn_blocks(NCLASSES), CNN_BLOCK>>>(x, d.wfc, d.bfc, d.scores, FC_IN, NCLASSES);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpy(scores, d.scores, NCLASSES * sizeof(float), cudaMemcpyDeviceToHost));
}

inline void cnn_device_free(CnnDevice& d) {
  for (int l = 0; l < CNN_NCONV; ++l) {
    CHECK(cudaFree(d.w[l]));
    CHECK(cudaFree(d.b[l]));
  }
  float* bufs[] = {d.wfc, d.bfc, d.in, d.act[0], d.act[1], d.scores};
  for (float* p : bufs) CHECK(cudaFree(p));
}

#endif  // RRTO_EXAMPLES_CNN_MODEL_CUH
