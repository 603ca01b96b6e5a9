// Matrix-vector products for decode, y[t, r] = sum_k W[r, k] x[t, k], weights read in place in
// their stored type. Decode is bound by weight bandwidth, so each simdgroup computes
// kRowsPerSimdgroup rows and reuses every activation load across them; lanes split K and each
// row is reduced with one simd_sum. The grid is (row blocks, tokens): small batches reuse the
// same kernel. Rows past the end are clamped for reading and masked at the store. Nothing
// assumes a simdgroup width: lanes stride by threads_per_simdgroup.
#include "metal_common.h"

constant constexpr uint kRowsPerSimdgroup = 4;

struct MatvecPlace {
  uint row0;   // first of this simdgroup's rows
  uint token;
  uint lane;
  uint width;  // threads per simdgroup
};

inline void matvec_store(constant MatmulArgs& args, device float* y, MatvecPlace place,
                         thread float* sums) {
  device float* yt = y + uint64_t(place.token) * uint(args.rows);
  for (uint r = 0; r < kRowsPerSimdgroup; ++r) {
    const float total = simd_sum(sums[r]);
    if (place.lane == 0 && place.row0 + r < uint(args.rows)) yt[place.row0 + r] = total;
  }
}

inline device const char* matvec_row(constant MatmulArgs& args, device const char* w, uint row) {
  const uint last = uint(args.rows) - 1;
  return w + uint64_t(min(row, last)) * uint64_t(args.w_row_bytes);
}

// F32, F16, BF16, and the K types for now: lanes take elements lane, lane + width, ...
// (coalesced across the simdgroup), each dequantised on its own.
template <int kType>
inline void matvec_float(constant MatmulArgs& args, device const char* w, device const float* x,
                         device float* y, MatvecPlace place) {
  const uint cols = uint(args.cols);
  device const float* xt = x + uint64_t(place.token) * cols;
  float sums[kRowsPerSimdgroup] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (uint k = place.lane; k < cols; k += place.width) {
    const float xv = xt[k];
    for (uint r = 0; r < kRowsPerSimdgroup; ++r) {
      sums[r] += weight_element<kType>(matvec_row(args, w, place.row0 + r), k) * xv;
    }
  }
  matvec_store(args, y, place, sums);
}

// Q8_0: four lanes per 32-value block (8 int8 each), width / 4 blocks in flight; the block
// scale multiplies the integer-weighted partial sum once.
inline void matvec_q8_0(constant MatmulArgs& args, device const char* w, device const float* x,
                        device float* y, MatvecPlace place) {
  const uint blocks = uint(args.cols) / kQBlock;
  const uint part = place.lane % 4;
  device const float* xt = x + uint64_t(place.token) * uint(args.cols);
  float sums[kRowsPerSimdgroup] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (uint b = place.lane / 4; b < blocks; b += place.width / 4) {
    float xv[8];
    for (uint i = 0; i < 8; ++i) xv[i] = xt[b * kQBlock + part * 8 + i];
    for (uint r = 0; r < kRowsPerSimdgroup; ++r) {
      device const BlockQ8_0* block =
          (device const BlockQ8_0*)matvec_row(args, w, place.row0 + r) + b;
      float partial = 0.0f;
      for (uint i = 0; i < 8; ++i) partial += float(block->qs[part * 8 + i]) * xv[i];
      sums[r] += float(block->d) * partial;
    }
  }
  matvec_store(args, y, place, sums);
}

// Q4_0: two lanes per block; lane half h reads bytes 8h..8h+7, whose low nibbles are elements
// 8h + i and high nibbles elements 8h + i + 16. The -8 offset is folded in through sum(x).
inline void matvec_q4_0(constant MatmulArgs& args, device const char* w, device const float* x,
                        device float* y, MatvecPlace place) {
  const uint blocks = uint(args.cols) / kQBlock;
  const uint part = place.lane % 2;
  device const float* xt = x + uint64_t(place.token) * uint(args.cols);
  float sums[kRowsPerSimdgroup] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (uint b = place.lane / 2; b < blocks; b += place.width / 2) {
    float lo[8];
    float hi[8];
    float x_sum = 0.0f;
    for (uint i = 0; i < 8; ++i) {
      lo[i] = xt[b * kQBlock + part * 8 + i];
      hi[i] = xt[b * kQBlock + part * 8 + i + 16];
      x_sum += lo[i] + hi[i];
    }
    for (uint r = 0; r < kRowsPerSimdgroup; ++r) {
      device const BlockQ4_0* block =
          (device const BlockQ4_0*)matvec_row(args, w, place.row0 + r) + b;
      float partial = 0.0f;
      for (uint i = 0; i < 8; ++i) {
        const uint byte = uint(block->qs[part * 8 + i]);
        partial += float(byte & 15u) * lo[i] + float(byte >> 4) * hi[i];
      }
      sums[r] += float(block->d) * (partial - 8.0f * x_sum);
    }
  }
  matvec_store(args, y, place, sums);
}

// The chunked types (weight_chunk): lanes take 16-element chunks lane, lane + width, ...;
// each lane loads its 16 activations once and dequantises the chunk of every row.
template <int kType>
inline void matvec_chunks(constant MatmulArgs& args, device const char* w, device const float* x,
                          device float* y, MatvecPlace place) {
  const uint chunks = uint(args.cols) / kChunk;
  device const float* xt = x + uint64_t(place.token) * uint(args.cols);
  float sums[kRowsPerSimdgroup] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (uint c = place.lane; c < chunks; c += place.width) {
    float xv[kChunk];
    for (uint i = 0; i < kChunk; ++i) xv[i] = xt[c * kChunk + i];
    for (uint r = 0; r < kRowsPerSimdgroup; ++r) {
      float wv[kChunk];
      weight_chunk<kType>(matvec_row(args, w, place.row0 + r), c, wv);
      float partial = 0.0f;
      for (uint i = 0; i < kChunk; ++i) partial += wv[i] * xv[i];
      sums[r] += partial;
    }
  }
  matvec_store(args, y, place, sums);
}

// Threadgroups of any number of simdgroups; each simdgroup owns kRowsPerSimdgroup rows.
inline MatvecPlace matvec_place(uint3 group, uint lane, uint simdgroup, uint n_simdgroups,
                                uint width) {
  MatvecPlace place;
  place.row0 = (group.x * n_simdgroups + simdgroup) * kRowsPerSimdgroup;
  place.token = group.y;
  place.lane = lane;
  place.width = width;
  return place;
}

template <int kType>
kernel void matvec_float_kernel(constant MatmulArgs& args [[buffer(0)]],
                                device const char* w [[buffer(1)]],
                                device const float* x [[buffer(2)]],
                                device float* y [[buffer(3)]],
                                uint3 group [[threadgroup_position_in_grid]],
                                uint lane [[thread_index_in_simdgroup]],
                                uint simdgroup [[simdgroup_index_in_threadgroup]],
                                uint n_simdgroups [[simdgroups_per_threadgroup]],
                                uint width [[threads_per_simdgroup]]) {
  const MatvecPlace place = matvec_place(group, lane, simdgroup, n_simdgroups, width);
  if (place.row0 >= uint(args.rows)) return;  // whole simdgroup past the end: uniform
  matvec_float<kType>(args, w, x, y, place);
}

template [[host_name("matmul_vec_kernel")]] [[kernel]] decltype(matvec_float_kernel<kWeightF32>) matvec_float_kernel<kWeightF32>;
template [[host_name("matmul_vec_f16_kernel")]] [[kernel]] decltype(matvec_float_kernel<kWeightF16>) matvec_float_kernel<kWeightF16>;
template [[host_name("matmul_vec_bf16_kernel")]] [[kernel]] decltype(matvec_float_kernel<kWeightBF16>) matvec_float_kernel<kWeightBF16>;
template [[host_name("matmul_vec_q4_K_kernel")]] [[kernel]] decltype(matvec_float_kernel<kWeightQ4_K>) matvec_float_kernel<kWeightQ4_K>;
template [[host_name("matmul_vec_q6_K_kernel")]] [[kernel]] decltype(matvec_float_kernel<kWeightQ6_K>) matvec_float_kernel<kWeightQ6_K>;

kernel void matmul_vec_q8_0_kernel(constant MatmulArgs& args [[buffer(0)]],
                                   device const char* w [[buffer(1)]],
                                   device const float* x [[buffer(2)]],
                                   device float* y [[buffer(3)]],
                                   uint3 group [[threadgroup_position_in_grid]],
                                   uint lane [[thread_index_in_simdgroup]],
                                   uint simdgroup [[simdgroup_index_in_threadgroup]],
                                   uint n_simdgroups [[simdgroups_per_threadgroup]],
                                   uint width [[threads_per_simdgroup]]) {
  const MatvecPlace place = matvec_place(group, lane, simdgroup, n_simdgroups, width);
  if (place.row0 >= uint(args.rows)) return;  // whole simdgroup past the end: uniform
  matvec_q8_0(args, w, x, y, place);
}

kernel void matmul_vec_q4_0_kernel(constant MatmulArgs& args [[buffer(0)]],
                                   device const char* w [[buffer(1)]],
                                   device const float* x [[buffer(2)]],
                                   device float* y [[buffer(3)]],
                                   uint3 group [[threadgroup_position_in_grid]],
                                   uint lane [[thread_index_in_simdgroup]],
                                   uint simdgroup [[simdgroup_index_in_threadgroup]],
                                   uint n_simdgroups [[simdgroups_per_threadgroup]],
                                   uint width [[threads_per_simdgroup]]) {
  const MatvecPlace place = matvec_place(group, lane, simdgroup, n_simdgroups, width);
  if (place.row0 >= uint(args.rows)) return;  // whole simdgroup past the end: uniform
  matvec_q4_0(args, w, x, y, place);
}

template <int kType>
kernel void matvec_chunks_kernel(constant MatmulArgs& args [[buffer(0)]],
                                 device const char* w [[buffer(1)]],
                                 device const float* x [[buffer(2)]],
                                 device float* y [[buffer(3)]],
                                 uint3 group [[threadgroup_position_in_grid]],
                                 uint lane [[thread_index_in_simdgroup]],
                                 uint simdgroup [[simdgroup_index_in_threadgroup]],
                                 uint n_simdgroups [[simdgroups_per_threadgroup]],
                                 uint width [[threads_per_simdgroup]]) {
  const MatvecPlace place = matvec_place(group, lane, simdgroup, n_simdgroups, width);
  if (place.row0 >= uint(args.rows)) return;  // whole simdgroup past the end: uniform
  matvec_chunks<kType>(args, w, x, y, place);
}

template [[host_name("matmul_vec_q4_1_kernel")]] [[kernel]] decltype(matvec_chunks_kernel<kWeightQ4_1>) matvec_chunks_kernel<kWeightQ4_1>;
template [[host_name("matmul_vec_q5_0_kernel")]] [[kernel]] decltype(matvec_chunks_kernel<kWeightQ5_0>) matvec_chunks_kernel<kWeightQ5_0>;
template [[host_name("matmul_vec_q5_1_kernel")]] [[kernel]] decltype(matvec_chunks_kernel<kWeightQ5_1>) matvec_chunks_kernel<kWeightQ5_1>;
template [[host_name("matmul_vec_q2_K_kernel")]] [[kernel]] decltype(matvec_chunks_kernel<kWeightQ2_K>) matvec_chunks_kernel<kWeightQ2_K>;
template [[host_name("matmul_vec_q3_K_kernel")]] [[kernel]] decltype(matvec_chunks_kernel<kWeightQ3_K>) matvec_chunks_kernel<kWeightQ3_K>;
template [[host_name("matmul_vec_q5_K_kernel")]] [[kernel]] decltype(matvec_chunks_kernel<kWeightQ5_K>) matvec_chunks_kernel<kWeightQ5_K>;
template [[host_name("matmul_vec_iq4_nl_kernel")]] [[kernel]] decltype(matvec_chunks_kernel<kWeightIQ4_NL>) matvec_chunks_kernel<kWeightIQ4_NL>;
template [[host_name("matmul_vec_iq4_xs_kernel")]] [[kernel]] decltype(matvec_chunks_kernel<kWeightIQ4_XS>) matvec_chunks_kernel<kWeightIQ4_XS>;
