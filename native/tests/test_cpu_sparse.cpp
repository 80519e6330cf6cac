// CPU backend correctness for the sparse families against the double-precision reference:
// neighborhood attention (1-D, 2-D, 3-D), block-sparse with permutations, mask conversion and
// a PBS plan that keeps every block (which must reproduce dense causal attention).
#include <algorithm>
#include <numeric>

#include "test_util.h"

using namespace sa_test;

namespace {

// Per-dim window tables from the ABI's window helper (the single native rule).
struct NeighborhoodMask {
    sa_neighborhood_params p;
    std::vector<std::vector<int32_t>> start, end;  // [dim][coordinate], local indices
    explicit NeighborhoodMask(const sa_neighborhood_params& params) : p(params) {
        start.resize(p.spatial_rank);
        end.resize(p.spatial_rank);
        for (int dim = 0; dim < p.spatial_rank; ++dim) {
            const int32_t L = p.grid[dim], d = p.dilation[dim];
            for (int32_t x = 0; x < L; ++x) {
                const int32_t g = x % d, lg = (L - g + d - 1) / d;
                int32_t s = -1, e = -1;
                CHECK_OK(sa_neighborhood_window(x / d, lg, p.kernel[dim], p.stride[dim], p.causal[dim], &s, &e));
                start[dim].push_back(s);
                end[dim].push_back(e);
            }
        }
    }
    bool allows(int64_t qi, int64_t kj) const {
        for (int dim = p.spatial_rank - 1; dim >= 0; --dim) {
            const int32_t L = p.grid[dim], d = p.dilation[dim];
            const int32_t xq = static_cast<int32_t>(qi % L), xk = static_cast<int32_t>(kj % L);
            qi /= L;
            kj /= L;
            if (xq % d != xk % d) return false;
            const int32_t uk = xk / d;
            if (uk < start[dim][xq] || uk >= end[dim][xq]) return false;
        }
        return true;
    }
};

// kv_bhsd: V in [B, H, S, D] memory like K, so that fp32 key rows lie one after another (the
// loop then reads them in place).
void run_neighborhood_case(sa_dtype dtype, const sa_neighborhood_params& params, int64_t B,
                           int64_t hq, int64_t hkv, int64_t D, bool kv_bhsd = false) {
    int64_t S = 1;
    for (int i = 0; i < params.spatial_rank; ++i) S *= params.grid[i];
    HostTensor q = HostTensor::contiguous(dtype, {B, S, hq, D});
    HostTensor k = HostTensor::permuted(dtype, {B, S, hkv, D}, {0, 2, 1, 3});
    HostTensor v = kv_bhsd ? HostTensor::permuted(dtype, {B, S, hkv, D}, {0, 2, 1, 3})
                           : HostTensor::contiguous(dtype, {B, S, hkv, D});
    HostTensor out = HostTensor::contiguous(dtype, {B, S, hq, D});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {B, hq, S});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    out.poison();
    lse.poison();
    sa_attention_options options;
    sa_attention_options_init(&options);
    REQUIRE_OK(sa_neighborhood_forward(q.d(), k.d(), v.d(), out.d(), lse.d(), &params, &options));
    const NeighborhoodMask mask(params);
    const Reference ref = reference_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(D)),
                                              [&](int64_t, int64_t, int64_t i, int64_t j) {
                                                  return mask.allows(i, j);
                                              });
    CHECK_MATCHES_REFERENCE(ref, out, &lse);
    // Pair count agrees with the mask.
    int64_t pairs = 0, expected = 0;
    CHECK_OK(sa_neighborhood_pair_count(&params, &pairs));
    for (int64_t i = 0; i < S; ++i)
        for (int64_t j = 0; j < S; ++j) expected += mask.allows(i, j) ? 1 : 0;
    CHECK_EQ(pairs, expected);
}

}  // namespace

SA_TEST(cpu_gna_1d_blocked_and_sliding) {
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 13;
    p.kernel[0] = 4;
    p.stride[0] = 4;
    run_neighborhood_case(SA_DTYPE_F32, p, 2, 2, 1, 16);
    p.grid[0] = 37;
    p.kernel[0] = 7;
    p.stride[0] = 1;
    run_neighborhood_case(SA_DTYPE_F32, p, 1, 3, 3, 24);
}

SA_TEST(cpu_gna_1d_causal_strided_dilated) {
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 10;
    p.kernel[0] = 4;
    p.stride[0] = 2;
    p.causal[0] = 1;
    run_neighborhood_case(SA_DTYPE_F32, p, 1, 2, 1, 8);
    p.grid[0] = 41;
    p.kernel[0] = 5;
    p.stride[0] = 3;
    p.dilation[0] = 3;
    p.causal[0] = 0;
    run_neighborhood_case(SA_DTYPE_BF16, p, 2, 2, 2, 32);
    p.causal[0] = 1;
    run_neighborhood_case(SA_DTYPE_F16, p, 1, 4, 2, 16);
}

SA_TEST(cpu_gna_2d) {
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 2);
    p.grid[0] = 7;
    p.grid[1] = 9;
    p.kernel[0] = 3;
    p.kernel[1] = 5;
    p.stride[0] = 2;
    p.stride[1] = 1;
    p.causal[1] = 1;
    run_neighborhood_case(SA_DTYPE_F32, p, 2, 4, 2, 16);
    p.dilation[0] = 2;
    p.kernel[1] = 3;
    p.stride[1] = 3;
    p.causal[1] = 0;
    p.causal[0] = 1;
    run_neighborhood_case(SA_DTYPE_F16, p, 1, 2, 1, 40);
}

SA_TEST(cpu_gna_3d) {
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 3);
    p.grid[0] = 4;
    p.grid[1] = 5;
    p.grid[2] = 6;
    p.kernel[0] = 2;
    p.kernel[1] = 3;
    p.kernel[2] = 3;
    p.stride[2] = 2;
    p.dilation[2] = 2;
    p.causal[0] = 1;
    run_neighborhood_case(SA_DTYPE_F32, p, 1, 2, 1, 8);
}

SA_TEST(cpu_gna_key_tiles_of_whole_slices_and_query_runs) {
    // Grids large enough for interior boxes: key tiles made of whole dim-0 slices of the
    // windows' bounding box, each computed only for the run of queries that can see it (one
    // to four vectors of queries), with dilation groups, causal dims and rank 3.
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 2);
    p.grid[0] = 24;
    p.grid[1] = 20;
    p.kernel[0] = 7;
    p.kernel[1] = 5;
    run_neighborhood_case(SA_DTYPE_F32, p, 1, 2, 1, 16);
    p.dilation[0] = 2;
    p.causal[0] = 1;
    p.stride[1] = 2;
    run_neighborhood_case(SA_DTYPE_BF16, p, 1, 2, 2, 24);
    p.dilation[0] = 1;
    p.causal[0] = 0;
    p.stride[1] = 1;
    p.grid[0] = 30;
    p.grid[1] = 33;
    p.kernel[0] = 13;
    p.kernel[1] = 13;
    run_neighborhood_case(SA_DTYPE_F32, p, 1, 1, 1, 32);
    sa_neighborhood_params_init(&p, 3);
    p.grid[0] = 6;
    p.grid[1] = 10;
    p.grid[2] = 12;
    p.kernel[0] = 3;
    p.kernel[1] = 5;
    p.kernel[2] = 5;
    p.causal[2] = 1;
    run_neighborhood_case(SA_DTYPE_F32, p, 1, 2, 1, 8);
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 150;
    p.kernel[0] = 9;
    run_neighborhood_case(SA_DTYPE_F16, p, 1, 2, 1, 16);
}

SA_TEST(cpu_gna_rows_read_in_place) {
    // K and V in [B, H, S, D] fp32 memory with a head dim of whole vectors: key tiles read in
    // place, 2-D windows (masked tiles, query runs) and a 1-D strided case.
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 2);
    p.grid[0] = 19;
    p.grid[1] = 26;
    p.kernel[0] = 7;
    p.kernel[1] = 5;
    p.dilation[1] = 2;
    run_neighborhood_case(SA_DTYPE_F32, p, 1, 4, 2, 64, true);
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 300;
    p.kernel[0] = 65;
    p.stride[0] = 16;
    run_neighborhood_case(SA_DTYPE_F32, p, 2, 2, 1, 32, true);
}

namespace {

// Neighborhood attention with additional keys: the reference attends over the window keys and
// every additional key (a key tensor of S + S_extra rows).
void run_extra_kv_case(sa_dtype dtype, const sa_neighborhood_params& params, int64_t B, int64_t hq, int64_t hkv,
                       int64_t hkv_extra, int64_t S_extra, int64_t D, bool with_lse, bool with_workspace) {
    int64_t S = 1;
    for (int i = 0; i < params.spatial_rank; ++i) S *= params.grid[i];
    HostTensor q = HostTensor::contiguous(dtype, {B, S, hq, D});
    HostTensor k = HostTensor::contiguous(dtype, {B, S, hkv, D});
    HostTensor v = HostTensor::permuted(dtype, {B, S, hkv, D}, {0, 2, 1, 3});
    HostTensor ek = HostTensor::contiguous(dtype, {B, S_extra, hkv_extra, D});
    HostTensor ev = HostTensor::permuted(dtype, {B, S_extra, hkv_extra, D}, {0, 2, 1, 3});
    HostTensor out = HostTensor::contiguous(dtype, {B, S, hq, D});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {B, hq, S});
    for (HostTensor* t : {&q, &k, &v, &ek, &ev}) t->fill_random();
    out.poison();
    lse.poison();
    sa_attention_options options;
    sa_attention_options_init(&options);
    std::vector<unsigned char> workspace;
    if (with_workspace) {
        size_t bytes = 0;
        REQUIRE_OK(sa_neighborhood_extra_kv_workspace_size(q.d(), &bytes));
        CHECK(bytes >= static_cast<size_t>(B * S * hq * D) * dtype_bytes(dtype) + 2 * static_cast<size_t>(B * hq * S) * 4);
        workspace.assign(bytes + 16, 0xAB);
        options.workspace = workspace.data() + (16 - reinterpret_cast<uintptr_t>(workspace.data()) % 16) % 16;
        options.workspace_bytes = bytes;
    }
    REQUIRE_OK(sa_neighborhood_forward_extra_kv(q.d(), k.d(), v.d(), ek.d(), ev.d(), out.d(),
                                                with_lse ? lse.d() : nullptr, &params, &options));
    // Reference: both key sets in one tensor, the group's K/V head for each query head.
    const int64_t hk_all = hq;  // one K/V head per query head so both GQA ratios map
    HostTensor k_all = HostTensor::contiguous(dtype, {B, S + S_extra, hk_all, D});
    HostTensor v_all = HostTensor::contiguous(dtype, {B, S + S_extra, hk_all, D});
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < hq; ++h)
            for (int64_t d = 0; d < D; ++d) {
                for (int64_t j = 0; j < S; ++j) {
                    k_all.set({b, j, h, d}, k.get({b, j, h / (hq / hkv), d}));
                    v_all.set({b, j, h, d}, v.get({b, j, h / (hq / hkv), d}));
                }
                for (int64_t j = 0; j < S_extra; ++j) {
                    k_all.set({b, S + j, h, d}, ek.get({b, j, h / (hq / hkv_extra), d}));
                    v_all.set({b, S + j, h, d}, ev.get({b, j, h / (hq / hkv_extra), d}));
                }
            }
    const NeighborhoodMask mask(params);
    const Reference ref = reference_attention(q, k_all, v_all, 1.0 / std::sqrt(static_cast<double>(D)),
                                              [&](int64_t, int64_t, int64_t i, int64_t j) {
                                                  return j >= S || mask.allows(i, j);
                                              });
    CHECK_MATCHES_REFERENCE(ref, out, with_lse ? &lse : nullptr);
}

}  // namespace

SA_TEST(cpu_gna_additional_keys) {
    // 2-D windows plus global tokens merged by LSE in one call: GQA on both key sets, with and
    // without the caller's LSE and workspace; a 1-D causal case with a single extra key.
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 2);
    p.grid[0] = 9;
    p.grid[1] = 14;
    p.kernel[0] = 5;
    p.kernel[1] = 7;
    p.dilation[1] = 2;
    run_extra_kv_case(SA_DTYPE_F32, p, 2, 4, 2, 1, 13, 32, true, false);
    run_extra_kv_case(SA_DTYPE_BF16, p, 1, 4, 4, 2, 40, 64, false, true);
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 150;
    p.kernel[0] = 17;
    p.causal[0] = 1;
    run_extra_kv_case(SA_DTYPE_F16, p, 1, 2, 1, 1, 1, 16, true, true);
}

SA_TEST(cpu_gna_additional_keys_errors) {
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 32;
    p.kernel[0] = 5;
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F32, {1, 32, 2, 16});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F32, {1, 32, 2, 16});
    HostTensor ek = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 2, 8});  // head dim differs
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F32, {1, 32, 2, 16});
    sa_attention_options options;
    sa_attention_options_init(&options);
    CHECK_ERROR(sa_neighborhood_forward_extra_kv(q.d(), k.d(), k.d(), nullptr, nullptr, out.d(), nullptr, &p, &options),
                SA_ERROR_INVALID_ARGUMENT, "extra_k");
    CHECK_ERROR(sa_neighborhood_forward_extra_kv(q.d(), k.d(), k.d(), ek.d(), ek.d(), out.d(), nullptr, &p, &options),
                SA_ERROR_INVALID_ARGUMENT, "extra_k");
    HostTensor ek3 = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 3, 16});  // 3 heads do not divide 2
    CHECK_ERROR(sa_neighborhood_forward_extra_kv(q.d(), k.d(), k.d(), ek3.d(), ek3.d(), out.d(), nullptr, &p, &options),
                SA_ERROR_INVALID_ARGUMENT, "extra_k", "heads");
    // out may not overlap the additional keys.
    CHECK_ERROR(sa_neighborhood_forward_extra_kv(q.d(), k.d(), k.d(), out.d(), k.d(), out.d(), nullptr, &p, &options),
                SA_ERROR_INVALID_ARGUMENT);
    size_t bytes = 0;
    CHECK_OK(sa_neighborhood_extra_kv_workspace_size(q.d(), &bytes));
    CHECK_EQ(static_cast<int64_t>(bytes), int64_t(32 * 2 * 16 * 4 / 256 * 256 + 2 * 256));
}

SA_TEST(cpu_gna_full_window_equals_dense) {
    // k == L, s == d == 1, non-causal: dense attention.
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 23;
    p.kernel[0] = 23;
    const NeighborhoodMask mask(p);
    for (int64_t i = 0; i < 23; ++i)
        for (int64_t j = 0; j < 23; ++j) CHECK(mask.allows(i, j));
    run_neighborhood_case(SA_DTYPE_F32, p, 1, 1, 1, 8);
}

/* Block-sparse ------------------------------------------------------------------------------- */

namespace {

struct BlockSparseCase {
    int64_t B = 2, Sq = 150, Sk = 200, Hq = 4, Hkv = 2, D = 16;
    int32_t block_q = 64, block_k = 64;
    bool causal = false, key_perm = true, query_perm = false, full_lists = false;
    bool top_left = false;  // causal alignment t <= i instead of t <= i + S_k - S_q
    bool broadcast_heads = false;
    bool kv_bhsd = false;  // K and V in [B, H, S, D] memory: fp32 key rows read in place
    sa_dtype dtype = SA_DTYPE_F32;
};

void run_block_sparse_case(const BlockSparseCase& c) {
    const int64_t nq = (c.Sq + c.block_q - 1) / c.block_q, nk = (c.Sk + c.block_k - 1) / c.block_k;
    const int64_t C = nk, Hl = c.broadcast_heads ? 1 : c.Hq;
    HostTensor q = HostTensor::contiguous(c.dtype, {c.B, c.Sq, c.Hq, c.D});
    auto kv = [&] {
        return c.kv_bhsd ? HostTensor::permuted(c.dtype, {c.B, c.Sk, c.Hkv, c.D}, {0, 2, 1, 3})
                         : HostTensor::contiguous(c.dtype, {c.B, c.Sk, c.Hkv, c.D});
    };
    HostTensor k = kv();
    HostTensor v = kv();
    HostTensor out = HostTensor::permuted(c.dtype, {c.B, c.Sq, c.Hq, c.D}, {0, 2, 1, 3});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {c.B, c.Hq, c.Sq});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    out.poison();
    lse.poison();

    // Lists: each block goes to the partial list, the full list or neither, at random.
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {c.B, Hl, nq});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {c.B, Hl, nq, C});
    HostTensor fnum = HostTensor::contiguous(SA_DTYPE_I32, {c.B, Hl, nq});
    HostTensor fidx = HostTensor::contiguous(SA_DTYPE_I32, {c.B, Hl, nq, C});
    std::vector<char> listed(static_cast<size_t>(c.B * Hl * nq * nk), 0);
    for (int64_t row = 0; row < c.B * Hl * nq; ++row) {
        int32_t n = 0, f = 0;
        std::vector<int32_t> blocks(static_cast<size_t>(nk));
        std::iota(blocks.begin(), blocks.end(), 0);
        std::shuffle(blocks.begin(), blocks.end(), rng());  // lists need not be sorted
        for (int32_t j : blocks) {
            const int64_t pick = uniform_int(0, 2);
            if (pick == 0) continue;
            listed[static_cast<size_t>(row * nk + j)] = 1;
            if (pick == 2 && c.full_lists) fidx.i32()[row * C + f++] = j;
            else idx.i32()[row * C + n++] = j;
        }
        num.i32()[row] = n;
        fnum.i32()[row] = f;
        for (int32_t x = n; x < C; ++x) idx.i32()[row * C + x] = -1;
        for (int32_t x = f; x < C; ++x) fidx.i32()[row * C + x] = -1;
    }
    HostTensor kperm = HostTensor::contiguous(SA_DTYPE_I32, {c.B, c.Hq, c.Sk});
    HostTensor qperm = HostTensor::contiguous(SA_DTYPE_I32, {c.B, c.Hq, c.Sq});
    std::vector<int32_t> kinv(static_cast<size_t>(c.B * c.Hq * c.Sk)), qinv(static_cast<size_t>(c.B * c.Hq * c.Sq));
    for (int64_t bh = 0; bh < c.B * c.Hq; ++bh) {
        int32_t* kp = kperm.i32() + bh * c.Sk;
        int32_t* qp = qperm.i32() + bh * c.Sq;
        std::iota(kp, kp + c.Sk, 0);
        std::iota(qp, qp + c.Sq, 0);
        if (c.key_perm) std::shuffle(kp, kp + c.Sk, rng());
        if (c.query_perm) std::shuffle(qp, qp + c.Sq, rng());
        for (int64_t j = 0; j < c.Sk; ++j) kinv[bh * c.Sk + kp[j]] = static_cast<int32_t>(j);
        for (int64_t i = 0; i < c.Sq; ++i) qinv[bh * c.Sq + qp[i]] = static_cast<int32_t>(i);
    }

    sa_block_sparse_params params;
    std::memset(&params, 0, sizeof params);
    params.block_q = c.block_q;
    params.block_k = c.block_k;
    params.kv_num_blocks = num.desc;
    params.kv_indices = idx.desc;
    if (c.broadcast_heads) {  // one list set read by every head
        params.kv_num_blocks.shape[1] = c.Hq;
        params.kv_num_blocks.strides[1] = 0;
        params.kv_indices.shape[1] = c.Hq;
        params.kv_indices.strides[1] = 0;
    }
    if (c.full_lists) {
        params.full_kv_num_blocks = fnum.desc;
        params.full_kv_indices = fidx.desc;
    }
    if (c.key_perm) params.key_perm = kperm.desc;
    if (c.query_perm) params.query_perm = qperm.desc;
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = c.causal ? 1 : 0;
    options.causal_alignment = c.top_left ? SA_CAUSAL_TOP_LEFT : SA_CAUSAL_BOTTOM_RIGHT;
    REQUIRE_OK(sa_block_sparse_forward(q.d(), k.d(), v.d(), out.d(), lse.d(), &params, &options));

    const int64_t offset = c.top_left ? 0 : c.Sk - c.Sq;
    const Reference ref = reference_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(c.D)),
                                              [&](int64_t b, int64_t h, int64_t i, int64_t t) {
        if (c.causal && t > i + offset) return false;
        const int64_t bh = b * c.Hq + h;
        const int64_t row = qinv[bh * c.Sq + i] / c.block_q;
        const int64_t col = kinv[bh * c.Sk + t] / c.block_k;
        const int64_t hl = c.broadcast_heads ? 0 : h;
        return listed[static_cast<size_t>(((b * Hl + hl) * nq + row) * nk + col)] != 0;
    });
    CHECK_MATCHES_REFERENCE(ref, out, &lse);
}

}  // namespace

SA_TEST(cpu_block_sparse_key_permutation) {
    BlockSparseCase c;
    run_block_sparse_case(c);
    c.causal = true;
    run_block_sparse_case(c);
}

SA_TEST(cpu_block_sparse_rows_read_in_place) {
    // fp32 K/V rows one after another in memory, a head dim of whole vectors at every level:
    // the GEMMs read the rows in place, gathered (key permutation) or not.
    BlockSparseCase c;
    c.kv_bhsd = true;
    c.D = 64;
    c.Sq = 300;
    c.Sk = 333;
    c.block_q = c.block_k = 128;
    run_block_sparse_case(c);
    c.key_perm = false;
    c.causal = true;
    run_block_sparse_case(c);
    c.full_lists = true;
    c.D = 32;
    c.block_q = c.block_k = 64;
    run_block_sparse_case(c);
}

SA_TEST(cpu_block_sparse_causal_top_left) {
    BlockSparseCase c;  // S_q < S_k
    c.causal = true;
    c.top_left = true;
    run_block_sparse_case(c);
    c.Sq = 260;  // S_q > S_k, both permutations
    c.Sk = 150;
    c.query_perm = true;
    run_block_sparse_case(c);
}

SA_TEST(cpu_block_sparse_full_lists_and_query_permutation) {
    BlockSparseCase c;
    c.full_lists = true;
    c.query_perm = true;
    c.causal = true;
    c.block_q = 128;
    c.Sq = 300;
    c.Sk = 260;
    run_block_sparse_case(c);
}

SA_TEST(cpu_block_sparse_identity_broadcast_and_dtypes) {
    BlockSparseCase c;
    c.key_perm = false;
    c.broadcast_heads = true;
    c.block_k = 128;
    c.dtype = SA_DTYPE_BF16;
    run_block_sparse_case(c);
    c.dtype = SA_DTYPE_F16;
    c.causal = true;
    c.key_perm = true;
    run_block_sparse_case(c);
}

/* Mask conversion ------------------------------------------------------------------------------ */

SA_TEST(cpu_block_mask_round_trip) {
    const int64_t B = 2, H = 3, nq = 5, nk = 7;
    HostTensor mask = HostTensor::contiguous(SA_DTYPE_BOOL, {B, H, nq, nk});
    for (int64_t i = 0; i < mask.numel(); ++i) mask.u8()[i] = uniform_int(0, 2) == 0 ? 0 : static_cast<uint8_t>(uniform_int(1, 255));
    for (int64_t j = 0; j < nk; ++j) mask.u8()[j] = 0;  // one empty row
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {B, H, nq});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {B, H, nq, nk});
    num.poison();
    idx.poison();
    REQUIRE_OK(sa_block_mask_to_lists(mask.d(), num.d(), idx.d(), nullptr));
    for (int64_t row = 0; row < B * H * nq; ++row) {
        int32_t expected = 0;
        for (int64_t j = 0; j < nk; ++j)
            if (mask.u8()[row * nk + j]) CHECK_EQ(idx.i32()[row * nk + expected++], static_cast<int32_t>(j));
        CHECK_EQ(num.i32()[row], expected);
        for (int64_t x = expected; x < nk; ++x) CHECK_EQ(idx.i32()[row * nk + x], -1);
    }
    HostTensor back = HostTensor::contiguous(SA_DTYPE_BOOL, {B, H, nq, nk});
    std::memset(back.u8(), 0x77, back.storage.size());
    REQUIRE_OK(sa_block_lists_to_mask(num.d(), idx.d(), back.d(), nullptr));
    for (int64_t i = 0; i < mask.numel(); ++i) CHECK_EQ(back.u8()[i] != 0, mask.u8()[i] != 0);
    for (int64_t i = 0; i < back.numel(); ++i) CHECK(back.u8()[i] == 0 || back.u8()[i] == 1);
}

/* PBS ------------------------------------------------------------------------------------------ */

// With tau = 1 every candidate block is kept, so the plan must cover every causal pair: that
// needs every block of the query's own segment (its keys are permuted too), not only those up
// to the diagonal.
SA_TEST(cpu_pbs_plan_with_tau_one_is_dense_causal) {
    const int64_t B = 1, S = 330, Hq = 2, Hkv = 1, D = 16;
    const int32_t block = 64;
    const int64_t n = (S + block - 1) / block;
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F32, {B, S, Hq, D});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F32, {B, S, Hkv, D});
    HostTensor v = HostTensor::contiguous(SA_DTYPE_F32, {B, S, Hkv, D});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F32, {B, S, Hq, D});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {B, Hq, S});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    HostTensor perm = HostTensor::contiguous(SA_DTYPE_I32, {B, Hq, S});
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {B, Hq, n});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {B, Hq, n, n});
    sa_pbs_options pbs;
    sa_pbs_options_init(&pbs);
    pbs.block = block;
    pbs.segment = 128;
    pbs.tau = 1.0f;
    REQUIRE_OK(sa_pbs_plan(q.d(), k.d(), &pbs, perm.d(), num.d(), idx.d()));
    // Lists ascending, -1 after the count; tokens past the last full segment keep their place.
    for (int64_t row = 0; row < B * Hq * n; ++row) {
        const int32_t count = num.i32()[row];
        CHECK(count >= 1 && count <= n);
        for (int32_t x = 1; x < count; ++x) CHECK(idx.i32()[row * n + x] > idx.i32()[row * n + x - 1]);
        for (int64_t x = count; x < n; ++x) CHECK_EQ(idx.i32()[row * n + x], -1);
    }
    for (int64_t h = 0; h < Hq; ++h)
        for (int64_t j = 256; j < S; ++j) CHECK_EQ(perm.i32()[h * S + j], static_cast<int32_t>(j));

    sa_block_sparse_params params;
    std::memset(&params, 0, sizeof params);
    params.block_q = block;
    params.block_k = block;
    params.kv_num_blocks = num.desc;
    params.kv_indices = idx.desc;
    params.key_perm = perm.desc;
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = 1;
    out.poison();
    lse.poison();
    REQUIRE_OK(sa_block_sparse_forward(q.d(), k.d(), v.d(), out.d(), lse.d(), &params, &options));
    const Reference ref = reference_attention(q, k, v, 0.25, [](int64_t, int64_t, int64_t i, int64_t j) {
        return j <= i;
    });
    CHECK_MATCHES_REFERENCE(ref, out, &lse);
}
