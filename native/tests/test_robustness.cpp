// Inputs at the edges of the integer ranges: found by fuzzing the C ABI on the CPU backend.
// Each case pins one rule: no overflow, a clear status and message, no access past a view.
#include <cstdint>
#include <limits>

#include "test_util.h"

using namespace sa_test;

namespace {
constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();
}  // namespace

// Causal window of a query near INT32_MAX: the stride leader is clamped without overflowing.
SA_TEST(robustness_causal_window_near_int32_max) {
    int32_t start = -1, end = -1;
    REQUIRE_OK(sa_neighborhood_window(kMax32 - 1, kMax32, 3, 3, 1, &start, &end));
    CHECK_EQ(start, kMax32 - 3);
    CHECK_EQ(end, kMax32);
}

// Non-causal window of a query near INT32_MAX: the centred leader is clamped without overflowing.
SA_TEST(robustness_window_near_int32_max) {
    int32_t start = -1, end = -1;
    REQUIRE_OK(sa_neighborhood_window(kMax32 - 1, kMax32, 7, 7, 0, &start, &end));
    CHECK_EQ(start, kMax32 - 7);
    CHECK_EQ(end, kMax32);
}

// A grid whose product overflows int64 is refused, not multiplied with undefined behaviour.
SA_TEST(robustness_neighborhood_grid_product_overflow) {
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 1, 4});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 1, 4});
    HostTensor v = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 1, 4});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 1, 4});
    sa_neighborhood_params params;
    sa_neighborhood_params_init(&params, 3);
    for (int i = 0; i < 3; ++i) params.grid[i] = kMax32;
    CHECK_ERROR(sa_neighborhood_forward(q.d(), k.d(), v.d(), out.d(), nullptr, &params, nullptr),
                SA_ERROR_INVALID_ARGUMENT, "params->grid", "overflows int64");
}

namespace {
// One query block listing key blocks `entries` (capacity = entries.size()).
struct OneRowLists {
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 1});
    HostTensor idx;
    explicit OneRowLists(std::initializer_list<int32_t> entries) {
        idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 1, static_cast<int64_t>(entries.size())});
        num.set_at(0, static_cast<double>(entries.size()));
        int64_t i = 0;
        for (int32_t e : entries) idx.set_at(i++, e);
    }
};
}  // namespace

// s_q and s_k up to INT64_MAX are rounded up to block counts without overflowing.
SA_TEST(robustness_pair_count_int64_max_lengths) {
    OneRowLists l({0});
    const int64_t max64 = std::numeric_limits<int64_t>::max();
    int64_t pairs = -1;
    REQUIRE_OK(sa_block_sparse_pair_count(1, max64, 64, 64, 0, l.num.d(), l.idx.d(), &pairs));
    CHECK_EQ(pairs, int64_t{64});
    REQUIRE_OK(sa_block_sparse_pair_count(1, max64, 64, 64, 1, l.num.d(), l.idx.d(), &pairs));
    CHECK_EQ(pairs, int64_t{64});
}

// A huge s_k (2^40 keys) costs no key-block-sized scratch: repeats are still found.
SA_TEST(robustness_pair_count_huge_key_length_repeats) {
    const int64_t s_k = int64_t{1} << 40;
    OneRowLists ok({7, 1 << 30});
    int64_t pairs = -1;
    REQUIRE_OK(sa_block_sparse_pair_count(64, s_k, 64, 64, 0, ok.num.d(), ok.idx.d(), &pairs));
    CHECK_EQ(pairs, int64_t{2 * 64 * 64});
    OneRowLists repeated({1 << 30, 7, 1 << 30});
    CHECK_ERROR(sa_block_sparse_pair_count(64, s_k, 64, 64, 0, repeated.num.d(),
                                           repeated.idx.d(), &pairs),
                SA_ERROR_INVALID_ARGUMENT, "key block 1073741824 listed more than once",
                "[0, 0, 0]");
}

// A loose max_seqlen (INT32_MAX) on the CPU costs no work for rows that do not exist and
// gives the same result as the exact bound.
SA_TEST(robustness_varlen_loose_max_seqlen) {
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F32, {5, 2, 4});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F32, {7, 1, 4});
    HostTensor v = HostTensor::contiguous(SA_DTYPE_F32, {7, 1, 4});
    HostTensor exact = HostTensor::contiguous(SA_DTYPE_F32, {5, 2, 4});
    HostTensor loose = HostTensor::contiguous(SA_DTYPE_F32, {5, 2, 4});
    HostTensor cq = HostTensor::contiguous(SA_DTYPE_I32, {3});
    HostTensor ck = HostTensor::contiguous(SA_DTYPE_I32, {3});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    cq.set_at(1, 2);
    cq.set_at(2, 5);
    ck.set_at(1, 4);
    ck.set_at(2, 7);
    sa_attention_options o;
    sa_attention_options_init(&o);
    o.causal = 1;
    REQUIRE_OK(sa_dense_forward_varlen(q.d(), k.d(), v.d(), exact.d(), nullptr, cq.d(), ck.d(),
                                       3, 4, &o));
    REQUIRE_OK(sa_dense_forward_varlen(q.d(), k.d(), v.d(), loose.d(), nullptr, cq.d(), ck.d(),
                                       kMax32, kMax32, &o));
    CHECK(exact.storage == loose.storage);
}

// Lists broadcast (stride 0) over a huge B and H are counted once per distinct row, and a
// product past int64 is refused.
SA_TEST(robustness_pair_count_broadcast_huge_batch) {
    OneRowLists l({0});
    for (HostTensor* t : {&l.num, &l.idx}) {
        t->desc.shape[0] = int64_t{1} << 30;
        t->desc.shape[1] = int64_t{1} << 20;
        t->desc.strides[0] = 0;
        t->desc.strides[1] = 0;
    }
    int64_t pairs = -1;
    REQUIRE_OK(sa_block_sparse_pair_count(64, 64, 64, 64, 0, l.num.d(), l.idx.d(), &pairs));
    CHECK_EQ(pairs, int64_t{64 * 64} << 50);
    for (HostTensor* t : {&l.num, &l.idx}) t->desc.shape[1] = int64_t{1} << 30;
    CHECK_ERROR(sa_block_sparse_pair_count(64, 64, 64, 64, 0, l.num.d(), l.idx.d(), &pairs),
                SA_ERROR_INVALID_ARGUMENT, "kv_num_blocks", "overflows int64");
}

// A view whose largest offset is exactly INT64_MAX is refused without computing offset + 1.
SA_TEST(robustness_extent_ending_at_int64_max) {
    HostTensor mask = HostTensor::contiguous(SA_DTYPE_BOOL, {1, 1, 1, 2});
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 1});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 1, 2});
    mask.desc.shape[0] = 2;
    mask.desc.strides[0] = std::numeric_limits<int64_t>::max() - 1;
    CHECK_ERROR(sa_block_mask_to_lists(mask.d(), num.d(), idx.d(), nullptr),
                SA_ERROR_INVALID_ARGUMENT, "dense_mask: extents overflow int64");
}
