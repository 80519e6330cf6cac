// Version, status names, option defaults, capability queries, the CUDA-not-built behaviour,
// the GNA window helper, the pair counts and the neighborhood speedup estimate.
#include <cmath>
#include <string>
#include <thread>

#include "test_util.h"

using namespace sa_test;

SA_TEST(version_string_matches_numbers) {
    int32_t major = -1, minor = -1, patch = -1;
    sa_version(&major, &minor, &patch);
    CHECK_EQ(major, SA_VERSION_MAJOR);
    CHECK_EQ(minor, SA_VERSION_MINOR);
    CHECK_EQ(patch, SA_VERSION_PATCH);
    const std::string expected = std::to_string(major) + "." + std::to_string(minor) + "." +
                                 std::to_string(patch);
    CHECK_EQ(std::string(sa_version_string()), expected);
    sa_version(nullptr, nullptr, nullptr);  // null outputs are ignored
}

SA_TEST(status_strings_name_every_status) {
    CHECK_EQ(std::string(sa_status_string(SA_OK)), std::string("ok"));
    CHECK_EQ(std::string(sa_status_string(SA_ERROR_INVALID_ARGUMENT)), std::string("invalid argument"));
    CHECK_EQ(std::string(sa_status_string(SA_ERROR_UNSUPPORTED)), std::string("unsupported"));
    CHECK_EQ(std::string(sa_status_string(SA_ERROR_CUDA)), std::string("CUDA error"));
    CHECK_EQ(std::string(sa_status_string(SA_ERROR_OUT_OF_MEMORY)), std::string("out of memory"));
    CHECK_EQ(std::string(sa_status_string(SA_ERROR_INTERNAL)), std::string("internal error"));
    CHECK_EQ(std::string(sa_status_string(static_cast<sa_status>(99))), std::string("unknown status"));
}

SA_TEST(attention_options_init_defaults) {
    sa_attention_options o;
    std::memset(&o, 0x5a, sizeof o);
    sa_attention_options_init(&o);
    CHECK_EQ(o.scale, 0.0f);
    CHECK_EQ(o.causal, 0);
    CHECK(o.stream == nullptr);
    CHECK_EQ(o.kernel, static_cast<int32_t>(SA_KERNEL_AUTO));
    CHECK_EQ(o.num_splits, 0);
    CHECK(o.workspace == nullptr);
    CHECK_EQ(o.workspace_bytes, static_cast<size_t>(0));
    CHECK_EQ(o.num_threads, 0);
    sa_attention_options_init(nullptr);
}

SA_TEST(neighborhood_params_init_defaults) {
    sa_neighborhood_params p;
    std::memset(&p, 0x5a, sizeof p);
    sa_neighborhood_params_init(&p, 2);
    CHECK_EQ(p.spatial_rank, 2);
    for (int i = 0; i < SA_MAX_SPATIAL_DIMS; ++i) {
        CHECK_EQ(p.grid[i], 1);
        CHECK_EQ(p.kernel[i], 1);
        CHECK_EQ(p.dilation[i], 1);
        CHECK_EQ(p.stride[i], 1);
        CHECK_EQ(p.causal[i], 0);
    }
    sa_neighborhood_params_init(nullptr, 1);
}

SA_TEST(pbs_options_init_defaults) {
    sa_pbs_options o;
    std::memset(&o, 0x5a, sizeof o);
    sa_pbs_options_init(&o);
    CHECK_EQ(o.block, 128);
    CHECK_EQ(o.segment, 256);
    CHECK_NEAR(o.tau, 0.9, 1e-7);
    CHECK_EQ(o.scale, 0.0f);
    CHECK(o.stream == nullptr);
    sa_pbs_options_init(nullptr);
}

SA_TEST(backend_built_reports_cpu) {
    CHECK_EQ(sa_backend_built(SA_BACKEND_CPU), 1);
    const int32_t cuda = sa_backend_built(SA_BACKEND_CUDA);
    CHECK(cuda == 0 || cuda == 1);
    CHECK_EQ(sa_backend_built(static_cast<sa_backend>(7)), 0);
}

SA_TEST(cuda_device_count_null_pointer) {
    CHECK_ERROR(sa_cuda_device_count(nullptr), SA_ERROR_INVALID_ARGUMENT, "count", "NULL");
}

SA_TEST(cuda_device_ordinal_past_the_last_device_is_rejected) {
    // Holds in every configuration: without the backend the call is unsupported, with it an
    // ordinal past the last device (there may be none) is an invalid argument naming it.
    int32_t count = -1;
    CHECK_OK(sa_cuda_device_count(&count));
    CHECK(count >= 0);
    sa_device_info info;
    void* ptr = reinterpret_cast<void*>(0x1);
    if (sa_backend_built(SA_BACKEND_CUDA)) {
        CHECK_ERROR(sa_cuda_device_info(count, &info), SA_ERROR_INVALID_ARGUMENT, "device",
                    "out of range");
        CHECK_ERROR(sa_cuda_malloc(count, 64, &ptr), SA_ERROR_INVALID_ARGUMENT, "device",
                    "out of range");
        CHECK_ERROR(sa_cuda_malloc(-1, 64, &ptr), SA_ERROR_INVALID_ARGUMENT, "device", "-1");
    } else {
        CHECK_EQ(count, 0);
        CHECK_ERROR(sa_cuda_device_info(count, &info), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
        CHECK_ERROR(sa_cuda_malloc(count, 64, &ptr), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    }
    CHECK(ptr == nullptr);
}

SA_TEST(cuda_not_built_behaviour) {
    if (sa_backend_built(SA_BACKEND_CUDA)) {
        // Built with CUDA: a CUDA build reports the backend and never claims a CPU fast path.
        int32_t covered = -1;
        CHECK_OK(sa_fast_path_covered(SA_OP_DENSE, -1, SA_DTYPE_F16, 64, &covered));
        CHECK_EQ(covered, 0);
        return;
    }
    int32_t count = -1;
    CHECK_OK(sa_cuda_device_count(&count));
    CHECK_EQ(count, 0);
    sa_device_info info;
    CHECK_ERROR(sa_cuda_device_info(0, &info), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    void* ptr = reinterpret_cast<void*>(0x1);
    CHECK_ERROR(sa_cuda_malloc(0, 64, &ptr), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    CHECK(ptr == nullptr);
    CHECK_ERROR(sa_cuda_free(0, nullptr), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    char buf[8] = {};
    CHECK_ERROR(sa_cuda_memcpy(buf, buf + 4, 4, SA_COPY_DEVICE_TO_DEVICE, nullptr),
                SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    CHECK_ERROR(sa_cuda_memset(buf, 0, 4, nullptr), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    void* stream = reinterpret_cast<void*>(0x1);
    CHECK_ERROR(sa_cuda_stream_create(0, &stream), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    CHECK(stream == nullptr);
    CHECK_ERROR(sa_cuda_stream_synchronize(nullptr), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    CHECK_ERROR(sa_cuda_stream_destroy(nullptr), SA_ERROR_UNSUPPORTED, "CUDA backend not built");
    CHECK_ERROR(sa_cuda_device_synchronize(0), SA_ERROR_UNSUPPORTED, "CUDA backend not built");

    // A CUDA tensor is refused before any pointer is touched.
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F16, {1, 4, 1, 8});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F16, {1, 4, 1, 8});
    HostTensor v = HostTensor::contiguous(SA_DTYPE_F16, {1, 4, 1, 8});
    HostTensor o = HostTensor::contiguous(SA_DTYPE_F16, {1, 4, 1, 8});
    for (HostTensor* t : {&q, &k, &v, &o}) t->desc.device_type = SA_DEVICE_CUDA;
    CHECK_ERROR(sa_dense_forward(q.d(), k.d(), v.d(), o.d(), nullptr, nullptr),
                SA_ERROR_UNSUPPORTED, "CUDA backend not built");

    // Like every CUDA query: a CUDA ordinal without the backend is unsupported, not "not covered".
    int32_t covered = -1;
    CHECK_ERROR(sa_fast_path_covered(SA_OP_DENSE, 0, SA_DTYPE_F16, 128, &covered),
                SA_ERROR_UNSUPPORTED, "device", "CUDA backend not built");
    CHECK_EQ(covered, 0);
}

SA_TEST(fast_path_covered_cpu_is_zero) {
    int32_t covered = -1;
    CHECK_OK(sa_fast_path_covered(SA_OP_DENSE, -1, SA_DTYPE_F32, 64, &covered));
    CHECK_EQ(covered, 0);
    CHECK_ERROR(sa_fast_path_covered(SA_OP_DENSE, -1, SA_DTYPE_F32, 64, nullptr),
                SA_ERROR_INVALID_ARGUMENT, "covered");
    CHECK_ERROR(sa_fast_path_covered(9, -1, SA_DTYPE_F32, 64, &covered),
                SA_ERROR_INVALID_ARGUMENT, "op", "9");
    // Out-of-range values are checked as integers, never loaded into the enums.
    CHECK_ERROR(sa_fast_path_covered(SA_OP_DENSE, -1, -3, 64, &covered),
                SA_ERROR_INVALID_ARGUMENT, "dtype: -3 is not a valid sa_dtype");
    CHECK_ERROR(sa_fast_path_covered(0x7fffffff, 0, SA_DTYPE_F16, 64, &covered),
                SA_ERROR_INVALID_ARGUMENT, "op: 2147483647");
    CHECK_EQ(sa_backend_built(77), 0);
    CHECK(std::strcmp(sa_status_string(-1), "unknown status") == 0);
}

SA_TEST(last_error_is_per_thread) {
    CHECK_STATUS(sa_cuda_device_count(nullptr), SA_ERROR_INVALID_ARGUMENT);
    const std::string here = sa_last_error();
    CHECK(!here.empty());
    std::string there = "unset";
    std::thread worker([&] { there = sa_last_error(); });
    worker.join();
    CHECK_EQ(there, std::string(""));
    CHECK_EQ(std::string(sa_last_error()), here);
}

namespace {
struct Window {
    int32_t start, end;
};
Window window(int32_t u, int32_t length, int32_t kernel, int32_t stride, int32_t causal) {
    Window w{-1, -1};
    CHECK_OK(sa_neighborhood_window(u, length, kernel, stride, causal, &w.start, &w.end));
    return w;
}
}  // namespace

SA_TEST(gna_worked_example_blocked_l13_k4_s4) {
    for (int32_t u = 0; u < 13; ++u) {
        const Window w = window(u, 13, 4, 4, 0);
        const int32_t expected = u < 4 ? 0 : u < 8 ? 4 : u < 12 ? 8 : 9;
        CHECK_EQ(w.start, expected);
        CHECK_EQ(w.end, expected + 4);
    }
}

SA_TEST(gna_worked_example_causal_l10_k4_s2) {
    Window w = window(4, 10, 4, 2, 1);
    CHECK_EQ(w.start, 2);
    CHECK_EQ(w.end, 5);
    w = window(5, 10, 4, 2, 1);
    CHECK_EQ(w.start, 2);
    CHECK_EQ(w.end, 6);
    for (int32_t u = 0; u < 10; ++u) {
        w = window(u, 10, 4, 2, 1);
        CHECK_EQ(w.end, u + 1);
        CHECK(w.start >= 0 && w.start <= u);
    }
}

SA_TEST(gna_sliding_window_shifts_at_borders) {
    // k = 5, s = 1 over 9 tokens: every query sees exactly 5 keys, windows clamp at the ends.
    const int32_t starts[9] = {0, 0, 0, 1, 2, 3, 4, 4, 4};
    for (int32_t u = 0; u < 9; ++u) {
        const Window w = window(u, 9, 5, 1, 0);
        CHECK_EQ(w.start, starts[u]);
        CHECK_EQ(w.end - w.start, 5);
    }
}

SA_TEST(gna_window_rejects_bad_arguments) {
    int32_t s = 0, e = 0;
    CHECK_ERROR(sa_neighborhood_window(0, 10, 4, 2, 0, nullptr, &e), SA_ERROR_INVALID_ARGUMENT, "start");
    CHECK_ERROR(sa_neighborhood_window(0, 10, 4, 2, 0, &s, nullptr), SA_ERROR_INVALID_ARGUMENT, "end");
    CHECK_ERROR(sa_neighborhood_window(10, 10, 4, 2, 0, &s, &e), SA_ERROR_INVALID_ARGUMENT, "u", "10");
    CHECK_ERROR(sa_neighborhood_window(0, 0, 1, 1, 0, &s, &e), SA_ERROR_INVALID_ARGUMENT, "group_length", "0");
    CHECK_ERROR(sa_neighborhood_window(0, 10, 11, 1, 0, &s, &e), SA_ERROR_INVALID_ARGUMENT, "kernel", "11");
    CHECK_ERROR(sa_neighborhood_window(0, 10, 4, 5, 0, &s, &e), SA_ERROR_INVALID_ARGUMENT, "stride", "5");
    CHECK_ERROR(sa_neighborhood_window(0, 10, 4, 2, 2, &s, &e), SA_ERROR_INVALID_ARGUMENT, "causal", "2");
}

SA_TEST(neighborhood_pair_count_matches_windows) {
    // 1-D: blocked L = 13, k = 4, s = 4: 13 queries x 4 keys.
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 13;
    p.kernel[0] = 4;
    p.stride[0] = 4;
    int64_t pairs = -1;
    CHECK_OK(sa_neighborhood_pair_count(&p, &pairs));
    CHECK_EQ(pairs, int64_t{52});

    // Causal L = 10, k = 4, s = 2: sum over queries of the causal window lengths.
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 10;
    p.kernel[0] = 4;
    p.stride[0] = 2;
    p.causal[0] = 1;
    int64_t expected = 0;
    for (int32_t u = 0; u < 10; ++u) {
        const Window w = window(u, 10, 4, 2, 1);
        expected += w.end - w.start;
    }
    CHECK_OK(sa_neighborhood_pair_count(&p, &pairs));
    CHECK_EQ(pairs, expected);

    // 2-D with dilation: product of the per-dim counts; non-causal dims see k keys each.
    sa_neighborhood_params_init(&p, 2);
    p.grid[0] = 6;
    p.grid[1] = 9;
    p.kernel[0] = 3;
    p.kernel[1] = 3;
    p.dilation[1] = 3;
    CHECK_OK(sa_neighborhood_pair_count(&p, &pairs));
    CHECK_EQ(pairs, int64_t{6 * 3} * (9 * 3));

    CHECK_ERROR(sa_neighborhood_pair_count(&p, nullptr), SA_ERROR_INVALID_ARGUMENT, "pairs");
    CHECK_ERROR(sa_neighborhood_pair_count(nullptr, &pairs), SA_ERROR_INVALID_ARGUMENT, "params");
}

// The speedup estimate's cost model on configurations whose tile counts are known in closed
// form: a blocked 1-D window (every visited tile full) and its 2-D product, where box rows
// cost more; and the estimate never exceeds the tile bound.
SA_TEST(neighborhood_estimate_cost_model) {
    sa_neighborhood_params p;
    sa_neighborhood_params_init(&p, 1);
    p.grid[0] = 4096;
    p.kernel[0] = 512;
    p.stride[0] = 512;  // blocked: each 128-query tile sees its block's 512 keys, 4 full tiles
    sa_neighborhood_estimate e;
    CHECK_OK(sa_neighborhood_estimate_tiles(&p, 128, 128, nullptr, nullptr, &e));
    CHECK_NEAR(e.tile_bound_speedup, 8.0, 1e-12);
    CHECK_NEAR(e.masked_fraction, 0.0, 1e-12);
    // 32 query tiles: dense 32 x 32 tiles + 3.5 per work tile, blocked 32 x 4 + 3.5 per work tile.
    CHECK_NEAR(e.predicted_speedup, (32.0 * 32 + 3.5 * 32) / (32.0 * 4 + 3.5 * 32), 1e-9);

    // A blocked window in both dims of a 64 x 64 grid (32 query tiles of 128 tokens), every
    // visited tile full: box rows cost 1.16 tiles.
    sa_neighborhood_params_init(&p, 2);
    p.grid[0] = p.grid[1] = 64;
    p.kernel[0] = p.kernel[1] = 16;
    p.stride[0] = p.stride[1] = 16;
    CHECK_OK(sa_neighborhood_estimate_tiles(&p, 128, 128, nullptr, nullptr, &e));
    CHECK_NEAR(e.masked_fraction, 0.0, 1e-12);
    const double dense = e.dense_tiles + 3.5 * std::ceil(4096.0 / 128);
    CHECK_NEAR(e.predicted_speedup, dense / (e.tiles_visited * 1.16 + 3.5 * e.query_tiles), 1e-9);

    // Masked and strided shapes in 1-3 dims: below the tile bound, above 1 where the bound is far.
    const int32_t shapes[][7] = {{1, 32768, 1, 1, 2048, 1, 1}, {2, 256, 256, 1, 80, 80, 1}, {3, 30, 48, 80, 18, 24, 24}};
    for (const auto& sh : shapes) {
        sa_neighborhood_params_init(&p, sh[0]);
        for (int d = 0; d < sh[0]; ++d) {
            p.grid[d] = sh[1 + d];
            p.kernel[d] = sh[4 + d];
        }
        CHECK_OK(sa_neighborhood_estimate_tiles(&p, 128, 128, nullptr, nullptr, &e));
        CHECK(e.predicted_speedup > 1.0);
        CHECK(e.predicted_speedup < e.tile_bound_speedup);
    }
}

SA_TEST(block_sparse_pair_count_causal_and_ragged) {
    // S_q = 100, S_k = 200, blocks of 64: nQ = 2, nK = 4. Row 0 lists {0, 3}, row 1 lists {1}.
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 2});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, 2, 4});
    for (int i = 0; i < 8; ++i) idx.i32()[i] = -1;
    num.i32()[0] = 2;
    idx.i32()[0] = 0;
    idx.i32()[1] = 3;
    num.i32()[1] = 1;
    idx.i32()[4] = 1;
    int64_t pairs = -1;
    CHECK_OK(sa_block_sparse_pair_count(100, 200, 64, 64, 0, num.d(), idx.d(), &pairs));
    // Row block 0: 64 rows x (64 + 8 keys of the ragged last block); row block 1: 36 x 64.
    CHECK_EQ(pairs, int64_t{64 * 72 + 36 * 64});

    // Causal, offset S_k - S_q = 100: query i sees keys t <= i + 100.
    int64_t expected = 0;
    const int32_t lists[2][2] = {{0, 3}, {1, -1}};
    for (int64_t i = 0; i < 100; ++i) {
        const int row = static_cast<int>(i / 64);
        for (int c = 0; c < 2; ++c) {
            const int32_t j = lists[row][c];
            if (j < 0) continue;
            for (int64_t t = j * 64; t < std::min<int64_t>(200, j * 64 + 64); ++t)
                if (t <= i + 100) ++expected;
        }
    }
    CHECK_OK(sa_block_sparse_pair_count(100, 200, 64, 64, 1, num.d(), idx.d(), &pairs));
    CHECK_EQ(pairs, expected);

    // Broadcast over H through a stride of 0.
    HostTensor num_b = HostTensor::strided(SA_DTYPE_I32, {1, 3, 2}, {2, 0, 1}, 2);
    HostTensor idx_b = HostTensor::strided(SA_DTYPE_I32, {1, 3, 2, 4}, {8, 0, 4, 1}, 8);
    std::memcpy(num_b.i32(), num.i32(), 8);
    std::memcpy(idx_b.i32(), idx.i32(), 32);
    CHECK_OK(sa_block_sparse_pair_count(100, 200, 64, 64, 0, num_b.d(), idx_b.d(), &pairs));
    CHECK_EQ(pairs, int64_t{3} * (64 * 72 + 36 * 64));

    // Contents are checked: an index outside [0, nK) and a repeated block are errors.
    idx.i32()[1] = 4;
    CHECK_ERROR(sa_block_sparse_pair_count(100, 200, 64, 64, 0, num.d(), idx.d(), &pairs),
                SA_ERROR_INVALID_ARGUMENT, "kv_indices", "4");
    idx.i32()[1] = 0;
    CHECK_ERROR(sa_block_sparse_pair_count(100, 200, 64, 64, 0, num.d(), idx.d(), &pairs),
                SA_ERROR_INVALID_ARGUMENT, "kv_indices", "more than once");
    CHECK_ERROR(sa_block_sparse_pair_count(100, 200, 32, 64, 0, num.d(), idx.d(), &pairs),
                SA_ERROR_INVALID_ARGUMENT, "block_q", "32");
}
