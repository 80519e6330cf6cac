// Kernel parameters of the fast forward main loops: a near twin of sa::AttentionProblem with
// the strides flattened, the softmax constants resolved and each family's schedule inputs
// (block lists, permutations, neighborhood geometry and tile shape) in plain fields.
#pragma once
#include <cstdint>

namespace sa::cuda::fast {

// Neighborhood tiles are boxes of one dilation group's token grid; box sides are powers of
// two so a tile row unravels into coordinates with shifts. Unused dims have length 1.
struct NeighborhoodTiles {
    int32_t grid[3];      // token grid, row-major (dim 2 fastest)
    int32_t kernel[3];
    int32_t dilation[3];
    int32_t stride[3];
    int32_t causal[3];
    int32_t q_shift[3];   // query box side = 1 << q_shift
    int32_t k_shift[3];   // key box side = 1 << k_shift
    int32_t q_tiles[3];   // query boxes per dim of the largest dilation group
};

struct BlockLists {
    int32_t block_q, block_k, num_k_blocks;
    const int32_t* num;   // [B, H, nQ]
    const int32_t* idx;   // [B, H, nQ, C]
    int32_t capacity;
    int64_t num_b, num_h, num_row;
    int64_t idx_b, idx_h, idx_row;
    const int32_t* full_num;  // optional
    const int32_t* full_idx;
    int32_t full_capacity;
    int64_t full_num_b, full_num_h, full_num_row;
    int64_t full_idx_b, full_idx_h, full_idx_row;
    const int32_t* key_perm;    // optional [B, H, S_k]: position -> original key
    int64_t key_perm_b, key_perm_h, key_perm_row;
    const int32_t* query_perm;  // optional [B, H, S_q]: position -> original query
    int64_t query_perm_b, query_perm_h, query_perm_row;
};

struct FwdParams {
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
    int32_t causal;     // block-sparse (dense takes it as a template flag)

    float scale;        // natural-log scale for the LSE
    float scale_log2;   // scale * log2(e), folded into exp2

    // GQA row packing (dense): with pack_group = group the query tile's rows are (query, head
    // in group) pairs of one kv head, row r = query * pack_group + head offset, so K/V stream
    // once per kv head; 1 otherwise. grid_heads is heads_kv when packed, heads_q when not.
    int32_t pack_group;
    int32_t grid_heads;

    int32_t num_m_blocks;  // work tiles per (batch, grid head)
    int32_t reverse_m;     // 1: work tiles are launched last first (causal: longest first)
    int32_t num_splits;    // 1: write out directly; >1: partials to the workspace
    float* o_partial;      // [splits, B*H, seqlen_q, D] fp32
    float* lse_partial;    // [splits, B*H, seqlen_q] fp32

    BlockLists lists;
    NeighborhoodTiles na;
};

}  // namespace sa::cuda::fast
