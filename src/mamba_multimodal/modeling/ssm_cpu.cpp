// Fused selective scan and Coupled Mamba's coupled scan for CPUs (OpenMP), forward and backward.
//
// Built on first use by ssm_cpu.py with the system C++ compiler and loaded through ctypes: no torch headers,
// no ninja, about a second to compile. All tensors are float32; the Python side converts. They are contiguous but for
// the selective scan's (b, d, l) tensors, which it reads and writes through their strides (`Layout`).
//
// Glossary: b batch, d channels, l sequence length, n state size, Δ (delta) input-dependent step.
//   h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t x_t ;  y_t = C_t · h_t + D x_t ;  out_t = y_t * silu(z_t)
// Layouts: u, delta, z, out: (b, d, l) (the selective scan's: any strides); A: (d, n); B, C: (b, l, n) (time-major, so B_t is one cache line);
// D, delta_bias: (d,); initial_state (h_{-1}, nullable: zeros) and last_state: (b, d, n).
//
// Why this is fast: one (b, d) channel is a sequential loop over l whose state (n floats) stays in cache, and
// channels run in parallel. Both scans run eight channels of a batch element together, one per lane of an AVX2
// vector (`Block`): each step's softplus, gate and sum over n are then vector work too, where one channel alone
// vectorises only over n (two vectors at n = 16) and does them per channel (the selective scan's forward 3x faster at
// n = 16, its backward 2x). exp, sigmoid and softplus are inlined into the vector loops (`inline_exp`): libm's
// vectorised exp is a call per vector that spills the loop's registers. Nothing of size (b, d, l, n) is ever
// materialised: the backward recomputes a block's states into per-thread buffers of l * n * 8 floats, and all
// (batch element, block) pairs run in one parallel region.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <omp.h>

namespace {

// exp(x) for the scans' decays exp(Δ A) and gates, within 1 ulp of exp for -87 <= x <= 88, 0 below -87 (where
// float32's exp leaves the normal range) and exp(88) above. Written so that the compiler inlines it into the vector
// loops: the vectorised std::exp is a call into libmvec per vector, which spills the loop's registers and cost the
// scans about two thirds of their time at n = 64. x = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in two for an exact
// k ln 2), exp(r) by Cephes' degree-7 polynomial for expf, 2^k built in the exponent bits.
inline float inline_exp(float x) {
  const float clamped = std::min(x, 88.0f);
  const float k = std::nearbyint(clamped * 1.44269504088896341f);
  const float r = std::fma(k, 2.12194440e-4f, std::fma(k, -0.693359375f, clamped));  // fused: fast-math may not merge
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent_bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &exponent_bits, sizeof(scale));
  return x < -87.0f ? 0.0f : p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + inline_exp(-x)); }

// log(1 + exp(x)) = max(x, 0) + log1p(e), e = exp(-|x|) in (0, 1], inlined as `inline_exp` (a libmvec log1p and exp
// per step cost the selective scan's forward a sixth of its time). log1p(e) = 2 atanh(s) with s = e / (2 + e) in
// (0, 1/3]: the odd series 2 (s + s^3/3 + ... + s^17/17) leaves out less than 1e-9 of it. Within 5 ulp of
// log1p(exp(x)) (1 ulp at most x); below x = -87, 0 where the exact value is under 1.7e-38.
inline float softplus(float x) {
  const float e = inline_exp(-std::fabs(x));
  const float s = e / (2.0f + e), s2 = s * s;
  float series = 1.0f / 17.0f;
  for (const float coefficient : {1.0f / 15.0f, 1.0f / 13.0f, 1.0f / 11.0f, 1.0f / 9.0f, 1.0f / 7.0f, 1.0f / 5.0f,
                                  1.0f / 3.0f, 1.0f}) {
    series = series * s2 + coefficient;
  }
  return std::max(x, 0.0f) + 2.0f * s * series;
}

// ------------------------------------------------------------------------------------------------ lane blocks
// Channels scanned together: one vector of float32, one channel per lane: sixteen lanes where the compiler targets
// AVX-512 (-march=native), else AVX2's eight. Scanning one channel alone vectorises only over the n state entries (two
// vectors at n = 16) and leaves its step's scalar work (the softplus, the gate's sigmoid, the sum of C_t · h_t over n)
// per channel; across lanes all of it is vector work. Sixteen lanes against eight, forward + backward on a Zen 4 EPYC
// (AVX-512 executed in two 256-bit halves), 2 threads: 1.13-1.22x at the demo LM's training shape (b 64, d 256, l 20,
// n 16), 1.14x at 130m's prefill (b 1, d 1536, l 512), 1.33x with a quarter of the lanes dead (d 40, n 8).
#ifdef __AVX512F__
constexpr int64_t kLanes = 16;
#else
constexpr int64_t kLanes = 8;
#endif

// Up to kLanes channels (b, d0 .. d0 + count - 1) of one batch element, scanned together. Lanes past `count` (the
// dim % kLanes channels left over at the end of a row) repeat the last live channel's inputs and write nothing, so
// every channel runs the same code. Per-lane buffers are lane-major: x[i][lane] is x[i * kLanes + lane].
struct Block {
  int64_t b, d0, count, dim;
  float live[kLanes];  // 1 for a live lane, 0 for a dead one

  Block(int64_t dim, int64_t b, int64_t d0) : b(b), d0(d0), count(std::min(kLanes, dim - d0)), dim(dim) {
    for (int64_t c = 0; c < kLanes; ++c) live[c] = c < count ? 1.0f : 0.0f;
  }
  int64_t channel(int64_t c) const { return d0 + std::min(c, count - 1); }

  // Each lane's value of a per-channel vector (d,) (nullable: zeros) into lanes (kLanes,).
  void load_values(const float* per_channel, float* lanes) const {
    for (int64_t c = 0; c < kLanes; ++c) lanes[c] = per_channel ? per_channel[channel(c)] : 0.0f;
  }
  // Each lane's row of a per-channel matrix (d, n) into lane-major (n, kLanes).
  void load_rows(const float* matrix, int64_t n, float* lanes) const {
    for (int64_t c = 0; c < kLanes; ++c) {
      for (int64_t i = 0; i < n; ++i) lanes[i * kLanes + c] = matrix[channel(c) * n + i];
    }
  }
  // Lane-major (n, kLanes) copy of per-channel states (b, d, n) (nullable: zeros); dead lanes get zeros.
  void load_states(const float* states, int64_t n, float* lanes) const {
    for (int64_t c = 0; c < kLanes; ++c) {
      const float* from = states && c < count ? states + (b * dim + d0 + c) * n : nullptr;
      for (int64_t i = 0; i < n; ++i) lanes[i * kLanes + c] = from ? from[i] : 0.0f;
    }
  }
  // The live lanes of lane-major (n, kLanes) into per-channel states (b, d, n).
  void store_states(const float* lanes, int64_t n, float* states) const {
    for (int64_t c = 0; c < count; ++c) {
      for (int64_t i = 0; i < n; ++i) states[(b * dim + d0 + c) * n + i] = lanes[i * kLanes + c];
    }
  }
};

// Where element (b, d, t) of a (b, d, l) tensor lives: b * batch + d * channel + t * time (strides in elements).
// The selective scan reads and writes its (b, d, l) tensors in whatever layout the caller has them: channels-first
// and contiguous (1 along time), or a view of a tokens-last tensor (1 along channels: a projection's output
// transposed), which would otherwise cost a transposing copy per tensor and call.
struct Layout {
  int64_t batch, channel, time;
  static Layout contiguous(int64_t dim, int64_t len) { return {dim * len, len, 1}; }
};

// A block's lanes in one (b, d, l) tensor: lane c's element at step t is at start[c] + t * step.
struct LaneRows {
  int64_t start[kLanes];
  int64_t step;

  LaneRows(const Block& block, const Layout& layout) : step(layout.time) {
    for (int64_t c = 0; c < kLanes; ++c) start[c] = block.b * layout.batch + block.channel(c) * layout.channel;
  }
  int64_t at(int64_t c, int64_t t) const { return start[c] + t * step; }
  // Writes the live lanes' values at step t. A loop of its own: a conditional store (AVX2 has no masked scatter)
  // inside a lane loop keeps the compiler from vectorising the rest of it.
  void store(const float* values, float* tensor, int64_t t, int64_t count) const {
    for (int64_t c = 0; c < count; ++c) tensor[at(c, t)] = values[c];
  }
};

// One thread's sums of the gradients that add over channels (dB, dC: (M, b, l, n)) or over batch elements (dA:
// (M, d, n); dD, ddelta_bias: (M, d)), for M modalities (1 for the selective scan); `add_shares` adds them over
// threads. dB and dC gather per lane first (lane-major (M, l, n, kLanes)) and are summed over lanes once per batch
// element rather than once per block.
struct GradientShare {
  int64_t modalities, batch, dim, len, nstate;
  std::vector<float> dB_lanes, dC_lanes, dA, dD, ddelta_bias, dB, dC;
  int64_t lanes_batch = -1;  // the batch element whose lane sums dB_lanes / dC_lanes hold

  GradientShare(int64_t modalities, int64_t batch, int64_t dim, int64_t len, int64_t nstate)
      : modalities(modalities), batch(batch), dim(dim), len(len), nstate(nstate),
        dB_lanes(modalities * len * nstate * kLanes), dC_lanes(modalities * len * nstate * kLanes),
        dA(modalities * dim * nstate), dD(modalities * dim), ddelta_bias(modalities * dim),
        dB(modalities * batch * len * nstate), dC(modalities * batch * len * nstate) {}

  // The lane sums of modality m at step t, (n, kLanes) each.
  float* dB_lanes_at(int64_t m, int64_t t) { return dB_lanes.data() + (m * len + t) * nstate * kLanes; }
  float* dC_lanes_at(int64_t m, int64_t t) { return dC_lanes.data() + (m * len + t) * nstate * kLanes; }

  // Makes the lane sums those of batch element `next` (-1: none): adds what they hold into dB and dC first.
  void switch_batch(int64_t next) {
    if (next == lanes_batch) return;
    if (lanes_batch >= 0) {
      const int64_t steps = len * nstate;
      for (int64_t m = 0; m < modalities; ++m) {
        float* dB_mb = dB.data() + (m * batch + lanes_batch) * steps;
        float* dC_mb = dC.data() + (m * batch + lanes_batch) * steps;
        const float* dB_m = dB_lanes.data() + m * steps * kLanes;
        const float* dC_m = dC_lanes.data() + m * steps * kLanes;
        for (int64_t j = 0; j < steps; ++j) {
          float sum_B = 0.0f, sum_C = 0.0f;
#pragma omp simd reduction(+ : sum_B, sum_C)
          for (int64_t c = 0; c < kLanes; ++c) {
            sum_B += dB_m[j * kLanes + c];
            sum_C += dC_m[j * kLanes + c];
          }
          dB_mb[j] += sum_B;
          dC_mb[j] += sum_C;
        }
      }
      std::fill(dB_lanes.begin(), dB_lanes.end(), 0.0f);
      std::fill(dC_lanes.begin(), dC_lanes.end(), 0.0f);
    }
    lanes_batch = next;
  }

  // Adds modality m's per-lane dA (n, kLanes), dD and ddelta_bias (kLanes,) of a block's live lanes.
  void add_block(const Block& block, int64_t m, const float* dA_lanes, const float* dD_lanes,
                 const float* dbias_lanes) {
    for (int64_t c = 0; c < block.count; ++c) {
      const int64_t d = m * dim + block.d0 + c;
      for (int64_t i = 0; i < nstate; ++i) dA[d * nstate + i] += dA_lanes[i * kLanes + c];
      dD[d] += dD_lanes[c];
      ddelta_bias[d] += dbias_lanes[c];
    }
  }
};

// Adds every thread's share of one gradient into `total` (nullable: not wanted), inside a parallel region: total[j]
// (+)= Σ_thread part[j], accumulating into what the caller zeroed or overwriting.
void add_shares(const std::vector<GradientShare>& shares, std::vector<float> GradientShare::*part, float* total,
                bool accumulate) {
  if (!total) return;
  const int64_t size = static_cast<int64_t>((shares.front().*part).size());
#pragma omp for schedule(static)
  for (int64_t j = 0; j < size; ++j) {
    float sum = accumulate ? total[j] : 0.0f;
    for (const GradientShare& share : shares) sum += (share.*part)[j];
    total[j] = sum;
  }
}

// Adds every thread's share into the caller's gradients (dA, dD, ddelta_bias zeroed by the caller; dB, dC written
// whole), after each thread has flushed its lane sums. Inside a parallel region.
void add_all_shares(std::vector<GradientShare>& shares, float* dA, float* dB, float* dC, float* dD,
                    float* ddelta_bias) {
  shares[omp_get_thread_num()].switch_batch(-1);
#pragma omp barrier
  add_shares(shares, &GradientShare::dB, dB, false);
  add_shares(shares, &GradientShare::dC, dC, false);
  add_shares(shares, &GradientShare::dA, dA, true);
  add_shares(shares, &GradientShare::dD, dD, true);
  add_shares(shares, &GradientShare::ddelta_bias, ddelta_bias, true);
}

// values *= silu(z) at step t of each lane's row of z (b, d, l), laid out as `rows`.
inline void gate_lanes(const LaneRows& rows, const float* z, int64_t t, float* values) {
#pragma omp simd
  for (int64_t c = 0; c < kLanes; ++c) {
    const float zt = z[rows.at(c, t)];
    values[c] *= zt * sigmoid(zt);
  }
}

// The backward of `gate_lanes` on the output gradients g at step t: writes ∂L/∂z of the live lanes into dz (the
// ungated values y) and turns g into the gradients of the ungated values. z and dz laid out as `z_rows`, `dz_rows`.
inline void gate_lanes_backward(const Block& block, const LaneRows& z_rows, const float* z, const LaneRows& dz_rows,
                                int64_t t, const float* y, float* g, float* dz) {
  float dz_lanes[kLanes];
#pragma omp simd
  for (int64_t c = 0; c < kLanes; ++c) {
    const float zt = z[z_rows.at(c, t)], sig = sigmoid(zt);
    dz_lanes[c] = g[c] * y[c] * sig * (1.0f + zt * (1.0f - sig));
    g[c] *= zt * sig;
  }
  dz_rows.store(dz_lanes, dz, t, block.count);
}

// ddt *= softplus'(delta + bias) = sigmoid(delta + bias) at step t of each lane's row of delta (b, d, l).
inline void softplus_lanes_backward(const LaneRows& rows, const float* delta, const float* bias, int64_t t,
                                    float* ddt) {
#pragma omp simd
  for (int64_t c = 0; c < kLanes; ++c) ddt[c] *= sigmoid(delta[rows.at(c, t)] + bias[c]);
}

// ------------------------------------------------------------------------------------------- selective scan
struct ScanInputs {
  const float* u;
  const float* delta;
  const float* A;
  const float* B;
  const float* C;
  const float* D;           // nullable
  const float* z;           // nullable
  const float* delta_bias;  // nullable
  int delta_softplus;
  const float* initial_state;  // nullable: zeros
  int64_t batch, dim, len, nstate;
  Layout u_layout, delta_layout, z_layout;
};

// What the forward keeps of one block for its backward: every state h_t and decay exp(Δ_t A) (l, n, kLanes), every
// Δ_t and ungated output D x_t + C_t · h_t (l, kLanes).
struct BlockTrace {
  std::vector<float> history, decays, deltas, y_ungated;
  BlockTrace(int64_t l, int64_t n)
      : history(l * n * kLanes), decays(l * n * kLanes), deltas(l * kLanes), y_ungated(l * kLanes) {}
};

// A thread's buffers for the selective scan, lane-major: the state h and A (n, kLanes); in the backward also the
// trace, ∂L/∂h and the block's dA (n, kLanes).
struct ScanBuffers {
  std::vector<float> h, At, dh, dA;
  BlockTrace trace;
  ScanBuffers(int64_t n, int64_t traced_len) : h(n * kLanes), At(n * kLanes), dh(n * kLanes), dA(n * kLanes),
                                               trace(traced_len, n) {}
};

// Runs one block forward from its initial state. Without a trace it writes the gated outputs into `out` and, when
// given, the last states; with one (kTrace) it records what the backward needs and writes nothing else.
template <bool kTrace>
void scan_block(const ScanInputs& in, const Block& block, ScanBuffers& buf, float* out, const Layout& out_layout,
                float* last_state) {
  const int64_t n = in.nstate, l = in.len;
  const LaneRows u_rows(block, in.u_layout), delta_rows(block, in.delta_layout), z_rows(block, in.z_layout);
  const LaneRows out_rows(block, out_layout);
  const float* B_b = in.B + block.b * l * n;
  const float* C_b = in.C + block.b * l * n;
  float bias[kLanes], skip[kLanes];
  block.load_values(in.delta_bias, bias);
  block.load_values(in.D, skip);
  block.load_rows(in.A, n, buf.At.data());
  block.load_states(in.initial_state, n, buf.h.data());
  float* h = buf.h.data();
  const float* At = buf.At.data();
  for (int64_t t = 0; t < l; ++t) {
    float dt[kLanes], dt_x[kLanes], x[kLanes], y[kLanes];
#pragma omp simd
    for (int64_t c = 0; c < kLanes; ++c) {
      const float raw = in.delta[delta_rows.at(c, t)] + bias[c];
      dt[c] = in.delta_softplus ? softplus(raw) : raw;
      x[c] = in.u[u_rows.at(c, t)];
      dt_x[c] = dt[c] * x[c];
      y[c] = skip[c] * x[c];
    }
    const float* B_t = B_b + t * n;
    const float* C_t = C_b + t * n;
    for (int64_t i = 0; i < n; ++i) {
      float* h_i = h + i * kLanes;
      const float* A_i = At + i * kLanes;
      const float B_ti = B_t[i], C_ti = C_t[i];
      if constexpr (kTrace) {
        float* decay = buf.trace.decays.data() + (t * n + i) * kLanes;
        float* kept = buf.trace.history.data() + (t * n + i) * kLanes;
#pragma omp simd
        for (int64_t c = 0; c < kLanes; ++c) {
          decay[c] = inline_exp(dt[c] * A_i[c]);
          h_i[c] = decay[c] * h_i[c] + dt_x[c] * B_ti;
          kept[c] = h_i[c];
          y[c] += C_ti * h_i[c];
        }
      } else {
#pragma omp simd
        for (int64_t c = 0; c < kLanes; ++c) {
          h_i[c] = inline_exp(dt[c] * A_i[c]) * h_i[c] + dt_x[c] * B_ti;
          y[c] += C_ti * h_i[c];
        }
      }
    }
    if constexpr (kTrace) {
      std::copy(dt, dt + kLanes, buf.trace.deltas.data() + t * kLanes);
      std::copy(y, y + kLanes, buf.trace.y_ungated.data() + t * kLanes);
      continue;
    }
    if (in.z) gate_lanes(z_rows, in.z, t, y);
    out_rows.store(y, out, t, block.count);
  }
  if (!kTrace && last_state) block.store_states(h, n, last_state);
}

// Gradients written whole, per element: (b, d, l) rows in the given layouts (the selective scan's; the coupled scan
// writes contiguous planes), and the initial states' (b, d, n) (nullable).
struct ElementGrads {
  float *du, *ddelta, *dz, *dinitial_state;
  Layout du_layout, ddelta_layout, dz_layout;
};

// The backward of one block (the gradients of `scan_block`'s equations): recomputes the block's trace, then walks
// back through time. dh is ∂L/∂h_t. Dead lanes get zero output gradients, so they add nothing to any sum.
void scan_block_backward(const ScanInputs& in, const Block& block, const float* dout, const Layout& dout_layout,
                         const float* dlast_state, const ElementGrads& grads, ScanBuffers& buf, GradientShare& share) {
  const int64_t n = in.nstate, l = in.len;
  const LaneRows u_rows(block, in.u_layout), delta_rows(block, in.delta_layout), z_rows(block, in.z_layout);
  const LaneRows dout_rows(block, dout_layout), du_rows(block, grads.du_layout);
  const LaneRows ddelta_rows(block, grads.ddelta_layout), dz_rows(block, grads.dz_layout);
  const float* B_b = in.B + block.b * l * n;
  const float* C_b = in.C + block.b * l * n;
  const BlockTrace& trace = buf.trace;
  share.switch_batch(block.b);
  scan_block<true>(in, block, buf, nullptr, dout_layout, nullptr);
  float* h0 = buf.h.data();  // the forward is done with it: now the initial states, h_prev of step 0
  block.load_states(in.initial_state, n, h0);
  block.load_states(dlast_state, n, buf.dh.data());
  std::fill(buf.dA.begin(), buf.dA.end(), 0.0f);
  const float* At = buf.At.data();
  float* dh = buf.dh.data();
  float bias[kLanes], skip[kLanes], dD_acc[kLanes] = {}, dbias_acc[kLanes] = {};
  block.load_values(in.delta_bias, bias);
  block.load_values(in.D, skip);
  for (int64_t t = l - 1; t >= 0; --t) {
    const float* dt = trace.deltas.data() + t * kLanes;
    const float* y = trace.y_ungated.data() + t * kLanes;
    float g[kLanes], x[kLanes], dx[kLanes], ddt[kLanes];
#pragma omp simd
    for (int64_t c = 0; c < kLanes; ++c) g[c] = dout[dout_rows.at(c, t)] * block.live[c];
    if (in.z) gate_lanes_backward(block, z_rows, in.z, dz_rows, t, y, g, grads.dz);
#pragma omp simd
    for (int64_t c = 0; c < kLanes; ++c) {
      x[c] = in.u[u_rows.at(c, t)];
      dD_acc[c] += g[c] * x[c];
      dx[c] = g[c] * skip[c];
      ddt[c] = 0.0f;
    }
    const float* B_t = B_b + t * n;
    const float* C_t = C_b + t * n;
    float* dB_t = share.dB_lanes_at(0, t);
    float* dC_t = share.dC_lanes_at(0, t);
    for (int64_t i = 0; i < n; ++i) {
      const float* h_t = trace.history.data() + (t * n + i) * kLanes;
      const float* h_prev = t > 0 ? trace.history.data() + ((t - 1) * n + i) * kLanes : h0 + i * kLanes;
      const float* a_t = trace.decays.data() + (t * n + i) * kLanes;
      const float* A_i = At + i * kLanes;
      float* dh_i = dh + i * kLanes;
      float* dB_ti = dB_t + i * kLanes;
      float* dC_ti = dC_t + i * kLanes;
      float* dA_i = buf.dA.data() + i * kLanes;
      const float B_ti = B_t[i], C_ti = C_t[i];
#pragma omp simd
      for (int64_t c = 0; c < kLanes; ++c) {
        const float grad_h = dh_i[c] + g[c] * C_ti;
        dC_ti[c] += g[c] * h_t[c];
        const float decay_grad = grad_h * a_t[c] * h_prev[c];  // ∂L/∂(Δ A_i) through exp(Δ A_i)
        ddt[c] += decay_grad * A_i[c] + grad_h * B_ti * x[c];
        dA_i[c] += decay_grad * dt[c];
        dB_ti[c] += grad_h * dt[c] * x[c];
        dx[c] += grad_h * dt[c] * B_ti;
        dh_i[c] = grad_h * a_t[c];
      }
    }
    if (in.delta_softplus) softplus_lanes_backward(delta_rows, in.delta, bias, t, ddt);
#pragma omp simd
    for (int64_t c = 0; c < kLanes; ++c) dbias_acc[c] += ddt[c];
    du_rows.store(dx, grads.du, t, block.count);
    ddelta_rows.store(ddt, grads.ddelta, t, block.count);
  }
  // dh is now ∂L/∂h_{-1}: the gradient of the initial states.
  if (grads.dinitial_state) block.store_states(dh, n, grads.dinitial_state);
  share.add_block(block, 0, buf.dA.data(), dD_acc, dbias_acc);
}

// -------------------------------------------------------------------------------------------- coupled scan
// Coupled Mamba (arXiv 2405.18014, Eq. 6) for M modalities sharing one time axis. Per channel (b, d):
//   h^m_t = exp(Δ^m_t A^m) ⊙ c^m_{t-1} + Δ^m_t B^m_t x^m_t ;  y^m_t = C^m_t · h^m_t + D^m x^m_t (gated by silu(z^m_t))
// where the carried state c is  w Σ_m h^m_t  shared by all modalities when `coupled` (w = 1: Eq. 6's sum;
// w = 1/M: the mean), or each modality's own h^m_t otherwise (independent chains).
// Layouts: u, delta, z, out: (M, b, d, l); A: (M, d, n); B, C: (M, b, l, n); D, delta_bias: (M, d);
// initial_state (nullable: zeros) and last_state: (b, d, n) when coupled, (M, b, d, n) otherwise.
// A block runs kLanes channels of one batch element through every modality, as the selective scan's does.
struct CoupledInputs {
  const float *u, *delta, *A, *B, *C, *D, *z, *delta_bias;
  int delta_softplus, coupled;
  float weight;
  int64_t modalities, batch, dim, len, nstate;
  const float* initial_state;  // nullable: zeros
  int64_t plane() const { return batch * dim * len; }  // one modality's (b, d, l)
  const float* seq(const float* BC, int64_t m, int64_t b) const { return BC + (m * batch + b) * len * nstate; }
  int64_t carried() const { return coupled ? 1 : modalities; }
  // The carried state k's (b, d, n) slice of `states` ((carried(), b, d, n), nullable).
  const float* carried_slice(const float* states, int64_t k) const {
    return states ? states + k * batch * dim * nstate : nullptr;
  }
};

// A thread's buffers for the coupled scan, lane-major: per modality A (M, n, kLanes), Δ bias and D (M, kLanes); the
// carried states of steps 0 .. traced_len ((traced_len + 1), carried(), n, kLanes), of which the forward alone uses
// two; every Δ and ungated output (M, traced_len, kLanes); in the backward ∂L/∂c twice (carried(), n, kLanes), and
// the block's dA (M, n, kLanes), dD and ddelta_bias (M, kLanes).
struct CoupledBuffers {
  std::vector<float> At, bias, skip, states, deltas, y_ungated, dc, dc_prev, dA, dD, ddelta_bias;
  CoupledBuffers(const CoupledInputs& in, int64_t traced_len)
      : At(in.modalities * in.nstate * kLanes), bias(in.modalities * kLanes), skip(in.modalities * kLanes),
        states((std::max<int64_t>(traced_len, 1) + 1) * in.carried() * in.nstate * kLanes),
        deltas(in.modalities * traced_len * kLanes), y_ungated(in.modalities * traced_len * kLanes),
        dc(in.carried() * in.nstate * kLanes), dc_prev(in.carried() * in.nstate * kLanes),
        dA(in.modalities * in.nstate * kLanes), dD(in.modalities * kLanes), ddelta_bias(in.modalities * kLanes) {}
  float* state(const CoupledInputs& in, int64_t t) { return states.data() + t * in.carried() * in.nstate * kLanes; }
};

// Each lane's constants of every modality, and the carried states entering step 0 into buf.state(0).
void load_coupled_block(const CoupledInputs& in, const Block& block, CoupledBuffers& buf,
                        const float* initial_state) {
  const int64_t n = in.nstate;
  for (int64_t m = 0; m < in.modalities; ++m) {
    block.load_rows(in.A + m * in.dim * n, n, buf.At.data() + m * n * kLanes);
    block.load_values(in.delta_bias ? in.delta_bias + m * in.dim : nullptr, buf.bias.data() + m * kLanes);
    block.load_values(in.D ? in.D + m * in.dim : nullptr, buf.skip.data() + m * kLanes);
  }
  for (int64_t k = 0; k < in.carried(); ++k) {
    block.load_states(in.carried_slice(initial_state, k), n, buf.state(in, 0) + k * n * kLanes);
  }
}

// Runs one block forward. Without a trace (kTrace false) the carried states alternate between buf.state(0) and
// buf.state(1), and it writes the gated outputs and the last carried states; with one it keeps every step's carried
// states (buf.state(t) enters step t), Δ and ungated outputs, and writes nothing else.
template <bool kTrace>
void coupled_block(const CoupledInputs& in, const Block& block, CoupledBuffers& buf, float* out, float* last_state) {
  const int64_t n = in.nstate, l = in.len, M = in.modalities;
  const LaneRows rows(block, Layout::contiguous(in.dim, l));  // in every modality's plane
  const bool coupled = in.coupled;
  load_coupled_block(in, block, buf, in.initial_state);
  for (int64_t t = 0; t < l; ++t) {
    const float* c_in = buf.state(in, kTrace ? t : t % 2);
    float* c_out = buf.state(in, kTrace ? t + 1 : (t + 1) % 2);
    if (coupled) std::fill(c_out, c_out + n * kLanes, 0.0f);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t plane = m * in.plane();
      const float* bias = buf.bias.data() + m * kLanes;
      const float* skip = buf.skip.data() + m * kLanes;
      float dt[kLanes], dt_x[kLanes], x[kLanes], y[kLanes];
#pragma omp simd
      for (int64_t c = 0; c < kLanes; ++c) {
        const float raw = in.delta[plane + rows.at(c, t)] + bias[c];
        dt[c] = in.delta_softplus ? softplus(raw) : raw;
        x[c] = in.u[plane + rows.at(c, t)];
        dt_x[c] = dt[c] * x[c];
        y[c] = skip[c] * x[c];
      }
      const float* B_t = in.seq(in.B, m, block.b) + t * n;
      const float* C_t = in.seq(in.C, m, block.b) + t * n;
      const float* c_m = c_in + (coupled ? 0 : m * n * kLanes);
      float* target = c_out + (coupled ? 0 : m * n * kLanes);
      for (int64_t i = 0; i < n; ++i) {
        const float* A_i = buf.At.data() + (m * n + i) * kLanes;
        const float B_ti = B_t[i], C_ti = C_t[i];
#pragma omp simd
        for (int64_t c = 0; c < kLanes; ++c) {
          const float h = inline_exp(dt[c] * A_i[c]) * c_m[i * kLanes + c] + dt_x[c] * B_ti;
          y[c] += C_ti * h;
          target[i * kLanes + c] = coupled ? target[i * kLanes + c] + h : h;
        }
      }
      if constexpr (kTrace) {
        std::copy(dt, dt + kLanes, buf.deltas.data() + (m * l + t) * kLanes);
        std::copy(y, y + kLanes, buf.y_ungated.data() + (m * l + t) * kLanes);
        continue;
      }
      if (in.z) gate_lanes(rows, in.z + plane, t, y);
      rows.store(y, out + plane, t, block.count);
    }
    if (coupled) {
#pragma omp simd
      for (int64_t j = 0; j < n * kLanes; ++j) c_out[j] *= in.weight;
    }
  }
  if (kTrace || !last_state) return;
  const float* last = buf.state(in, l % 2);
  for (int64_t k = 0; k < in.carried(); ++k) {
    block.store_states(last + k * n * kLanes, n, last_state + k * in.batch * in.dim * n);
  }
}

// The backward of one block: recomputes its trace, then walks back through time. dc is ∂L/∂(carried states leaving
// step t); each modality's state h^m reaches them with weight w when coupled (1 otherwise), so ∂L/∂h^m = g C + w dc.
void coupled_block_backward(const CoupledInputs& in, const Block& block, const float* dout, const float* dlast_state,
                            const ElementGrads& grads, CoupledBuffers& buf, GradientShare& share) {
  const int64_t n = in.nstate, l = in.len, M = in.modalities, K = in.carried();
  const bool coupled = in.coupled;
  const float carry_weight = coupled ? in.weight : 1.0f;
  const LaneRows rows(block, Layout::contiguous(in.dim, l));  // in every modality's plane
  share.switch_batch(block.b);
  coupled_block<true>(in, block, buf, nullptr, nullptr);
  for (int64_t k = 0; k < K; ++k) block.load_states(in.carried_slice(dlast_state, k), n, buf.dc.data() + k * n * kLanes);
  for (std::vector<float>* sums : {&buf.dA, &buf.dD, &buf.ddelta_bias}) std::fill(sums->begin(), sums->end(), 0.0f);
  float* dD_acc = buf.dD.data();
  float* dbias_acc = buf.ddelta_bias.data();
  for (int64_t t = l - 1; t >= 0; --t) {
    const float* c_prev = buf.state(in, t);
    std::fill(buf.dc_prev.begin(), buf.dc_prev.end(), 0.0f);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t plane = m * in.plane();
      const float* dt = buf.deltas.data() + (m * l + t) * kLanes;
      const float* y = buf.y_ungated.data() + (m * l + t) * kLanes;
      const float* skip = buf.skip.data() + m * kLanes;
      const float* bias = buf.bias.data() + m * kLanes;
      float g[kLanes], x[kLanes], dx[kLanes], ddt[kLanes];
#pragma omp simd
      for (int64_t c = 0; c < kLanes; ++c) g[c] = dout[plane + rows.at(c, t)] * block.live[c];
      if (in.z) gate_lanes_backward(block, rows, in.z + plane, rows, t, y, g, grads.dz + plane);
#pragma omp simd
      for (int64_t c = 0; c < kLanes; ++c) {
        x[c] = in.u[plane + rows.at(c, t)];
        dD_acc[m * kLanes + c] += g[c] * x[c];
        dx[c] = g[c] * skip[c];
        ddt[c] = 0.0f;
      }
      const float* B_t = in.seq(in.B, m, block.b) + t * n;
      const float* C_t = in.seq(in.C, m, block.b) + t * n;
      const float* c_m = c_prev + (coupled ? 0 : m * n * kLanes);
      const float* dc_m = buf.dc.data() + (coupled ? 0 : m * n * kLanes);
      float* dc_prev_m = buf.dc_prev.data() + (coupled ? 0 : m * n * kLanes);
      float* dB_t = share.dB_lanes_at(m, t);
      float* dC_t = share.dC_lanes_at(m, t);
      for (int64_t i = 0; i < n; ++i) {
        const float* A_i = buf.At.data() + (m * n + i) * kLanes;
        float* dA_i = buf.dA.data() + (m * n + i) * kLanes;
        const float B_ti = B_t[i], C_ti = C_t[i];
        const int64_t o = i * kLanes;
#pragma omp simd
        for (int64_t c = 0; c < kLanes; ++c) {
          const float a = inline_exp(dt[c] * A_i[c]);  // recomputed: cheaper than keeping (M, l, n, kLanes) decays
          const float h = a * c_m[o + c] + dt[c] * x[c] * B_ti;
          const float grad_h = g[c] * C_ti + carry_weight * dc_m[o + c];
          dC_t[o + c] += g[c] * h;
          const float decay_grad = grad_h * a * c_m[o + c];  // ∂L/∂(Δ A_i) through exp(Δ A_i)
          ddt[c] += decay_grad * A_i[c] + grad_h * B_ti * x[c];
          dA_i[c] += decay_grad * dt[c];
          dB_t[o + c] += grad_h * dt[c] * x[c];
          dx[c] += grad_h * dt[c] * B_ti;
          dc_prev_m[o + c] += grad_h * a;
        }
      }
      if (in.delta_softplus) softplus_lanes_backward(rows, in.delta + plane, bias, t, ddt);
#pragma omp simd
      for (int64_t c = 0; c < kLanes; ++c) dbias_acc[m * kLanes + c] += ddt[c];
      rows.store(dx, grads.du + plane, t, block.count);
      rows.store(ddt, grads.ddelta + plane, t, block.count);
    }
    std::swap(buf.dc, buf.dc_prev);
  }
  if (grads.dinitial_state) {  // dc is now ∂L/∂(carried states entering step 0)
    for (int64_t k = 0; k < K; ++k) {
      block.store_states(buf.dc.data() + k * n * kLanes, n, grads.dinitial_state + k * in.batch * in.dim * n);
    }
  }
  for (int64_t m = 0; m < M; ++m) {
    share.add_block(block, m, buf.dA.data() + m * n * kLanes, dD_acc + m * kLanes, dbias_acc + m * kLanes);
  }
}

// The layout of the k-th tensor in a list of (batch, channel, time) strides.
Layout layout_at(const int64_t* strides, int k) { return {strides[3 * k], strides[3 * k + 1], strides[3 * k + 2]}; }

}  // namespace

extern "C" {

// strides: the (batch, channel, time) element strides of u, delta, z and out, in that order (12 values).
void selective_scan_fwd(const float* u, const float* delta, const float* A, const float* B, const float* C,
                        const float* D, const float* z, const float* delta_bias, int delta_softplus,
                        const float* initial_state, float* out, float* last_state, int64_t batch, int64_t dim,
                        int64_t len, int64_t nstate, const int64_t* strides, int nthreads) {
  const ScanInputs in{u,   delta,  A, B, C, D, z, delta_bias, delta_softplus, initial_state, batch, dim, len,
                      nstate, layout_at(strides, 0), layout_at(strides, 1), layout_at(strides, 2)};
  const Layout out_layout = layout_at(strides, 3);
  const int64_t blocks = (dim + kLanes - 1) / kLanes;  // per batch element; the last may be partly dead
#pragma omp parallel num_threads(nthreads)
  {
    ScanBuffers buf(nstate, 0);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < batch * blocks; ++item) {
      const Block block(dim, item / blocks, item % blocks * kLanes);
      scan_block<false>(in, block, buf, out, out_layout, last_state);
    }
  }
}

// Gradients of every input. dA, dD, ddelta_bias must be zeroed by the caller (they accumulate over b);
// dB, dC and dinitial_state (nullable) are written whole. dlast_state (nullable) is the gradient flowing into the
// returned last state. All (batch element, block) pairs run in one parallel region; what sums over channels or
// batch elements goes to each thread's `GradientShare`, added over threads at the end. strides: the (batch, channel,
// time) element strides of u, delta, z, dout, du, ddelta and dz, in that order (21 values).
void selective_scan_bwd(const float* u, const float* delta, const float* A, const float* B, const float* C,
                        const float* D, const float* z, const float* delta_bias, int delta_softplus,
                        const float* initial_state, const float* dout, const float* dlast_state, float* du,
                        float* ddelta, float* dA, float* dB, float* dC, float* dD, float* dz, float* ddelta_bias,
                        float* dinitial_state, int64_t batch, int64_t dim, int64_t len, int64_t nstate,
                        const int64_t* strides, int nthreads) {
  const ScanInputs in{u,   delta,  A, B, C, D, z, delta_bias, delta_softplus, initial_state, batch, dim, len,
                      nstate, layout_at(strides, 0), layout_at(strides, 1), layout_at(strides, 2)};
  const Layout dout_layout = layout_at(strides, 3);
  const ElementGrads grads{du, ddelta, dz, dinitial_state, layout_at(strides, 4), layout_at(strides, 5),
                           layout_at(strides, 6)};
  const int64_t blocks = (dim + kLanes - 1) / kLanes;
  std::vector<GradientShare> shares(nthreads, GradientShare(1, batch, dim, len, nstate));
#pragma omp parallel num_threads(nthreads)
  {
    ScanBuffers buf(nstate, len);
    GradientShare& share = shares[omp_get_thread_num()];
#pragma omp for schedule(static)
    for (int64_t item = 0; item < batch * blocks; ++item) {
      const Block block(dim, item / blocks, item % blocks * kLanes);
      scan_block_backward(in, block, dout, dout_layout, dlast_state, grads, buf, share);
    }
    add_all_shares(shares, dA, dB, dC, dD, ddelta_bias);
  }
}

void coupled_scan_fwd(const float* u, const float* delta, const float* A, const float* B, const float* C,
                      const float* D, const float* z, const float* delta_bias, int delta_softplus, int coupled,
                      float weight, const float* initial_state, float* out, float* last_state, int64_t modalities,
                      int64_t batch, int64_t dim, int64_t len, int64_t nstate, int nthreads) {
  const CoupledInputs in{u,      delta,      A,     B,   C,   D,   z,      delta_bias,   delta_softplus,
                         coupled, weight, modalities, batch, dim, len, nstate, initial_state};
  const int64_t blocks = (dim + kLanes - 1) / kLanes;
#pragma omp parallel num_threads(nthreads)
  {
    CoupledBuffers buf(in, 0);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < batch * blocks; ++item) {
      const Block block(dim, item / blocks, item % blocks * kLanes);
      coupled_block<false>(in, block, buf, out, last_state);
    }
  }
}

// Gradients of every input. dA, dD, ddelta_bias must be zeroed by the caller; dB, dC and dinitial_state (nullable)
// are written whole. Scheduled as `selective_scan_bwd`.
void coupled_scan_bwd(const float* u, const float* delta, const float* A, const float* B, const float* C,
                      const float* D, const float* z, const float* delta_bias, int delta_softplus, int coupled,
                      float weight, const float* initial_state, const float* dout, const float* dlast_state,
                      float* du, float* ddelta, float* dA, float* dB, float* dC, float* dD, float* dz,
                      float* ddelta_bias, float* dinitial_state, int64_t modalities, int64_t batch, int64_t dim,
                      int64_t len, int64_t nstate, int nthreads) {
  const CoupledInputs in{u,      delta,      A,     B,   C,   D,   z,      delta_bias,   delta_softplus,
                         coupled, weight, modalities, batch, dim, len, nstate, initial_state};
  const Layout plane = Layout::contiguous(dim, len);  // each modality's (b, d, l) plane
  const ElementGrads grads{du, ddelta, dz, dinitial_state, plane, plane, plane};
  const int64_t blocks = (dim + kLanes - 1) / kLanes;
  std::vector<GradientShare> shares(nthreads, GradientShare(modalities, batch, dim, len, nstate));
#pragma omp parallel num_threads(nthreads)
  {
    CoupledBuffers buf(in, len);
    GradientShare& share = shares[omp_get_thread_num()];
#pragma omp for schedule(static)
    for (int64_t item = 0; item < batch * blocks; ++item) {
      const Block block(dim, item / blocks, item % blocks * kLanes);
      coupled_block_backward(in, block, dout, dlast_state, grads, buf, share);
    }
    add_all_shares(shares, dA, dB, dC, dD, ddelta_bias);
  }
}

}  // extern "C"

// ============================================================================================== decode step
// One decode step (one new token per row) of a whole stack of Mamba blocks, for `generate()` on CPU: a decode step
// reads every weight once for a handful of multiply-adds each, so its speed is the speed at which the weights stream
// from memory. The matrix-vector products (GEMVs) stream each weight row once for all b rows of the batch, with
// several AVX2/FMA accumulators, in one OpenMP parallel region per step whose threads split the channels (see
// `thread_share`).
//
// Weights are the module's own parameter storage: float32, or bfloat16 widened to float32 in registers. Everything
// is accumulated in float32 and the recurrent state stays float32. With bfloat16 weights the step rounds to bfloat16
// wherever the PyTorch reference step (mamba.py's MambaBlock with a bfloat16 model) holds a bfloat16 tensor, so that
// both compute the same numbers up to the order of summation.
//
// Per block (mamba.py's MambaBlock and MambaMixer, one time step):
//   r = h (float32 residual);  x̂ = RMSNorm(h);  [x, z] = in_proj x̂;  window ← [window[1:], x];
//   u = silu(conv · window + conv_bias);  [δ, B, C] = x_proj u;  Δ = softplus(dt_proj δ + dt_bias);
//   s ← exp(Δ A) s + Δ u B;  y = (C · s + D u) silu(z);  h = r + out_proj y
// A padding mask m (0 or 1 per row) zeroes x and u and Δ as the reference's `_zero_padding` does.

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define MAMBA_DECODE_AVX2 1
#endif

namespace {

using bf16 = uint16_t;  // bfloat16 storage: the upper half of a float32

inline float widen(float v) { return v; }
inline float widen(bf16 v) {
  const uint32_t bits = uint32_t(v) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

inline bf16 narrow(float v) {  // round to nearest even, as torch's float → bfloat16
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;  // NaN stays a (quiet) NaN; a select, so loops vectorise
  return bf16(nan ? (bits >> 16) | 0x40u : rounded);
}

// The value a tensor of storage type W holds: float32 as it is, bfloat16 rounded.
template <typename W>
inline float held(float v) {
  if constexpr (std::is_same_v<W, bf16>) {
    return widen(narrow(v));
  } else {
    return v;
  }
}

template <typename W>
inline void store(W* to, float v) {
  if constexpr (std::is_same_v<W, bf16>) {
    *to = narrow(v);
  } else {
    *to = v;
  }
}

inline float silu(float x) { return x / (1.0f + inline_exp(-x)); }

// The vector registers of `dot_row` (`Lanes`): AVX-512F's 16 lanes where the compiler targets them (-march=native),
// else AVX2's 8. `kPrefetchLines`: the cache lines of weights asked for ahead per iteration of the four-chain loop.
#if defined(MAMBA_DECODE_AVX2) && defined(__AVX512F__)
struct Lanes16 {
  using Vec = __m512;
  static constexpr int kWidth = 16;
  // Every line of the iteration's 64 weights (4 of float32, 2 of bfloat16): with one, bf16 at 130m's shape on a Zen 5
  // EPYC ran at 0.90x; with every line, 1.05x (float32 1.07x) the AVX2 loop.
  template <typename W>
  static constexpr int kPrefetchLines = int(4 * kWidth * sizeof(W)) / 64;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load(const bf16* p) {
    const __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
  }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static float sum(Vec v) { return _mm512_reduce_add_ps(v); }
};
#endif
#if defined(MAMBA_DECODE_AVX2)
struct Lanes8 {
  using Vec = __m256;
  static constexpr int kWidth = 8;
  // One line an iteration (bf16 rows, 130m's stack on an AMX Xeon, 2 threads: 11.3 -> 8.8 ms a step; float32's step
  // was already at the measured bandwidth and is unchanged; a second line for float32 ran at 0.92x on a Zen 5).
  template <typename W>
  static constexpr int kPrefetchLines = 1;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load(const bf16* p) {
    const __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
  }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static float sum(Vec v) {
    __m128 low = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    low = _mm_add_ps(low, _mm_movehl_ps(low, low));
    low = _mm_add_ss(low, _mm_movehdup_ps(low));
    return _mm_cvtss_f32(low);
  }
};
#endif

// The lanes of weights of type W. On a CPU that runs 512-bit operations as two halves (MAMBA_SPLIT_AVX512, set by
// ssm_cpu.py for AMD's Zen 4), float32 weights take AVX2's: there, interleaved in one process (2 threads, the
// prefetch into L2 in both), 8 lanes decoded float32 at 1.05-1.13x 16 lanes at 130m's shape and 1.01-1.10x at the
// demo LM's, bfloat16 at 0.96-1.04x (kept at 16). A Zen 5 (full-width AVX-512) ran float32 at 1.07x with 16.
#if defined(MAMBA_DECODE_AVX2) && defined(__AVX512F__) && defined(MAMBA_SPLIT_AVX512)
template <typename W>
using Lanes = std::conditional_t<std::is_same_v<W, float>, Lanes8, Lanes16>;
#elif defined(MAMBA_DECODE_AVX2) && defined(__AVX512F__)
template <typename W>
using Lanes = Lanes16;
#elif defined(MAMBA_DECODE_AVX2)
template <typename W>
using Lanes = Lanes8;
#endif

// How far ahead of the weight being read `dot_row` asks for the weights, in bytes: 4 KB of float32 rows, 8 KB of
// bfloat16, into L2 (`_MM_HINT_T1`) rather than L1. On a Zen 4 EPYC (2 threads, interleaved in one process) into L2
// against into L1 at 1,024 weights ahead: bfloat16 1.33-1.38x at 130m's shape with 6-12 KB ahead (1.23x at 4 KB,
// 0.93x at 2 KB), 1.15-1.17x at the demo LM's; float32 1.11-1.14x at 130m, 1.04-1.11x at the demo LM's, within 3%
// from 2 to 16 KB ahead. An earlier tuning into L1 on an AVX-512 Xeon: float32 2 KB ahead 0.90-0.93x of 4 KB.
template <typename W>
constexpr int64_t kPrefetchBytes = sizeof(W) == 2 ? 8192 : 4096;

// out[j] = w · x_j for the NB vectors x_j = x + j * ldx (float32), reading the row w (length K) once. ahead: how far
// (bytes) from each weight read lies the one to ask for: kPrefetchBytes<W> for contiguous rows (`prefetch_ahead`).
template <int NB, typename W>
inline void dot_row(const W* __restrict w, const float* __restrict x, int64_t ldx, int64_t K, int64_t ahead,
                    float* out) {
  int64_t k = 0;
  float sums[NB];
#ifdef MAMBA_DECODE_AVX2
  using V = Lanes<W>;
  constexpr int n = V::kWidth;
  if constexpr (NB == 1) {  // four chains keep the FMA latency hidden while the row streams in
    typename V::Vec a0 = V::zero(), a1 = a0, a2 = a0, a3 = a0;
    for (; k + 4 * n <= K; k += 4 * n) {
      // A thread streams a few MB of rows (contiguous) per layer, between the small ops: asking for the lines a few
      // KB ahead keeps more of them in flight than the hardware prefetchers do.
      for (int line = 0; line < V::template kPrefetchLines<W>; ++line) {
        _mm_prefetch(reinterpret_cast<const char*>(w + k) + ahead + 64 * line, _MM_HINT_T1);
      }
      a0 = V::fma(V::load(w + k), V::load(x + k), a0);
      a1 = V::fma(V::load(w + k + n), V::load(x + k + n), a1);
      a2 = V::fma(V::load(w + k + 2 * n), V::load(x + k + 2 * n), a2);
      a3 = V::fma(V::load(w + k + 3 * n), V::load(x + k + 3 * n), a3);
    }
    for (; k + n <= K; k += n) a0 = V::fma(V::load(w + k), V::load(x + k), a0);
    sums[0] = V::sum(V::add(V::add(a0, a1), V::add(a2, a3)));
  } else {  // one chain per vector: NB independent chains
    typename V::Vec acc[NB];
    for (int j = 0; j < NB; ++j) acc[j] = V::zero();
    for (; k + n <= K; k += n) {
      const typename V::Vec wk = V::load(w + k);
      for (int j = 0; j < NB; ++j) acc[j] = V::fma(wk, V::load(x + j * ldx + k), acc[j]);
    }
    for (int j = 0; j < NB; ++j) sums[j] = V::sum(acc[j]);
  }
#else
  (void)ahead;
  for (int j = 0; j < NB; ++j) sums[j] = 0.0f;
#endif
  for (int j = 0; j < NB; ++j) {
    float tail = 0.0f;
    const float* xj = x + j * ldx;
#pragma omp simd reduction(+ : tail)
    for (int64_t i = k; i < K; ++i) tail += widen(w[i]) * xj[i];
    out[j] = sums[j] + tail;
  }
}

// out[j] = w · x_j for the `batch` vectors x_j = x + j * ldx, in blocks of up to 4 (the row stays in L1 between them).
template <typename W>
inline void dot_row_batch(const W* w, const float* x, int64_t ldx, int64_t batch, int64_t K, int64_t ahead,
                          float* out) {
  for (int64_t j = 0; j < batch; j += 4) {
    const float* xj = x + j * ldx;
    switch (std::min<int64_t>(4, batch - j)) {
      case 1: dot_row<1>(w, xj, ldx, K, ahead, out + j); break;
      case 2: dot_row<2>(w, xj, ldx, K, ahead, out + j); break;
      case 3: dot_row<3>(w, xj, ldx, K, ahead, out + j); break;
      default: dot_row<4>(w, xj, ldx, K, ahead, out + j); break;
    }
  }
}

// `dot_row`'s `ahead` for rows of `stride` weights of which each is read over `length` weights: for contiguous rows
// (length = stride) the weight kPrefetchBytes<W> further on; for a thread's columns of each row (a product split over
// its columns), the same columns of the row that many bytes of its reading later, else the lines asked for are the
// other threads' columns (x_proj at 130m's shape in bf16, 2 threads on a Zen 4: 0.23-0.27 ms a token against 0.37-0.40).
template <typename W>
inline int64_t prefetch_ahead(int64_t length, int64_t stride) {
  if (length >= stride) return kPrefetchBytes<W>;
  const int64_t row_bytes = std::max<int64_t>(length, 1) * int64_t(sizeof(W));
  return (kPrefetchBytes<W> + row_bytes - 1) / row_bytes * stride * int64_t(sizeof(W));
}

constexpr int64_t kMaxBatchBlock = 64;  // rows of the batch per pass over the weights (bounds the stack buffer)

// finish(j, n, W[n] · x_j + bias[n]) for the rows n in [row_begin, row_end) of W (N, K) and every batch row j of x
// (x_j = x + j * ldx, float32). bias: (N,) or nullptr.
template <typename W, typename Finish>
void gemv_rows(const W* weight, const W* bias, const float* x, int64_t ldx, int64_t batch, int64_t K,
               int64_t row_begin, int64_t row_end, Finish finish) {
  for (int64_t n = row_begin; n < row_end; ++n) {
    const float b = bias ? widen(bias[n]) : 0.0f;
    for (int64_t j0 = 0; j0 < batch; j0 += kMaxBatchBlock) {
      float sums[kMaxBatchBlock];
      const int64_t count = std::min(kMaxBatchBlock, batch - j0);
      dot_row_batch(weight + n * K, x + j0 * ldx, ldx, count, K, kPrefetchBytes<W>, sums);
      for (int64_t j = 0; j < count; ++j) finish(j0 + j, n, sums[j] + b);
    }
  }
}

// Inside a parallel region: gemv_rows over all N rows of W, split statically over the threads. x: (batch, K).
template <typename W, typename Finish>
void gemv(const W* weight, const W* bias, const float* x, int64_t batch, int64_t K, int64_t N, Finish finish) {
#pragma omp for schedule(static)
  for (int64_t n = 0; n < N; ++n) gemv_rows(weight, bias, x, K, batch, K, n, n + 1, finish);
}

// MambaRMSNorm of one row h (d): w * (x / rms(x)), with the roundings of the reference for storage type W.
// `input_held` says whether the input tensor is held in W (cast to the norm's dtype first, then rounded back).
template <typename W>
void rms_norm(const float* h, const W* weight, int64_t d, float eps, bool input_held, float* out) {
  float squares = 0.0f;
  for (int64_t i = 0; i < d; ++i) {
    const float v = input_held ? held<W>(h[i]) : h[i];
    squares += v * v;
  }
  const float scale = 1.0f / std::sqrt(squares / float(d) + eps);
  for (int64_t i = 0; i < d; ++i) {
    if (input_held) {  // (weight * x.to(W)) in W
      out[i] = held<W>(widen(weight[i]) * held<W>(held<W>(h[i]) * scale));
    } else {  // float32 input: weight * x promotes to float32
      out[i] = widen(weight[i]) * (h[i] * scale);
    }
  }
}

// The parameters and cached states of one block, in the order `mamba_decode_step` reads them from its table.
struct DecodeLayer {
  const void *norm, *in_proj, *in_proj_bias, *conv, *conv_bias, *x_proj, *dt_proj, *dt_proj_bias;
  const float* A;  // -exp(A_log), float32 (d_in, n)
  const void *D, *out_proj, *out_proj_bias;
  void* conv_state;  // (b, d_in, k) in W
  float* ssm_state;  // (b, d_in, n)
};
constexpr int kDecodeTableWidth = 14;  // pointers per layer in the table

struct DecodeShape {
  int64_t batch, d, d_in, n, rank, k;
  float eps;
  bool residual_in_fp32;
};

// How the threads share a step: each owns a contiguous share of the channels (`thread_share`) and runs everything of
// its channels on its own — its rows of in_proj (x and z), the conv window, dt_proj, the state update and the gate.
// x_proj, which needs every channel, is computed by each thread over its own columns (split-K) into its slot of a
// partial-sum buffer, which every thread then adds up in the same order. out_proj is split by output rows instead:
// split over columns, two threads streaming alternate halves of every row ran at half the bandwidth of two streaming
// whole rows (x_proj is 5% of the weights). Three barriers a layer (before x_proj's sum, before out_proj, after it):
// a decode step is a few hundred microseconds of work per layer, and on a busy machine each barrier can wait for a
// descheduled thread.
//
// This thread's share [begin, end) of `count` channels: contiguous, in multiples of 8 (whole vectors), the same in
// every layer. Within a share the phases loop over the batch outside and over the channels inside, where the compiler
// vectorises the exp, log1p and roundings across 8 channels at a time.
inline void thread_share(int64_t count, int64_t& begin, int64_t& end) {
  const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
  const int64_t per = ((count + threads - 1) / threads + 7) / 8 * 8;
  begin = std::min(count, thread * per);
  end = std::min(count, begin + per);
}

// The scratch rows of one step (float32). Shared, each thread writing only its channels: xz (b, 2 d_in), u, dt, gate,
// y (b, d_in). Per thread: normed (b, d) and dbc (b, r + 2n). x_proj's partial sums, one slot per thread:
// dbc_parts (threads, b, r + 2n).
struct DecodeScratch {
  float *xz, *u, *dt, *gate, *y, *normed, *dbc, *dbc_parts;
};

// part (b, N) = W[:, c0:c1] · x_j[c0:c1] for every row of W (N, K) and batch row j of x (b, K): this thread's
// columns of a product whose columns are split over the threads.
template <typename W>
void gemv_columns(const W* weight, const float* x, int64_t batch, int64_t K, int64_t N, int64_t c0, int64_t c1,
                  float* part) {
  const int64_t ahead = prefetch_ahead<W>(c1 - c0, K);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t j0 = 0; j0 < batch; j0 += kMaxBatchBlock) {
      float sums[kMaxBatchBlock];
      const int64_t count = std::min(kMaxBatchBlock, batch - j0);
      dot_row_batch(weight + n * K + c0, x + j0 * K + c0, K, count, c1 - c0, ahead, sums);
      for (int64_t j = 0; j < count; ++j) part[(j0 + j) * N + n] = sums[j];
    }
  }
}

// Σ over the threads' slots of parts (threads, size), in thread order: the same sum in every thread.
inline float sum_slots(const float* parts, int64_t size, int threads, int64_t i) {
  float sum = 0.0f;
  for (int t = 0; t < threads; ++t) sum += parts[t * size + i];
  return sum;
}

// One channel's conv window (k values in W) shifted by one with x (held in W) appended, and conv · window with each
// product and the sum held in W as the reference's. K: k when the compiler knows it (the loop then unrolls, where a
// runtime k made the shift a call to memmove per channel: 4 taps, 130m's shape in bf16, 0.42 -> 0.06 ms a token on one
// thread), 0 for a runtime k.
template <int K, typename W>
inline float shift_and_convolve(W* window, const W* weights, int64_t k, float x) {
  const int64_t taps = K > 0 ? K : k;
  float acc = 0.0f;
  for (int64_t i = 0; i < taps; ++i) {
    const float value = i + 1 < taps ? widen(window[i + 1]) : x;  // read before the next tap overwrites it
    store(window + i, value);
    acc += held<W>(value * widen(weights[i]));
  }
  return held<W>(acc);
}

// Conv window, per channel of the share: shift x in, then u = silu(conv · window + conv_bias), masked.
template <int K, typename W>
void convolve_taps(const DecodeLayer& L, const DecodeShape& s, const float* mask, const DecodeScratch& t, int64_t c0,
                   int64_t c1) {
  const int64_t d_in = s.d_in, k = s.k;
  const W* conv = static_cast<const W*>(L.conv);
  const W* conv_bias = static_cast<const W*>(L.conv_bias);
  for (int64_t j = 0; j < s.batch; ++j) {
    const float keep = mask ? mask[j] : 1.0f;
    const float* x = t.xz + j * 2 * d_in;
    float* u = t.u + j * d_in;
    W* windows = static_cast<W*>(L.conv_state) + j * d_in * k;
    for (int64_t c = c0; c < c1; ++c) {
      const float acc = shift_and_convolve<K>(windows + c * k, conv + c * k, k, mask ? held<W>(x[c] * keep) : x[c]);
      u[c] = conv_bias ? held<W>(acc + widen(conv_bias[c])) : acc;
    }
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) u[c] = held<W>(held<W>(silu(u[c])) * keep);  // keep = 1 changes nothing
  }
}

template <typename W>
void convolve(const DecodeLayer& L, const DecodeShape& s, const float* mask, const DecodeScratch& t, int64_t c0,
              int64_t c1) {
  if (s.k == 4) {  // Mamba's and every released checkpoint's
    convolve_taps<4, W>(L, s, mask, t, c0, c1);
  } else {
    convolve_taps<0, W>(L, s, mask, t, c0, c1);
  }
}

// dt_proj row, softplus, state update and gate, per channel of the share. dbc: (b, r + 2n), x_proj's output.
template <typename W>
void update_states(const DecodeLayer& L, const DecodeShape& s, const float* mask, const DecodeScratch& t, int64_t c0,
                   int64_t c1) {
  const int64_t b = s.batch, d_in = s.d_in, n = s.n, r = s.rank, m = r + 2 * n;
  const W* dt_bias = static_cast<const W*>(L.dt_proj_bias);
  const W* D = static_cast<const W*>(L.D);
  gemv_rows(static_cast<const W*>(L.dt_proj), static_cast<const W*>(nullptr), t.dbc, m, b, r, c0, c1,
            [&](int64_t j, int64_t c, float v) { t.dt[j * d_in + c] = v; });  // δ: dbc's leading r columns
  for (int64_t j = 0; j < b; ++j) {
    const float keep = mask ? mask[j] : 1.0f;
    float* dt = t.dt + j * d_in;
    const float* z = t.xz + j * 2 * d_in + d_in;
    float* gate = t.gate + j * d_in;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) {
      dt[c] = softplus(held<W>(dt[c] + widen(dt_bias[c]))) * keep;
      gate[c] = silu(z[c]);
    }
    const float* B = t.dbc + j * m + r;
    const float* C = B + n;
    const float* u = t.u + j * d_in;
    float* y = t.y + j * d_in;
    for (int64_t c = c0; c < c1; ++c) {
      const float* A = L.A + c * n;
      float* state = L.ssm_state + (j * d_in + c) * n;
      const float step = dt[c], x = u[c], step_x = step * x;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < n; ++i) {
        state[i] = inline_exp(step * A[i]) * state[i] + step_x * B[i];
        acc += C[i] * state[i];
      }
      acc += x * widen(D[c]);
      y[c] = held<W>(acc * gate[c]);
    }
  }
}

// One block, run by every thread of the region on its share of the channels; h (b, d), the residual stream, updated.
template <typename W>
void decode_block(const DecodeLayer& L, const DecodeShape& s, const float* mask, float* h, const DecodeScratch& t) {
  const int64_t b = s.batch, d = s.d, d_in = s.d_in, m = s.rank + 2 * s.n;
  const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
  int64_t c0, c1;
  thread_share(d_in, c0, c1);
  for (int64_t j = 0; j < b; ++j) rms_norm<W>(h + j * d, static_cast<const W*>(L.norm), d, s.eps, true, t.normed + j * d);
  const W* in_proj = static_cast<const W*>(L.in_proj);
  const W* in_bias = static_cast<const W*>(L.in_proj_bias);
  const auto keep_xz = [&](int64_t j, int64_t i, float v) { t.xz[j * 2 * d_in + i] = held<W>(v); };
  gemv_rows(in_proj, in_bias, t.normed, d, b, d, c0, c1, keep_xz);                // x of the share's channels
  gemv_rows(in_proj, in_bias, t.normed, d, b, d, d_in + c0, d_in + c1, keep_xz);  // z of the share's channels
  convolve<W>(L, s, mask, t, c0, c1);
  gemv_columns(static_cast<const W*>(L.x_proj), t.u, b, d_in, m, c0, c1, t.dbc_parts + thread * b * m);
#pragma omp barrier
  for (int64_t i = 0; i < b * m; ++i) t.dbc[i] = held<W>(sum_slots(t.dbc_parts, b * m, threads, i));
  update_states<W>(L, s, mask, t, c0, c1);
#pragma omp barrier
  // Output projection and the residual: held in W unless the residual is kept in float32.
  const bool round_sum = !s.residual_in_fp32;
  gemv(static_cast<const W*>(L.out_proj), static_cast<const W*>(L.out_proj_bias), t.y, b, d_in, d,
       [&](int64_t j, int64_t i, float v) {
         const float sum = h[j * d + i] + held<W>(v);
         h[j * d + i] = round_sum ? held<W>(sum) : sum;
       });  // gemv's `omp for` ends with a barrier: the next block's norm reads the whole stream
}

// The LM head of a decode step, when it runs in the same call: logits (b, vocab) = out · headᵀ + bias, float32,
// rounded to W as torch's product in W is, from the final norm's output converted to W (as the model's head does).
template <typename W>
struct DecodeHead {
  const W *weight, *bias;
  int64_t vocab;
  float* logits;
};

template <typename W>
void decode_step(const void* const* table, int64_t layers, const W* norm_f, const float* mask, float* hidden,
                 float* out, const DecodeShape& s, const DecodeHead<W>& head, int nthreads) {
  const int64_t b = s.batch, d = s.d, d_in = s.d_in, m = s.rank + 2 * s.n;
  std::vector<float> shared(b * d_in * 6), dbc_parts(nthreads * b * m), own(nthreads * b * (d + m));
  std::vector<float> head_input(head.weight ? b * d : 0);
#pragma omp parallel num_threads(nthreads)
  {
    float* mine = own.data() + omp_get_thread_num() * b * (d + m);
    float* x = shared.data();
    const DecodeScratch t{x,    x + 2 * b * d_in, x + 3 * b * d_in, x + 4 * b * d_in, x + 5 * b * d_in,
                          mine, mine + b * d,     dbc_parts.data()};
    for (int64_t layer = 0; layer < layers; ++layer) {
      const void* const* p = table + layer * kDecodeTableWidth;
      const DecodeLayer L{p[0], p[1], p[2],  p[3], p[4],  p[5],  p[6], p[7], static_cast<const float*>(p[8]),
                          p[9], p[10], p[11], const_cast<void*>(p[12]), static_cast<float*>(const_cast<void*>(p[13]))};
      decode_block<W>(L, s, mask, hidden, t);
    }
#pragma omp single
    for (int64_t j = 0; j < b; ++j) {  // the stream is float32 unless the residual is held in W
      rms_norm<W>(hidden + j * d, norm_f, d, s.eps, !s.residual_in_fp32, out + j * d);
      for (int64_t i = 0; head.weight && i < d; ++i) head_input[j * d + i] = held<W>(out[j * d + i]);
    }  // `single` ends with a barrier: the head reads every row
    if (head.weight) {
      gemv(head.weight, head.bias, head_input.data(), b, d, head.vocab,
           [&](int64_t j, int64_t n, float v) { head.logits[j * head.vocab + n] = held<W>(v); });
    }
  }
}

}  // namespace

extern "C" {

// One decode step of `layers` Mamba blocks and the final norm, and the LM head when `head` is given. table:
// kDecodeTableWidth pointers per layer in DecodeLayer's order (bias pointers nullable); weights_bf16: 1 when every
// parameter is bfloat16, 0 for float32. mask: (batch,) 0/1 or nullptr. hidden: (batch, d) float32, the embeddings
// in, the residual stream out. out: (batch, d) float32, the final norm's output (held in bfloat16 when the stream
// is). head: (vocab, d) or nullptr, head_bias: (vocab,) or nullptr; logits: (batch, vocab) float32 (`DecodeHead`).
void mamba_decode_step(const void* const* table, int64_t layers, const void* norm_f, int weights_bf16,
                       const float* mask, float* hidden, float* out, int64_t batch, int64_t d, int64_t d_in,
                       int64_t nstate, int64_t rank, int64_t conv_kernel, float eps, int residual_in_fp32,
                       const void* head, const void* head_bias, int64_t vocab, float* logits, int nthreads) {
  const DecodeShape s{batch, d, d_in, nstate, rank, conv_kernel, eps, residual_in_fp32 != 0};
  if (weights_bf16) {
    const DecodeHead<bf16> lm_head{static_cast<const bf16*>(head), static_cast<const bf16*>(head_bias), vocab, logits};
    decode_step<bf16>(table, layers, static_cast<const bf16*>(norm_f), mask, hidden, out, s, lm_head, nthreads);
  } else {
    const DecodeHead<float> lm_head{static_cast<const float*>(head), static_cast<const float*>(head_bias), vocab,
                                    logits};
    decode_step<float>(table, layers, static_cast<const float*>(norm_f), mask, hidden, out, s, lm_head, nthreads);
  }
}

// out (batch, N) = x (batch, K) @ weight (N, K)ᵀ + bias, rounded to bfloat16 when the weights are (as torch's
// bfloat16 Linear). x float32; bias nullable.
void linear_rows(const void* weight, const void* bias, int weights_bf16, const float* x, float* out, int64_t batch,
                 int64_t K, int64_t N, int nthreads) {
#pragma omp parallel num_threads(nthreads)
  {
    if (weights_bf16) {
      gemv(static_cast<const bf16*>(weight), static_cast<const bf16*>(bias), x, batch, K, N,
           [&](int64_t j, int64_t n, float v) { out[j * N + n] = held<bf16>(v); });
    } else {
      gemv(static_cast<const float*>(weight), static_cast<const float*>(bias), x, batch, K, N,
           [&](int64_t j, int64_t n, float v) { out[j * N + n] = v; });
    }
  }
}

}  // extern "C"
