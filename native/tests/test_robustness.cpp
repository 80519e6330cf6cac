// Inputs at the edges of the integer ranges: found by fuzzing the C ABI on the CPU backend.
// Each case pins one rule: no overflow, a clear status and message, no access past a view.
#include <cstdint>
#include <limits>

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/mman.h>
#endif

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
                SA_ERROR_INVALID_ARGUMENT, "kv_num_blocks", "overflows int64",
                "broadcast head dim (shape[1] = H = 1073741824)");
    for (HostTensor* t : {&l.num, &l.idx}) {
        t->desc.shape[0] = int64_t{1} << 62;
        t->desc.shape[1] = 1;
    }
    CHECK_ERROR(sa_block_sparse_pair_count(64, 64, 64, 64, 0, l.num.d(), l.idx.d(), &pairs),
                SA_ERROR_INVALID_ARGUMENT, "kv_num_blocks", "overflows int64",
                "broadcast batch dim (shape[0] = B = 4611686018427387904)");
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

// Dilation groups of a grid near INT32_MAX: group lengths are rounded up without overflowing,
// and the count is closed-form (no loop over 2^31 queries).
SA_TEST(robustness_dilation_group_near_int32_max) {
    const int64_t k = int64_t{1} << 20;
    sa_neighborhood_params params;
    sa_neighborhood_params_init(&params, 1);
    params.grid[0] = kMax32;
    params.kernel[0] = static_cast<int32_t>(k);
    params.stride[0] = static_cast<int32_t>(k);
    params.dilation[0] = 2;
    int64_t pairs = -1;
    REQUIRE_OK(sa_neighborhood_pair_count(&params, &pairs));
    CHECK_EQ(pairs, int64_t{kMax32} * k);  // every query sees exactly k keys
    // Causal: groups of 2^30 and 2^30 - 1 tokens; full blocks see 1..k keys, the queries of a
    // partial last block see the k - r + 1 + j keys of the window shifted back from the end.
    params.causal[0] = 1;
    REQUIRE_OK(sa_neighborhood_pair_count(&params, &pairs));
    const int64_t full_block = k * (k + 1) / 2, r = k - 1;
    CHECK_EQ(pairs, 1024 * full_block + 1023 * full_block + r * (k - r + 1) + r * (r - 1) / 2);
    // Stride 1, kernel 3, causal: query u sees min(u + 1, 3) keys.
    sa_neighborhood_params_init(&params, 1);
    params.grid[0] = kMax32;
    params.kernel[0] = 3;
    params.causal[0] = 1;
    REQUIRE_OK(sa_neighborhood_pair_count(&params, &pairs));
    CHECK_EQ(pairs, 3 * int64_t{kMax32} - 3);
}

// The pair count sums whole stride blocks; it equals the sum of per-query windows of the
// window helper, dim by dim.
SA_TEST(robustness_neighborhood_pair_count_matches_windows) {
    for (int trial = 0; trial < 200; ++trial) {
        sa_neighborhood_params params;
        sa_neighborhood_params_init(&params, 2);
        int64_t expected = 1;
        for (int d = 0; d < 2; ++d) {
            const int32_t L = static_cast<int32_t>(uniform_int(1, 60));
            const int32_t dil = static_cast<int32_t>(uniform_int(1, std::min(4, L)));
            const int32_t kernel = static_cast<int32_t>(uniform_int(1, L / dil));
            params.grid[d] = L;
            params.dilation[d] = dil;
            params.kernel[d] = kernel;
            params.stride[d] = static_cast<int32_t>(uniform_int(1, kernel));
            params.causal[d] = static_cast<int32_t>(uniform_int(0, 1));
            int64_t along = 0;
            for (int32_t x = 0; x < L; ++x) {
                const int32_t g = x % dil, lg = (L - g + dil - 1) / dil;
                int32_t start = 0, end = 0;
                REQUIRE_OK(sa_neighborhood_window(x / dil, lg, kernel, params.stride[d],
                                                  params.causal[d], &start, &end));
                along += end - start;
            }
            expected *= along;
        }
        int64_t pairs = -1;
        REQUIRE_OK(sa_neighborhood_pair_count(&params, &pairs));
        CHECK_EQ(pairs, expected);
    }
}

namespace {
// Address space reserved with only its first page usable: a view may span it (validation
// computes extents, never touches them) and no other allocation can land inside it.
struct Reservation {
    void* base = nullptr;
    size_t bytes = 0;
    explicit Reservation(size_t size) : bytes(size) {
#if defined(_WIN32)
        base = VirtualAlloc(nullptr, bytes, MEM_RESERVE, PAGE_NOACCESS);
        if (base) VirtualAlloc(base, 4096, MEM_COMMIT, PAGE_READWRITE);
#else
        base = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) base = nullptr;
        if (base) mprotect(base, 4096, PROT_READ | PROT_WRITE);
#endif
    }
    ~Reservation() {
#if defined(_WIN32)
        if (base) VirtualFree(base, 0, MEM_RELEASE);
#else
        if (base) munmap(base, bytes);
#endif
    }
};
}  // namespace

// A list capacity of 2^32 entries is not truncated to int32 (it would become 0): counts are
// int32, so the call reads the first entries and gives the dense result of its one block.
SA_TEST(robustness_list_capacity_past_int32) {
    const int64_t capacity = int64_t{1} << 32;
    Reservation indices(static_cast<size_t>(capacity) * 4);
    REQUIRE(indices.base != nullptr);
    static_cast<int32_t*>(indices.base)[0] = 0;
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F32, {1, 50, 2, 8});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F32, {1, 40, 1, 8});
    HostTensor v = HostTensor::contiguous(SA_DTYPE_F32, {1, 40, 1, 8});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F32, {1, 50, 2, 8});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    out.poison();
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 1});
    num.i32()[0] = 1;
    sa_block_sparse_params params;
    std::memset(&params, 0, sizeof params);
    params.block_q = 64;
    params.block_k = 64;
    params.kv_num_blocks = num.desc;
    params.kv_indices = num.desc;
    params.kv_indices.data = indices.base;
    params.kv_indices.rank = 4;
    const int64_t shape[4] = {1, 1, 1, capacity}, strides[4] = {capacity, capacity, capacity, 1};
    for (int d = 0; d < 4; ++d) {
        params.kv_indices.shape[d] = shape[d];
        params.kv_indices.strides[d] = strides[d];
    }
    REQUIRE_OK(sa_block_sparse_forward(q.d(), k.d(), v.d(), out.d(), nullptr, &params, nullptr));
    const Reference ref = reference_attention(q, k, v, 1.0 / std::sqrt(8.0),
                                              [](int64_t, int64_t, int64_t, int64_t) { return true; });
    CHECK_MATCHES_REFERENCE(ref, out, nullptr);
}
