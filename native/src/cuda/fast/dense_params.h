// Kernel parameters of the fast dense forward: a near twin of sa::AttentionProblem with the
// strides flattened and the softmax constants resolved on the host.
#pragma once
#include <cstdint>

namespace sa::cuda::fast {

struct DenseParams {
    const void* q;
    const void* k;
    const void* v;
    void* out;
    float* lse;  // nullptr when not requested

    int64_t q_batch, q_seq, q_head;  // strides in elements
    int64_t k_batch, k_seq, k_head;
    int64_t v_batch, v_seq, v_head;
    int64_t o_batch, o_seq, o_head;
    int64_t lse_batch, lse_head, lse_seq;

    int32_t batch;
    int32_t heads_q;
    int32_t group;      // heads_q / heads_kv
    int32_t seqlen_q;   // varlen: the maximum
    int32_t seqlen_k;
    const int32_t* cu_seqlens_q;  // varlen only
    const int32_t* cu_seqlens_k;

    float scale;        // natural-log scale for the LSE
    float scale_log2;   // scale * log2(e), folded into exp2

    // GQA row packing: with pack_group = group the query tile's rows are (query, head in group)
    // pairs of one kv head, row r = query * pack_group + head offset, so K/V stream once per kv
    // head; 1 otherwise. grid_heads is heads_kv when packed, heads_q when not.
    int32_t pack_group;
    int32_t grid_heads;

    int32_t num_m_blocks;  // over seqlen_q * pack_group rows
    int32_t num_splits;  // 1: write out directly; >1: partials to the workspace
    float* o_partial;    // [splits, B*H, seqlen_q, D] fp32
    float* lse_partial;  // [splits, B*H, seqlen_q] fp32
};

}  // namespace sa::cuda::fast
