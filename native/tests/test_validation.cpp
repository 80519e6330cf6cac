// One case per validation rule: the status code and a message naming the argument and value.
#include <limits>

#include "test_util.h"

using namespace sa_test;

namespace {

// A valid dense call (B = 2, S_q = 5, S_k = 7, H_q = 4, H_kv = 2, D = 8) to break one piece at
// a time.
struct DenseCall {
    HostTensor q, k, v, out, lse;
    sa_attention_options options;
    explicit DenseCall(sa_dtype dtype = SA_DTYPE_F32, int64_t hq = 4, int64_t hkv = 2,
                       int64_t d = 8) {
        q = HostTensor::contiguous(dtype, {2, 5, hq, d});
        k = HostTensor::contiguous(dtype, {2, 7, hkv, d});
        v = HostTensor::contiguous(dtype, {2, 7, hkv, d});
        out = HostTensor::contiguous(dtype, {2, 5, hq, d});
        lse = HostTensor::contiguous(SA_DTYPE_F32, {2, hq, 5});
        q.fill_random();
        k.fill_random();
        v.fill_random();
        sa_attention_options_init(&options);
    }
    sa_status run() {
        return sa_dense_forward(q.d(), k.d(), v.d(), out.d(), lse.d(), &options);
    }
};

#define EXPECT_INVALID(expr, ...) CHECK_ERROR((expr), SA_ERROR_INVALID_ARGUMENT, __VA_ARGS__)

// A valid call must not be refused by validation (the backend may still report unsupported).
#define EXPECT_ACCEPTED(expr)                                                            \
    do {                                                                                 \
        const sa_status sa_status_ = (expr);                                             \
        if (sa_status_ == SA_ERROR_INVALID_ARGUMENT)                                     \
            ::sa_test::report_failure(__FILE__, __LINE__,                                \
                                      std::string(#expr) + " was refused: " + sa_last_error()); \
    } while (0)

}  // namespace

SA_TEST(validation_valid_dense_call_is_accepted) {
    DenseCall c;
    EXPECT_ACCEPTED(c.run());
    EXPECT_ACCEPTED(sa_dense_forward(c.q.d(), c.k.d(), c.v.d(), c.out.d(), nullptr, nullptr));
}

SA_TEST(validation_null_tensor_descriptor) {
    DenseCall c;
    EXPECT_INVALID(sa_dense_forward(nullptr, c.k.d(), c.v.d(), c.out.d(), nullptr, nullptr),
                   "q: tensor descriptor is NULL");
    EXPECT_INVALID(sa_dense_forward(c.q.d(), nullptr, c.v.d(), c.out.d(), nullptr, nullptr), "k:", "NULL");
    EXPECT_INVALID(sa_dense_forward(c.q.d(), c.k.d(), nullptr, c.out.d(), nullptr, nullptr), "v:", "NULL");
    EXPECT_INVALID(sa_dense_forward(c.q.d(), c.k.d(), c.v.d(), nullptr, nullptr, nullptr), "out:", "NULL");
}

SA_TEST(validation_null_data_pointer) {
    DenseCall c;
    c.k.desc.data = nullptr;
    EXPECT_INVALID(c.run(), "k: data pointer is NULL");
}

SA_TEST(validation_rank) {
    DenseCall c;
    c.q.desc.rank = 3;
    EXPECT_INVALID(c.run(), "q: rank must be 4 ([B, S, H, D]), got 3");
}

SA_TEST(validation_dtype_enum) {
    DenseCall c;
    c.v.desc.dtype = 9;
    EXPECT_INVALID(c.run(), "v: dtype 9");
}

SA_TEST(validation_dtype_cpu_supported) {
    DenseCall c;
    for (HostTensor* t : {&c.q, &c.k, &c.v, &c.out}) t->desc.dtype = SA_DTYPE_I32;
    EXPECT_INVALID(c.run(), "q: dtype i32 is not supported on the CPU backend");
}

SA_TEST(validation_dtype_identical_qkvo) {
    DenseCall c;
    c.k.desc.dtype = SA_DTYPE_F16;
    EXPECT_INVALID(c.run(), "k: dtype f16 differs from q's dtype f32");
    DenseCall c2;
    c2.out.desc.dtype = SA_DTYPE_BF16;
    EXPECT_INVALID(c2.run(), "out: dtype bf16 differs from q's dtype f32");
}

SA_TEST(validation_lse_dtype_f32) {
    DenseCall c(SA_DTYPE_F16);
    c.lse.desc.dtype = SA_DTYPE_F16;
    EXPECT_INVALID(c.run(), "lse: dtype must be f32, got f16");
}

SA_TEST(validation_same_device) {
    DenseCall c;
    c.v.desc.device_type = SA_DEVICE_CUDA;
    c.v.desc.device_id = 1;
    EXPECT_INVALID(c.run(), "v: device cuda:1 differs from q's device cpu");
    DenseCall c2;
    c2.lse.desc.device_id = 3;
    EXPECT_INVALID(c2.run(), "lse: device_id must be 0 for a CPU tensor, got 3");
    DenseCall c3;
    c3.k.desc.device_type = 5;
    EXPECT_INVALID(c3.run(), "k: device_type 5");
}

SA_TEST(validation_innermost_stride_one) {
    DenseCall c;
    c.q.desc.strides[3] = 2;
    EXPECT_INVALID(c.run(), "q: innermost stride (strides[3]) must be 1, got 2");
}

SA_TEST(validation_negative_stride) {
    DenseCall c;
    c.k.desc.strides[1] = -16;
    EXPECT_INVALID(c.run(), "k: strides[1] must not be negative, got -16");
}

SA_TEST(validation_zero_stride_only_for_index_tensors) {
    DenseCall c;
    c.v.desc.strides[0] = 0;
    EXPECT_INVALID(c.run(), "v: strides[0] is 0");
}

SA_TEST(validation_every_dim_at_least_one) {
    DenseCall c;
    c.q.desc.shape[1] = 0;
    EXPECT_INVALID(c.run(), "q: shape[1] must be >= 1, got 0");
    DenseCall c2;
    c2.k.desc.shape[2] = -1;
    EXPECT_INVALID(c2.run(), "k: shape[2] must be >= 1, got -1");
}

SA_TEST(validation_head_dim_equal) {
    DenseCall c;
    c.k.desc.shape[3] = 4;
    c.v.desc.shape[3] = 4;
    EXPECT_INVALID(c.run(), "k: shape[3] (D = 4) must equal q's D = 8");
}

SA_TEST(validation_k_v_shapes_equal) {
    DenseCall c;
    c.v.desc.shape[1] = 6;
    EXPECT_INVALID(c.run(), "v: shape [2, 6, 2, 8] must equal k's shape [2, 7, 2, 8]");
}

SA_TEST(validation_out_shape_equals_q) {
    DenseCall c;
    c.out.desc.shape[2] = 2;
    EXPECT_INVALID(c.run(), "out: shape [2, 5, 2, 8] must equal q's shape [2, 5, 4, 8]");
}

SA_TEST(validation_batch_equal) {
    DenseCall c;
    c.k.desc.shape[0] = 1;
    c.v.desc.shape[0] = 1;
    EXPECT_INVALID(c.run(), "k: shape[0] (B = 1) must equal q's B = 2");
}

SA_TEST(validation_gqa_heads_divide) {
    DenseCall c(SA_DTYPE_F32, 8, 3);
    EXPECT_INVALID(c.run(), "k: shape[2] (H_kv = 3) must divide q's H_q = 8");
}

SA_TEST(validation_head_dim_limit_cpu) {
    DenseCall c(SA_DTYPE_F32, 1, 1, 513);
    EXPECT_INVALID(c.run(), "q: unsupported head dim D = 513");
    DenseCall ok(SA_DTYPE_F32, 1, 1, 512);
    EXPECT_ACCEPTED(ok.run());
    DenseCall one(SA_DTYPE_F32, 1, 1, 1);
    EXPECT_ACCEPTED(one.run());
}

SA_TEST(validation_lse_shape) {
    DenseCall c;
    c.lse = HostTensor::contiguous(SA_DTYPE_F32, {2, 5, 4});
    EXPECT_INVALID(c.run(), "lse: shape must be [B, H_q, S_q] = [2, 4, 5], got [2, 5, 4]");
    DenseCall c2;
    c2.lse.desc.rank = 2;
    EXPECT_INVALID(c2.run(), "lse: rank must be 3");
}

SA_TEST(validation_scale_finite_positive) {
    DenseCall c;
    c.options.scale = -1.0f;
    EXPECT_INVALID(c.run(), "options->scale", "-1");
    c.options.scale = std::numeric_limits<float>::quiet_NaN();
    EXPECT_INVALID(c.run(), "options->scale", "nan");
    c.options.scale = std::numeric_limits<float>::infinity();
    EXPECT_INVALID(c.run(), "options->scale", "inf");
    c.options.scale = 0.25f;
    EXPECT_ACCEPTED(c.run());
}

SA_TEST(validation_causal_flag) {
    DenseCall c;
    c.options.causal = 2;
    EXPECT_INVALID(c.run(), "options->causal must be 0 or 1, got 2");
}

SA_TEST(validation_causal_alignment) {
    DenseCall c;
    c.options.causal = 1;
    c.options.causal_alignment = 2;
    EXPECT_INVALID(c.run(), "options->causal_alignment must be SA_CAUSAL_BOTTOM_RIGHT (0) or "
                            "SA_CAUSAL_TOP_LEFT (1), got 2");
    c.options.causal_alignment = SA_CAUSAL_TOP_LEFT;
    EXPECT_ACCEPTED(c.run());
}

SA_TEST(validation_kernel_choice) {
    DenseCall c;
    c.options.kernel = 5;
    EXPECT_INVALID(c.run(), "options->kernel", "got 5");
    c.options.kernel = 3;
    EXPECT_INVALID(c.run(), "options->kernel", "SA_KERNEL_PORTABLE (2)", "got 3");
    for (int32_t kernel : {0, 1, 2}) {  // every defined choice is accepted (the CPU has one kernel)
        c.options.kernel = kernel;
        CHECK_OK(c.run());
    }
}

SA_TEST(validation_num_splits) {
    DenseCall c;
    c.options.num_splits = -1;
    EXPECT_INVALID(c.run(), "options->num_splits must be >= 0, got -1");
    DenseCall c2;
    c2.options.num_threads = -2;
    EXPECT_INVALID(c2.run(), "options->num_threads must be >= 0, got -2");
}

SA_TEST(validation_output_overlaps_inputs) {
    DenseCall c;
    c.out.desc.data = c.q.desc.data;
    EXPECT_INVALID(c.run(), "out: memory overlaps q");
    DenseCall c2;
    HostTensor big = HostTensor::contiguous(SA_DTYPE_F32, {2 * 5 * 4 * 8 + 10});
    c2.out.desc.data = big.desc.data;
    c2.lse.desc.data = static_cast<float*>(big.desc.data) + 5;
    EXPECT_INVALID(c2.run(), "lse: memory overlaps out");
}

SA_TEST(validation_output_strides_do_not_alias) {
    DenseCall c;
    c.out = HostTensor::strided(SA_DTYPE_F32, {2, 5, 4, 8}, {5 * 4 * 8, 4 * 8, 4, 1}, 2 * 5 * 4 * 8);
    EXPECT_INVALID(c.run(), "out: strides alias distinct elements");
}

SA_TEST(validation_extent_overflow) {
    DenseCall c;
    c.q.desc.shape[0] = int64_t{1} << 40;
    c.q.desc.strides[0] = int64_t{1} << 40;
    EXPECT_INVALID(c.run(), "q: extents overflow");
}

SA_TEST(validation_workspace_size) {
    DenseCall c;
    size_t bytes = 99;
    CHECK_OK(sa_dense_workspace_size(c.q.d(), c.k.d(), &c.options, &bytes));
    CHECK_EQ(bytes, size_t{0});
    EXPECT_INVALID(sa_dense_workspace_size(c.q.d(), c.k.d(), &c.options, nullptr), "bytes");
    c.k.desc.shape[3] = 4;
    EXPECT_INVALID(sa_dense_workspace_size(c.q.d(), c.k.d(), &c.options, &bytes), "k: shape[3]");
}

/* Varlen ------------------------------------------------------------------------------------ */

namespace {
struct VarlenCall {
    HostTensor q, k, v, out, lse, cu_q, cu_k;
    int32_t max_q = 4, max_k = 6;
    sa_attention_options options;
    VarlenCall() {
        q = HostTensor::contiguous(SA_DTYPE_F32, {7, 2, 8});  // sequences of 3 and 4 queries
        k = HostTensor::contiguous(SA_DTYPE_F32, {9, 1, 8});  // 6 and 3 keys
        v = HostTensor::contiguous(SA_DTYPE_F32, {9, 1, 8});
        out = HostTensor::contiguous(SA_DTYPE_F32, {7, 2, 8});
        lse = HostTensor::contiguous(SA_DTYPE_F32, {2, 7});
        cu_q = HostTensor::contiguous(SA_DTYPE_I32, {3});
        cu_k = HostTensor::contiguous(SA_DTYPE_I32, {3});
        const int32_t cq[3] = {0, 3, 7}, ck[3] = {0, 6, 9};
        std::memcpy(cu_q.i32(), cq, sizeof cq);
        std::memcpy(cu_k.i32(), ck, sizeof ck);
        q.fill_random();
        k.fill_random();
        v.fill_random();
        sa_attention_options_init(&options);
    }
    sa_status run() {
        return sa_dense_forward_varlen(q.d(), k.d(), v.d(), out.d(), lse.d(), cu_q.d(), cu_k.d(),
                                       max_q, max_k, &options);
    }
};
}  // namespace

SA_TEST(validation_varlen_valid_call_is_accepted) {
    VarlenCall c;
    EXPECT_ACCEPTED(c.run());
}

SA_TEST(validation_varlen_rank) {
    VarlenCall c;
    c.q.desc.rank = 4;
    EXPECT_INVALID(c.run(), "q: rank must be 3 ([T, H, D]), got 4");
    VarlenCall c2;
    c2.lse.desc.rank = 3;
    EXPECT_INVALID(c2.run(), "lse: rank must be 2 ([H_q, T_q])");
}

SA_TEST(validation_varlen_lse_shape) {
    VarlenCall c;
    c.lse = HostTensor::contiguous(SA_DTYPE_F32, {7, 2});
    EXPECT_INVALID(c.run(), "lse: shape must be [H_q, T_q] = [2, 7], got [7, 2]");
}

SA_TEST(validation_varlen_cu_seqlens_dtype_rank_length) {
    VarlenCall c;
    c.cu_q.desc.dtype = SA_DTYPE_F32;
    EXPECT_INVALID(c.run(), "cu_seqlens_q: dtype must be i32, got f32");
    VarlenCall c2;
    c2.cu_k.desc.rank = 2;
    EXPECT_INVALID(c2.run(), "cu_seqlens_k: rank must be 1");
    VarlenCall c3;
    c3.cu_q.desc.shape[0] = 1;
    c3.cu_k.desc.shape[0] = 1;
    EXPECT_INVALID(c3.run(), "cu_seqlens_q: shape[0] (B + 1) must be >= 2, got 1");
    VarlenCall c4;
    c4.cu_k.desc.shape[0] = 2;
    EXPECT_INVALID(c4.run(), "cu_seqlens_k: shape[0] = 2 must equal cu_seqlens_q's shape[0] = 3");
    VarlenCall c5;
    c5.cu_k.desc.device_type = SA_DEVICE_CUDA;
    EXPECT_INVALID(c5.run(), "cu_seqlens_k: device cuda:0 differs from q's device cpu");
}

SA_TEST(validation_varlen_cu_seqlens_contents) {
    VarlenCall c;
    c.cu_q.i32()[0] = 1;
    EXPECT_INVALID(c.run(), "cu_seqlens_q[0] must be 0, got 1");
    VarlenCall c2;
    c2.cu_k.i32()[2] = 3;
    EXPECT_INVALID(c2.run(), "cu_seqlens_k must be non-decreasing");
    VarlenCall c3;
    c3.cu_q.i32()[2] = 6;
    EXPECT_INVALID(c3.run(), "cu_seqlens_q[2] (the last entry) must equal q's T_q = 7, got 6");
    VarlenCall c4;
    c4.max_q = 3;
    EXPECT_INVALID(c4.run(), "cu_seqlens_q: sequence 1 has length 4 > max_seqlen_q = 3");
}

SA_TEST(validation_varlen_max_seqlen_positive) {
    VarlenCall c;
    c.max_k = 0;
    EXPECT_INVALID(c.run(), "max_seqlen_k must be >= 1, got 0");
}

/* Neighborhood ------------------------------------------------------------------------------- */

namespace {
struct NeighborhoodCall {
    HostTensor q, k, v, out;
    sa_neighborhood_params params;
    sa_attention_options options;
    NeighborhoodCall() {  // 2-D grid 4 x 6 = 24 tokens
        q = HostTensor::contiguous(SA_DTYPE_F32, {1, 24, 2, 8});
        k = HostTensor::contiguous(SA_DTYPE_F32, {1, 24, 2, 8});
        v = HostTensor::contiguous(SA_DTYPE_F32, {1, 24, 2, 8});
        out = HostTensor::contiguous(SA_DTYPE_F32, {1, 24, 2, 8});
        q.fill_random();
        k.fill_random();
        v.fill_random();
        sa_neighborhood_params_init(&params, 2);
        params.grid[0] = 4;
        params.grid[1] = 6;
        params.kernel[0] = 3;
        params.kernel[1] = 3;
        sa_attention_options_init(&options);
    }
    sa_status run() {
        return sa_neighborhood_forward(q.d(), k.d(), v.d(), out.d(), nullptr, &params, &options);
    }
};
}  // namespace

SA_TEST(validation_gna_valid_call_is_accepted) {
    NeighborhoodCall c;
    EXPECT_ACCEPTED(c.run());
}

SA_TEST(validation_gna_params_null) {
    NeighborhoodCall c;
    EXPECT_INVALID(sa_neighborhood_forward(c.q.d(), c.k.d(), c.v.d(), c.out.d(), nullptr, nullptr,
                                           &c.options), "params: pointer is NULL");
}

SA_TEST(validation_gna_spatial_rank) {
    NeighborhoodCall c;
    c.params.spatial_rank = 4;
    EXPECT_INVALID(c.run(), "params->spatial_rank must be 1, 2 or 3, got 4");
    c.params.spatial_rank = 0;
    EXPECT_INVALID(c.run(), "params->spatial_rank must be 1, 2 or 3, got 0");
}

SA_TEST(validation_gna_grid_product_equals_s) {
    NeighborhoodCall c;
    c.params.grid[1] = 5;
    EXPECT_INVALID(c.run(), "q: shape[1] (S = 24) must equal the product of params->grid (20)");
    NeighborhoodCall c2;
    c2.params.grid[0] = 0;
    EXPECT_INVALID(c2.run(), "params->grid[0] must be >= 1, got 0");
}

SA_TEST(validation_gna_stride_range) {
    NeighborhoodCall c;
    c.params.stride[1] = 4;
    EXPECT_INVALID(c.run(), "params->stride[1] = 4 must satisfy 1 <= stride <= kernel (3)");
    c.params.stride[1] = 0;
    EXPECT_INVALID(c.run(), "params->stride[1] = 0");
}

SA_TEST(validation_gna_kernel_and_dilation) {
    NeighborhoodCall c;
    c.params.kernel[0] = 0;
    EXPECT_INVALID(c.run(), "params->kernel[0] must be >= 1, got 0");
    NeighborhoodCall c2;
    c2.params.dilation[1] = 0;
    EXPECT_INVALID(c2.run(), "params->dilation[1] must be >= 1, got 0");
    NeighborhoodCall c3;
    c3.params.dilation[1] = 3;
    EXPECT_INVALID(c3.run(), "params->kernel[1] * params->dilation[1] = 9 must be <= params->grid[1] = 6");
}

SA_TEST(validation_gna_causal_flags) {
    NeighborhoodCall c;
    c.params.causal[0] = 2;
    EXPECT_INVALID(c.run(), "params->causal[0] must be 0 or 1, got 2");
    NeighborhoodCall c2;
    c2.options.causal = 1;
    EXPECT_INVALID(c2.run(), "options->causal must be 0 for neighborhood attention");
}

/* Block-sparse ------------------------------------------------------------------------------- */

namespace {
// S_q = 100, S_k = 150, blocks of 64: nQ = 2, nK = 3; B = 1, H_q = 2, H_kv = 1, C = 3.
struct BlockSparseCall {
    HostTensor q, k, v, out, num, idx, full_num, full_idx, key_perm, query_perm;
    sa_block_sparse_params params;
    sa_attention_options options;
    BlockSparseCall() {
        q = HostTensor::contiguous(SA_DTYPE_F32, {1, 100, 2, 8});
        k = HostTensor::contiguous(SA_DTYPE_F32, {1, 150, 1, 8});
        v = HostTensor::contiguous(SA_DTYPE_F32, {1, 150, 1, 8});
        out = HostTensor::contiguous(SA_DTYPE_F32, {1, 100, 2, 8});
        q.fill_random();
        k.fill_random();
        v.fill_random();
        num = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 2});
        idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 2, 3});
        full_num = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 2});
        full_idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 2, 3});
        for (int r = 0; r < 4; ++r) {  // partial {0, 2}, full {1} in every row
            num.i32()[r] = 2;
            idx.i32()[r * 3 + 0] = 0;
            idx.i32()[r * 3 + 1] = 2;
            idx.i32()[r * 3 + 2] = -1;
            full_num.i32()[r] = 1;
            full_idx.i32()[r * 3 + 0] = 1;
            full_idx.i32()[r * 3 + 1] = -1;
            full_idx.i32()[r * 3 + 2] = -1;
        }
        key_perm = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 150});
        query_perm = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 100});
        for (int h = 0; h < 2; ++h) {
            for (int j = 0; j < 150; ++j) key_perm.i32()[h * 150 + j] = 149 - j;
            for (int i = 0; i < 100; ++i) query_perm.i32()[h * 100 + i] = (i * 7) % 100;
        }
        std::memset(&params, 0, sizeof params);
        params.block_q = 64;
        params.block_k = 64;
        params.kv_num_blocks = num.desc;
        params.kv_indices = idx.desc;
        params.full_kv_num_blocks = full_num.desc;
        params.full_kv_indices = full_idx.desc;
        params.key_perm = key_perm.desc;
        params.query_perm = query_perm.desc;
        sa_attention_options_init(&options);
    }
    sa_status run() {
        return sa_block_sparse_forward(q.d(), k.d(), v.d(), out.d(), nullptr, &params, &options);
    }
};
}  // namespace

SA_TEST(validation_block_sparse_valid_call_is_accepted) {
    BlockSparseCall c;
    EXPECT_ACCEPTED(c.run());
    std::memset(&c.params.full_kv_num_blocks, 0, sizeof(sa_tensor));
    std::memset(&c.params.full_kv_indices, 0, sizeof(sa_tensor));
    std::memset(&c.params.key_perm, 0, sizeof(sa_tensor));
    std::memset(&c.params.query_perm, 0, sizeof(sa_tensor));
    EXPECT_ACCEPTED(c.run());
    EXPECT_INVALID(sa_block_sparse_forward(c.q.d(), c.k.d(), c.v.d(), c.out.d(), nullptr, nullptr,
                                           &c.options), "params: pointer is NULL");
}

SA_TEST(validation_block_sparse_block_sizes) {
    BlockSparseCall c;
    c.params.block_q = 32;
    EXPECT_INVALID(c.run(), "params->block_q must be 64 or 128, got 32");
    BlockSparseCall c2;
    c2.params.block_k = 256;
    EXPECT_INVALID(c2.run(), "params->block_k must be 64 or 128, got 256");
}

SA_TEST(validation_block_sparse_list_shapes_and_dtypes) {
    BlockSparseCall c;
    c.params.kv_num_blocks.shape[2] = 3;
    EXPECT_INVALID(c.run(), "params->kv_num_blocks: shape must be [B, H_q, nQ] = [1, 2, 2]");
    BlockSparseCall c2;
    c2.params.kv_indices.dtype = SA_DTYPE_F32;
    EXPECT_INVALID(c2.run(), "params->kv_indices: dtype must be i32, got f32");
    BlockSparseCall c3;
    c3.params.kv_indices.rank = 3;
    EXPECT_INVALID(c3.run(), "params->kv_indices: rank must be 4 ([B, H_q, nQ, C])");
    BlockSparseCall c4;
    c4.params.key_perm.shape[2] = 100;
    EXPECT_INVALID(c4.run(), "params->key_perm: shape must be [B, H_q, S_k] = [1, 2, 150]");
    BlockSparseCall c5;
    c5.params.query_perm.shape[1] = 3;
    EXPECT_INVALID(c5.run(), "params->query_perm: shape must be [B, H_q, S_q]");
}

SA_TEST(validation_block_sparse_broadcast_stride_zero) {
    BlockSparseCall c;
    c.params.kv_num_blocks.strides[1] = 0;  // every head reads head 0's lists
    c.params.kv_indices.strides[1] = 0;
    EXPECT_ACCEPTED(c.run());
    c.params.kv_indices.strides[2] = 0;  // not over the query-block dim
    EXPECT_INVALID(c.run(), "params->kv_indices: strides[2] is 0");
}

SA_TEST(validation_block_sparse_full_lists_paired) {
    BlockSparseCall c;
    std::memset(&c.params.full_kv_indices, 0, sizeof(sa_tensor));
    EXPECT_INVALID(c.run(), "params->full_kv_indices: must be given together with params->full_kv_num_blocks");
}

SA_TEST(validation_block_sparse_count_range) {
    BlockSparseCall c;
    c.num.i32()[3] = 4;
    EXPECT_INVALID(c.run(), "params->kv_num_blocks[0, 1, 1] = 4 must be in 0..3");
    BlockSparseCall c2;
    c2.full_num.i32()[0] = -1;
    EXPECT_INVALID(c2.run(), "params->full_kv_num_blocks[0, 0, 0] = -1");
}

SA_TEST(validation_block_sparse_index_range) {
    BlockSparseCall c;
    c.idx.i32()[1] = 3;
    EXPECT_INVALID(c.run(), "params->kv_indices[0, 0, 0, 1] = 3 must be a key block in [0, 3)");
}

SA_TEST(validation_block_sparse_no_repeated_block) {
    BlockSparseCall c;
    c.full_idx.i32()[0] = 2;  // block 2 is also in the partial list of that row
    EXPECT_INVALID(c.run(), "params->full_kv_indices[0, 0, 0, 0] = 2", "more than once");
    // The marks used for the check are clean afterwards: a valid call passes again.
    BlockSparseCall c2;
    EXPECT_ACCEPTED(c2.run());
}

SA_TEST(validation_block_sparse_permutations) {
    BlockSparseCall c;
    c.key_perm.i32()[5] = c.key_perm.i32()[6];
    EXPECT_INVALID(c.run(), "params->key_perm", "not a permutation of 0..149");
    BlockSparseCall c2;
    c2.query_perm.i32()[100 + 7] = 100;
    EXPECT_INVALID(c2.run(), "params->query_perm[0, 1, 7] = 100: not a permutation of 0..99");
    BlockSparseCall c3;
    EXPECT_ACCEPTED(c3.run());
}

/* Mask conversion ----------------------------------------------------------------------------- */

SA_TEST(validation_mask_to_lists) {
    HostTensor mask = HostTensor::contiguous(SA_DTYPE_BOOL, {1, 2, 3, 4});
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 3});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 3, 4});
    EXPECT_ACCEPTED(sa_block_mask_to_lists(mask.d(), num.d(), idx.d(), nullptr));
    mask.desc.dtype = SA_DTYPE_I32;
    EXPECT_INVALID(sa_block_mask_to_lists(mask.d(), num.d(), idx.d(), nullptr),
                   "dense_mask: dtype must be bool, got i32");
    mask.desc.dtype = SA_DTYPE_BOOL;
    idx.desc.shape[3] = 3;
    EXPECT_INVALID(sa_block_mask_to_lists(mask.d(), num.d(), idx.d(), nullptr),
                   "kv_indices: shape must be [B, H, nQ, nK] = [1, 2, 3, 4], got [1, 2, 3, 3]");
    idx.desc.shape[3] = 4;
    num.desc.strides[1] = 4;
    num.desc.strides[0] = 8;
    EXPECT_INVALID(sa_block_mask_to_lists(mask.d(), num.d(), idx.d(), nullptr),
                   "kv_num_blocks: must be contiguous");
    EXPECT_INVALID(sa_block_mask_to_lists(nullptr, num.d(), idx.d(), nullptr), "dense_mask", "NULL");
}

SA_TEST(validation_lists_to_mask) {
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 2});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 2, 2});
    HostTensor mask = HostTensor::contiguous(SA_DTYPE_BOOL, {1, 1, 2, 5});
    num.i32()[0] = 1;
    num.i32()[1] = 2;
    idx.i32()[0] = 4;
    idx.i32()[1] = -1;
    idx.i32()[2] = 0;
    idx.i32()[3] = 3;
    EXPECT_ACCEPTED(sa_block_lists_to_mask(num.d(), idx.d(), mask.d(), nullptr));
    num.i32()[0] = 3;
    EXPECT_INVALID(sa_block_lists_to_mask(num.d(), idx.d(), mask.d(), nullptr),
                   "kv_num_blocks[0, 0, 0] = 3 must be in 0..2");
    num.i32()[0] = 1;
    idx.i32()[3] = 5;
    EXPECT_INVALID(sa_block_lists_to_mask(num.d(), idx.d(), mask.d(), nullptr),
                   "kv_indices[0, 0, 1, 1] = 5 must be a key block in [0, 5)");
    idx.i32()[3] = 3;
    mask.desc.shape[2] = 3;
    EXPECT_INVALID(sa_block_lists_to_mask(num.d(), idx.d(), mask.d(), nullptr), "dense_mask: shape");
}

/* PBS ------------------------------------------------------------------------------------------ */

namespace {
struct PbsCall {
    HostTensor q, k, perm, num, idx;
    sa_pbs_options options;
    PbsCall() {  // S = 300, block 64 -> n = 5
        q = HostTensor::contiguous(SA_DTYPE_F32, {1, 300, 2, 16});
        k = HostTensor::contiguous(SA_DTYPE_F32, {1, 300, 1, 16});
        q.fill_random();
        k.fill_random();
        perm = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 300});
        num = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 5});
        idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 5, 5});
        sa_pbs_options_init(&options);
        options.block = 64;
        options.segment = 128;
    }
    sa_status run() { return sa_pbs_plan(q.d(), k.d(), &options, perm.d(), num.d(), idx.d()); }
};
}  // namespace

SA_TEST(validation_pbs_valid_call_is_accepted) {
    PbsCall c;
    EXPECT_ACCEPTED(c.run());
}

SA_TEST(validation_pbs_self_attention_lengths) {
    PbsCall c;
    c.k = HostTensor::contiguous(SA_DTYPE_F32, {1, 200, 1, 16});
    EXPECT_INVALID(c.run(), "k: shape[1] (S_k = 200) must equal q's S_q = 300");
}

SA_TEST(validation_pbs_options) {
    PbsCall c;
    c.options.block = 96;
    EXPECT_INVALID(c.run(), "options->block must be 64 or 128, got 96");
    PbsCall c2;
    c2.options.segment = 96;
    EXPECT_INVALID(c2.run(), "options->segment must be a positive multiple of options->block (64), got 96");
    PbsCall c3;
    c3.options.tau = 0.0f;
    EXPECT_INVALID(c3.run(), "options->tau must be in (0, 1], got 0");
    c3.options.tau = 1.5f;
    EXPECT_INVALID(c3.run(), "options->tau must be in (0, 1], got 1.5");
    PbsCall c4;
    c4.options.scale = -2.0f;
    EXPECT_INVALID(c4.run(), "options->scale", "-2");
}

SA_TEST(validation_pbs_outputs) {
    PbsCall c;
    c.num = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 4});
    EXPECT_INVALID(c.run(), "kv_num_blocks: shape must be [B, H_q, nQ] = [1, 2, 5], got [1, 2, 4]");
    PbsCall c2;
    c2.perm.desc.dtype = SA_DTYPE_F32;
    EXPECT_INVALID(c2.run(), "key_perm: dtype must be i32, got f32");
    PbsCall c3;
    c3.idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 2, 5, 4});
    EXPECT_INVALID(c3.run(), "kv_indices: shape must be [B, H_q, nQ, nK] = [1, 2, 5, 5]");
    PbsCall c4;
    c4.num.desc.data = c4.perm.desc.data;
    EXPECT_INVALID(c4.run(), "kv_num_blocks: memory overlaps key_perm");
}

/* LSE merge ------------------------------------------------------------------------------------ */

namespace {
struct MergeCall {
    HostTensor o1, o2, out, l1, l2, lo;
    MergeCall() {
        o1 = HostTensor::contiguous(SA_DTYPE_F32, {2, 5, 3, 8});
        o2 = HostTensor::contiguous(SA_DTYPE_F16, {2, 5, 3, 8});
        out = HostTensor::contiguous(SA_DTYPE_BF16, {2, 5, 3, 8});
        l1 = HostTensor::contiguous(SA_DTYPE_F32, {2, 3, 5});
        l2 = HostTensor::contiguous(SA_DTYPE_F32, {2, 3, 5});
        lo = HostTensor::contiguous(SA_DTYPE_F32, {2, 3, 5});
        o1.fill_random();
        o2.fill_random();
        l1.fill_random();
        l2.fill_random();
    }
    sa_status run() { return sa_lse_merge(o1.d(), l1.d(), o2.d(), l2.d(), out.d(), lo.d(), nullptr); }
};
}  // namespace

SA_TEST(validation_merge_valid_and_in_place) {
    MergeCall c;
    EXPECT_ACCEPTED(c.run());
    EXPECT_ACCEPTED(sa_lse_merge(c.o1.d(), c.l1.d(), c.o2.d(), c.l2.d(), c.o1.d(), c.l1.d(), nullptr));
    EXPECT_ACCEPTED(sa_lse_merge(c.o1.d(), c.l1.d(), c.o2.d(), c.l2.d(), c.out.d(), nullptr, nullptr));
}

SA_TEST(validation_merge_shapes) {
    MergeCall c;
    c.o2 = HostTensor::contiguous(SA_DTYPE_F16, {2, 5, 3, 4});
    EXPECT_INVALID(c.run(), "o2: shape [2, 5, 3, 4] must equal o1's shape [2, 5, 3, 8]");
    MergeCall c2;
    c2.out = HostTensor::contiguous(SA_DTYPE_F32, {2, 4, 3, 8});
    EXPECT_INVALID(c2.run(), "out: shape [2, 4, 3, 8] must equal o1's shape");
    MergeCall c3;
    c3.l2 = HostTensor::contiguous(SA_DTYPE_F32, {2, 5, 3});
    EXPECT_INVALID(c3.run(), "lse2: shape must be [B, H, S] = [2, 3, 5], got [2, 5, 3]");
}

SA_TEST(validation_merge_dtypes) {
    MergeCall c;
    c.l1.desc.dtype = SA_DTYPE_F16;
    EXPECT_INVALID(c.run(), "lse1: dtype must be f32, got f16");
    MergeCall c2;
    c2.o2.desc.dtype = SA_DTYPE_I32;
    EXPECT_INVALID(c2.run(), "o2: dtype i32 is not supported on the CPU backend");
}

SA_TEST(validation_merge_overlap) {
    MergeCall c;
    EXPECT_INVALID(sa_lse_merge(c.o1.d(), c.l1.d(), c.o2.d(), c.l2.d(), c.o2.d(), nullptr, nullptr),
                   "out: memory overlaps o2");
    EXPECT_INVALID(sa_lse_merge(c.o1.d(), c.l1.d(), c.o2.d(), c.l2.d(), c.out.d(), c.l2.d(), nullptr),
                   "lse_out: memory overlaps lse2");
}

/* Overlap of read and written buffers ---------------------------------------------------------- */

namespace {
// Copies an index tensor's contents to the last bytes of `host` (an output's storage) and points
// the descriptor there: the call would read indices that it overwrites.
void move_to_end_of(sa_tensor& index, HostTensor& contents, HostTensor& host) {
    const size_t bytes = contents.storage.size();
    unsigned char* at = host.storage.data() + host.storage.size() - bytes;
    std::memcpy(at, contents.storage.data(), bytes);
    index.data = at;
}
}  // namespace

SA_TEST(validation_overlap_query_perm_in_last_rows_of_out) {
    BlockSparseCall c;
    move_to_end_of(c.params.query_perm, c.query_perm, c.out);
    EXPECT_INVALID(c.run(), "out: memory overlaps params->query_perm");
}

SA_TEST(validation_overlap_key_perm_inside_out_or_lse) {
    BlockSparseCall c;
    move_to_end_of(c.params.key_perm, c.key_perm, c.out);
    EXPECT_INVALID(c.run(), "out: memory overlaps params->key_perm");
    BlockSparseCall c2;
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {1, 2, 200});  // [B, H_q, S_q] + room
    lse.desc.shape[2] = 100;
    lse.desc.strides[1] = 200;
    move_to_end_of(c2.params.key_perm, c2.key_perm, lse);
    EXPECT_INVALID(sa_block_sparse_forward(c2.q.d(), c2.k.d(), c2.v.d(), c2.out.d(), lse.d(),
                                           &c2.params, &c2.options),
                   "lse: memory overlaps params->key_perm");
}

SA_TEST(validation_overlap_lists_inside_out) {
    BlockSparseCall c;
    move_to_end_of(c.params.kv_indices, c.idx, c.out);
    EXPECT_INVALID(c.run(), "out: memory overlaps params->kv_indices");
    BlockSparseCall c2;
    move_to_end_of(c2.params.kv_num_blocks, c2.num, c2.out);
    EXPECT_INVALID(c2.run(), "out: memory overlaps params->kv_num_blocks");
    BlockSparseCall c3;
    move_to_end_of(c3.params.full_kv_indices, c3.full_idx, c3.out);
    EXPECT_INVALID(c3.run(), "out: memory overlaps params->full_kv_indices");
    BlockSparseCall c4;
    move_to_end_of(c4.params.full_kv_num_blocks, c4.full_num, c4.out);
    EXPECT_INVALID(c4.run(), "out: memory overlaps params->full_kv_num_blocks");
}

// Index tensors that end exactly where out begins, or begin where it ends, are not overlaps,
// and the result is the one of separate buffers.
SA_TEST(validation_overlap_adjacent_buffers_are_accepted) {
    BlockSparseCall separate;
    REQUIRE_OK(separate.run());
    BlockSparseCall c;
    c.q.storage = separate.q.storage;
    c.k.storage = separate.k.storage;
    c.v.storage = separate.v.storage;
    for (HostTensor* t : {&c.q, &c.k, &c.v}) t->refresh();
    const size_t out_bytes = c.out.storage.size(), perm_bytes = c.query_perm.storage.size();
    std::vector<unsigned char> arena(perm_bytes + out_bytes + c.key_perm.storage.size());
    std::memcpy(arena.data(), c.query_perm.storage.data(), perm_bytes);
    std::memcpy(arena.data() + perm_bytes + out_bytes, c.key_perm.storage.data(),
                c.key_perm.storage.size());
    c.params.query_perm.data = arena.data();
    c.out.desc.data = arena.data() + perm_bytes;
    c.params.key_perm.data = arena.data() + perm_bytes + out_bytes;
    REQUIRE_OK(c.run());
    CHECK(std::memcmp(arena.data() + perm_bytes, separate.out.storage.data(), out_bytes) == 0);
}

SA_TEST(validation_overlap_cu_seqlens_at_start_of_out) {
    VarlenCall c;
    std::memcpy(c.out.storage.data(), c.cu_q.storage.data(), c.cu_q.storage.size());
    c.cu_q.desc.data = c.out.storage.data();
    EXPECT_INVALID(c.run(), "out: memory overlaps cu_seqlens_q");
    VarlenCall c2;
    std::memcpy(c2.lse.storage.data(), c2.cu_k.storage.data(), c2.cu_k.storage.size());
    c2.cu_k.desc.data = c2.lse.storage.data();
    EXPECT_INVALID(c2.run(), "lse: memory overlaps cu_seqlens_k");
}

SA_TEST(validation_overlap_workspace) {
    DenseCall c;
    c.options.workspace = static_cast<unsigned char*>(c.out.desc.data) + 8;
    c.options.workspace_bytes = 16;
    EXPECT_INVALID(c.run(), "options->workspace: memory overlaps out");
    DenseCall c2;
    c2.options.workspace = c2.q.desc.data;
    c2.options.workspace_bytes = 4;
    EXPECT_INVALID(c2.run(), "options->workspace: memory overlaps q");
    DenseCall c3;
    c3.options.workspace = reinterpret_cast<void*>(~uintptr_t{0} - 8);
    c3.options.workspace_bytes = 64;
    EXPECT_INVALID(c3.run(), "options->workspace_bytes = 64 overflows the address space");
    DenseCall c4;  // a workspace of its own is accepted (the CPU backend does not use it)
    std::vector<unsigned char> scratch(64);
    c4.options.workspace = scratch.data();
    c4.options.workspace_bytes = scratch.size();
    EXPECT_ACCEPTED(c4.run());
}

SA_TEST(validation_overlap_neighborhood_lse_inside_out) {
    NeighborhoodCall c;
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {1, 2, 24});
    lse.desc.data = c.out.storage.data();
    EXPECT_INVALID(sa_neighborhood_forward(c.q.d(), c.k.d(), c.v.d(), c.out.d(), lse.d(),
                                           &c.params, &c.options),
                   "lse: memory overlaps out");
}
