// Fast dense CUDA kernel vs the reference kernel on the same inputs, through the C ABI:
// every dtype and head dim, causal, GQA ratios, ragged lengths, [B,H,S,D] strides, varlen,
// and short-query split-KV shapes. Outputs are poisoned (NaN) before each call.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "harness.h"

namespace {

struct DenseCase {
    sa_dtype dtype = SA_DTYPE_BF16;
    int64_t batch = 2, heads = 4, heads_kv = 2, seqlen_q = 100, seqlen_k = 137, dim = 64;
    int causal = 0;
    int splits = 0;
    bool bhsd = false;                  // memory laid out [B, H, S, D]
    std::vector<int32_t> lens_q, lens_k;  // varlen when non-empty
    bool user_workspace = false;
    int32_t kernel = SA_KERNEL_AUTO;  // the fast path under test: AUTO or PORTABLE
};

uint16_t to_half_bits(float f, sa_dtype dtype) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if (dtype == SA_DTYPE_BF16) return uint16_t((x + 0x7fff + ((x >> 16) & 1)) >> 16);
    const uint32_t sign = (x >> 16) & 0x8000;
    const float a = std::fabs(f);
    if (a < 6.1035e-05f) return uint16_t(sign | uint32_t(std::lrint(a / 5.9604645e-08f)));
    int e;
    const float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
    uint32_t mant = uint32_t(std::lrint((m * 2.f - 1.f) * 1024.f));
    uint32_t exp = uint32_t(e - 1 + 15);
    if (mant == 1024) { mant = 0; ++exp; }
    return uint16_t(sign | (exp << 10) | mant);
}
float from_half_bits(uint16_t h, sa_dtype dtype) {
    if (dtype == SA_DTYPE_BF16) {
        const uint32_t x = uint32_t(h) << 16;
        float f;
        std::memcpy(&f, &x, 4);
        return f;
    }
    const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v = exp == 0 ? std::ldexp(float(man), -24)
                       : exp == 31 ? (man ? NAN : INFINITY) : std::ldexp(float(man | 0x400), int(exp) - 25);
    return (h & 0x8000) ? -v : v;
}

struct DeviceBuffer {
    void* ptr = nullptr;
    explicit DeviceBuffer(size_t bytes) { REQUIRE_OK(sa_cuda_malloc(0, bytes, &ptr)); }
    ~DeviceBuffer() { sa_cuda_free(0, ptr); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

sa_tensor attention_tensor(void* data, sa_dtype dtype, bool varlen, int64_t b, int64_t s, int64_t h,
                           int64_t d, bool bhsd) {
    sa_tensor t{};
    t.data = data;
    t.dtype = dtype;
    t.device_type = SA_DEVICE_CUDA;
    if (varlen) {  // [T, H, D]
        t.rank = 3;
        t.shape[0] = s; t.shape[1] = h; t.shape[2] = d;
        t.strides[0] = h * d; t.strides[1] = d; t.strides[2] = 1;
        return t;
    }
    t.rank = 4;
    t.shape[0] = b; t.shape[1] = s; t.shape[2] = h; t.shape[3] = d;
    t.strides[0] = s * h * d;
    t.strides[1] = bhsd ? d : h * d;
    t.strides[2] = bhsd ? s * d : d;
    t.strides[3] = 1;
    return t;
}

void check_fast_matches_reference(const DenseCase& c, uint32_t seed) {
    int32_t covered = 0;
    REQUIRE_OK(sa_fast_path_covered(SA_OP_DENSE, 0, c.dtype, int32_t(c.dim), &covered));
    if (!covered) SA_SKIP("skipped: fast dense path not covered on this device");
    const bool varlen = !c.lens_q.empty();
    int64_t rows_q = c.batch * c.seqlen_q, rows_k = c.batch * c.seqlen_k;
    int64_t max_q = c.seqlen_q, max_k = c.seqlen_k, batch = c.batch;
    std::vector<int32_t> cu_q{0}, cu_k{0};
    if (varlen) {
        batch = int64_t(c.lens_q.size());
        max_q = max_k = 0;
        for (size_t i = 0; i < c.lens_q.size(); ++i) {
            cu_q.push_back(cu_q.back() + c.lens_q[i]);
            cu_k.push_back(cu_k.back() + c.lens_k[i]);
            max_q = std::max<int64_t>(max_q, c.lens_q[i]);
            max_k = std::max<int64_t>(max_k, c.lens_k[i]);
        }
        rows_q = cu_q.back();
        rows_k = cu_k.back();
    }
    const size_t q_elems = size_t(rows_q * c.heads * c.dim), kv_elems = size_t(rows_k * c.heads_kv * c.dim);
    const size_t lse_elems = size_t(varlen ? c.heads * rows_q : batch * c.heads * max_q);
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    auto random_bits = [&](size_t n) {
        std::vector<uint16_t> v(n);
        for (auto& x : v) x = to_half_bits(normal(rng), c.dtype);
        return v;
    };
    const auto hq = random_bits(q_elems), hk = random_bits(kv_elems), hv = random_bits(kv_elems);
    DeviceBuffer q(q_elems * 2), k(kv_elems * 2), v(kv_elems * 2), out(q_elems * 2), ref(q_elems * 2);
    DeviceBuffer lse(lse_elems * 4), ref_lse(lse_elems * 4), cuq(cu_q.size() * 4), cuk(cu_k.size() * 4);
    REQUIRE_OK(sa_cuda_memcpy(q.ptr, hq.data(), q_elems * 2, SA_COPY_HOST_TO_DEVICE, nullptr));
    REQUIRE_OK(sa_cuda_memcpy(k.ptr, hk.data(), kv_elems * 2, SA_COPY_HOST_TO_DEVICE, nullptr));
    REQUIRE_OK(sa_cuda_memcpy(v.ptr, hv.data(), kv_elems * 2, SA_COPY_HOST_TO_DEVICE, nullptr));
    REQUIRE_OK(sa_cuda_memcpy(cuq.ptr, cu_q.data(), cu_q.size() * 4, SA_COPY_HOST_TO_DEVICE, nullptr));
    REQUIRE_OK(sa_cuda_memcpy(cuk.ptr, cu_k.data(), cu_k.size() * 4, SA_COPY_HOST_TO_DEVICE, nullptr));

    sa_tensor tq = attention_tensor(q.ptr, c.dtype, varlen, batch, varlen ? rows_q : max_q, c.heads, c.dim, c.bhsd);
    sa_tensor tk = attention_tensor(k.ptr, c.dtype, varlen, batch, varlen ? rows_k : max_k, c.heads_kv, c.dim, c.bhsd);
    sa_tensor tv = attention_tensor(v.ptr, c.dtype, varlen, batch, varlen ? rows_k : max_k, c.heads_kv, c.dim, c.bhsd);
    auto run = [&](void* o, void* l, int32_t kernel, void* workspace, size_t workspace_bytes) {
        REQUIRE_OK(sa_cuda_memset(o, 0xFF, q_elems * 2, nullptr));
        REQUIRE_OK(sa_cuda_memset(l, 0xFF, lse_elems * 4, nullptr));
        sa_tensor to = attention_tensor(o, c.dtype, varlen, batch, varlen ? rows_q : max_q, c.heads, c.dim, c.bhsd);
        sa_tensor tl{};
        tl.data = l;
        tl.dtype = SA_DTYPE_F32;
        tl.device_type = SA_DEVICE_CUDA;
        if (varlen) {
            tl.rank = 2;
            tl.shape[0] = c.heads; tl.shape[1] = rows_q;
            tl.strides[0] = rows_q; tl.strides[1] = 1;
        } else {
            tl.rank = 3;
            tl.shape[0] = batch; tl.shape[1] = c.heads; tl.shape[2] = max_q;
            tl.strides[0] = c.heads * max_q; tl.strides[1] = max_q; tl.strides[2] = 1;
        }
        sa_attention_options opt;
        sa_attention_options_init(&opt);
        opt.causal = c.causal;
        opt.kernel = kernel;
        opt.num_splits = c.splits;
        opt.workspace = workspace;
        opt.workspace_bytes = workspace_bytes;
        if (varlen) {
            sa_tensor tcq{}, tck{};
            for (auto* t : {&tcq, &tck}) {
                t->dtype = SA_DTYPE_I32;
                t->device_type = SA_DEVICE_CUDA;
                t->rank = 1;
                t->shape[0] = int64_t(cu_q.size());
                t->strides[0] = 1;
            }
            tcq.data = cuq.ptr;
            tck.data = cuk.ptr;
            REQUIRE_OK(sa_dense_forward_varlen(&tq, &tk, &tv, &to, &tl, &tcq, &tck, int32_t(max_q), int32_t(max_k), &opt));
        } else {
            REQUIRE_OK(sa_dense_forward(&tq, &tk, &tv, &to, &tl, &opt));
        }
    };
    size_t ws_bytes = 0;
    std::unique_ptr<DeviceBuffer> ws;
    if (c.user_workspace) {
        sa_attention_options opt;
        sa_attention_options_init(&opt);
        opt.causal = c.causal;
        opt.num_splits = c.splits;
        REQUIRE_OK(sa_dense_workspace_size(&tq, &tk, &opt, &ws_bytes));
        CHECK(ws_bytes > 0);
        ws = std::make_unique<DeviceBuffer>(ws_bytes + 16);
    }
    run(out.ptr, lse.ptr, c.kernel, ws ? ws->ptr : nullptr, ws_bytes);
    run(ref.ptr, ref_lse.ptr, SA_KERNEL_REFERENCE, nullptr, 0);
    std::vector<uint16_t> ho(q_elems), hr(q_elems);
    std::vector<float> hl(lse_elems), hrl(lse_elems);
    REQUIRE_OK(sa_cuda_memcpy(ho.data(), out.ptr, q_elems * 2, SA_COPY_DEVICE_TO_HOST, nullptr));
    REQUIRE_OK(sa_cuda_memcpy(hr.data(), ref.ptr, q_elems * 2, SA_COPY_DEVICE_TO_HOST, nullptr));
    REQUIRE_OK(sa_cuda_memcpy(hl.data(), lse.ptr, lse_elems * 4, SA_COPY_DEVICE_TO_HOST, nullptr));
    REQUIRE_OK(sa_cuda_memcpy(hrl.data(), ref_lse.ptr, lse_elems * 4, SA_COPY_DEVICE_TO_HOST, nullptr));
    const double tol = c.dtype == SA_DTYPE_BF16 ? 3e-2 : 4e-3;
    double worst = 0, worst_lse = 0;
    size_t bad = 0;
    for (size_t i = 0; i < q_elems; ++i) {
        const double a = from_half_bits(ho[i], c.dtype), b = from_half_bits(hr[i], c.dtype);
        const double d = std::fabs(a - b);
        if (!(d <= tol)) ++bad;
        if (d > worst || std::isnan(d)) worst = std::isnan(d) ? INFINITY : d;
    }
    for (size_t i = 0; i < lse_elems; ++i) {
        if (std::isinf(hl[i]) && std::isinf(hrl[i]) && hl[i] == hrl[i]) continue;
        const double d = std::fabs(double(hl[i]) - double(hrl[i]));
        if (!(d <= 1e-3 * std::max(1.0, std::fabs(double(hrl[i]))))) ++bad;
        if (d > worst_lse || std::isnan(d)) worst_lse = std::isnan(d) ? INFINITY : d;
    }
    if (bad != 0)
        std::fprintf(stderr, "kernel %d D%lld causal %d: %zu mismatches, max |out diff| %.3g, max |lse diff| %.3g\n",
                     int(c.kernel), (long long)c.dim, c.causal, bad, worst, worst_lse);
    CHECK_EQ(bad, size_t(0));
}

}  // namespace

SA_TEST(fast_dense_every_dtype_head_dim_causal) {
    SA_REQUIRE_CUDA_DEVICE();
    uint32_t seed = 1;
    for (sa_dtype dtype : {SA_DTYPE_F16, SA_DTYPE_BF16})
        for (int64_t dim : {32, 64, 96, 128, 256})
            for (int causal : {0, 1}) {
                DenseCase c;
                c.dtype = dtype;
                c.dim = dim;
                c.causal = causal;
                check_fast_matches_reference(c, seed++);
            }
}

SA_TEST(fast_dense_gqa_ratios) {
    SA_REQUIRE_CUDA_DEVICE();
    for (int64_t heads_kv : {1, 2, 8}) {
        DenseCase c;
        c.heads = 8;
        c.heads_kv = heads_kv;
        c.seqlen_q = c.seqlen_k = 200;
        c.causal = 1;
        check_fast_matches_reference(c, uint32_t(100 + heads_kv));
    }
}

SA_TEST(fast_dense_ragged_and_more_queries_than_keys) {
    SA_REQUIRE_CUDA_DEVICE();
    // S_q > S_k causal: the first S_q - S_k queries see no key (output 0, LSE -inf).
    const int64_t shapes[][2] = {{1, 1}, {300, 50}, {129, 129}, {65, 700}, {257, 31}};
    uint32_t seed = 200;
    for (const auto& s : shapes)
        for (int causal : {0, 1}) {
            DenseCase c;
            c.seqlen_q = s[0];
            c.seqlen_k = s[1];
            c.causal = causal;
            c.dim = 128;
            check_fast_matches_reference(c, seed++);
        }
}

SA_TEST(fast_dense_bhsd_strides) {
    SA_REQUIRE_CUDA_DEVICE();
    for (int causal : {0, 1}) {
        DenseCase c;
        c.bhsd = true;
        c.causal = causal;
        c.dtype = SA_DTYPE_F16;
        check_fast_matches_reference(c, uint32_t(300 + causal));
    }
}

SA_TEST(fast_dense_varlen) {
    SA_REQUIRE_CUDA_DEVICE();
    for (int causal : {0, 1})
        for (int64_t dim : {64, 128}) {
            DenseCase c;
            c.lens_q = {17, 130, 0, 64, 1};
            c.lens_k = {40, 130, 9, 200, 300};
            c.causal = causal;
            c.dim = dim;
            check_fast_matches_reference(c, uint32_t(400 + causal + dim));
        }
}

SA_TEST(fast_dense_decode_split_kv) {
    SA_REQUIRE_CUDA_DEVICE();
    uint32_t seed = 500;
    for (int64_t sq : {1, 3, 64})
        for (int splits : {0, 1, 3, 7})
            for (int causal : {0, 1}) {
                DenseCase c;
                c.batch = 2;
                c.heads = 8;
                c.heads_kv = 2;
                c.seqlen_q = sq;
                c.seqlen_k = 5000;
                c.dim = 128;
                c.splits = splits;
                c.causal = causal;
                check_fast_matches_reference(c, seed++);
            }
}

SA_TEST(fast_dense_split_kv_user_workspace_and_varlen) {
    SA_REQUIRE_CUDA_DEVICE();
    DenseCase c;
    c.seqlen_q = 4;
    c.seqlen_k = 3000;
    c.dim = 64;
    c.splits = 5;
    c.user_workspace = true;
    check_fast_matches_reference(c, 600);
    DenseCase v;
    v.lens_q = {1, 0, 2};
    v.lens_k = {2000, 5, 700};
    v.splits = 4;
    v.dim = 256;
    v.causal = 1;
    check_fast_matches_reference(v, 601);
}

SA_TEST(fast_dense_gqa_packed_short_queries) {
    SA_REQUIRE_CUDA_DEVICE();
    // At S_q <= 64 the query heads of a kv head share the tile rows: groups that do not divide
    // the tile, several queries, causal, forced and automatic splits, both tile sizes, fp16.
    struct Shape {
        int64_t heads, heads_kv, seqlen_q, seqlen_k, dim;
        int causal, splits;
        sa_dtype dtype;
    };
    const Shape shapes[] = {
        {6, 2, 1, 700, 128, 0, 0, SA_DTYPE_BF16},   {6, 2, 5, 700, 128, 1, 0, SA_DTYPE_BF16},
        {10, 2, 13, 333, 64, 1, 3, SA_DTYPE_BF16},  {14, 2, 64, 500, 128, 1, 0, SA_DTYPE_BF16},
        {32, 8, 1, 4096, 128, 0, 0, SA_DTYPE_BF16}, {32, 8, 64, 1000, 128, 1, 2, SA_DTYPE_BF16},
        {7, 1, 9, 257, 96, 1, 0, SA_DTYPE_F16},     {8, 2, 3, 300, 256, 0, 4, SA_DTYPE_F16},
        {12, 4, 2, 1, 32, 1, 0, SA_DTYPE_F16},      {4, 1, 20, 10, 64, 1, 0, SA_DTYPE_BF16},
    };
    uint32_t seed = 700;
    for (const auto& s : shapes) {
        DenseCase c;
        c.batch = 2;
        c.heads = s.heads;
        c.heads_kv = s.heads_kv;
        c.seqlen_q = s.seqlen_q;
        c.seqlen_k = s.seqlen_k;
        c.dim = s.dim;
        c.causal = s.causal;
        c.splits = s.splits;
        c.dtype = s.dtype;
        check_fast_matches_reference(c, seed++);
    }
    for (int splits : {0, 2}) {
        DenseCase v;
        v.heads = 6;
        v.heads_kv = 2;
        v.lens_q = {1, 0, 5, 64};
        v.lens_k = {300, 7, 40, 90};
        v.causal = 1;
        v.dim = 128;
        v.splits = splits;
        check_fast_matches_reference(v, seed++);
    }
    DenseCase b;  // [B, H, S, D] strides with packing
    b.bhsd = true;
    b.heads = 9;
    b.heads_kv = 3;
    b.seqlen_q = 7;
    b.seqlen_k = 150;
    b.causal = 1;
    check_fast_matches_reference(b, seed++);
}

SA_TEST(fast_dense_long_query_tiles_both_paths) {
    SA_REQUIRE_CUDA_DEVICE();
    // Query tiles longer than 64 rows, one split (a split key range runs the mma.sync loop, and
    // these grids are small enough that the automatic choice would split): on Hopper builds
    // AUTO runs the wgmma kernel and PORTABLE the mma.sync one; elsewhere both run mma.sync.
    // Ragged tiles at both ends, several key tiles, GQA, both layouts, varlen, each dtype and
    // head dim they cover.
    struct Shape {
        int64_t batch, heads, heads_kv, seqlen_q, seqlen_k, dim;
        bool bhsd;
    };
    const Shape shapes[] = {
        {1, 2, 2, 128, 128, 128, false}, {2, 4, 2, 300, 520, 128, false}, {1, 3, 1, 257, 129, 64, true},
        {2, 2, 2, 1000, 777, 64, false}, {1, 4, 4, 640, 2048, 128, true}, {1, 2, 1, 65, 300, 128, false},
        // More work tiles than a GPU has multiprocessors: several waves of blocks.
        {4, 16, 4, 1030, 1030, 128, false},
        // Head dim 256 (64-key tiles on the wgmma loop), ragged both ways, GQA, both layouts,
        // and several waves of blocks.
        {1, 2, 2, 300, 520, 256, false}, {1, 2, 1, 257, 700, 256, true}, {4, 16, 4, 1030, 1030, 256, false},
    };
    uint32_t seed = 900;
    for (int32_t kernel : {int32_t(SA_KERNEL_AUTO), int32_t(SA_KERNEL_PORTABLE)})
        for (const auto& s : shapes)
            for (sa_dtype dtype : {SA_DTYPE_BF16, SA_DTYPE_F16})
                for (int causal : {0, 1}) {
                    DenseCase c;
                    c.kernel = kernel;
                    c.splits = 1;
                    c.batch = s.batch;
                    c.heads = s.heads;
                    c.heads_kv = s.heads_kv;
                    c.seqlen_q = s.seqlen_q;
                    c.seqlen_k = s.seqlen_k;
                    c.dim = s.dim;
                    c.bhsd = s.bhsd;
                    c.dtype = dtype;
                    c.causal = causal;
                    check_fast_matches_reference(c, seed++);
                }
    for (int32_t kernel : {int32_t(SA_KERNEL_AUTO), int32_t(SA_KERNEL_PORTABLE)})
        for (int causal : {0, 1}) {
            DenseCase c;
            c.kernel = kernel;
            c.splits = 1;
            c.lens_q = {300, 1, 0, 129, 700};
            c.lens_k = {300, 500, 7, 64, 1100};
            c.causal = causal;
            c.dim = 128;
            check_fast_matches_reference(c, seed++);
        }
    // Many sequences, a third of them without queries: many work tiles are empty, between
    // the ones that run.
    std::mt19937 lengths(77);
    DenseCase many;
    many.dim = 128;
    many.splits = 1;
    many.heads = many.heads_kv = 4;
    for (int i = 0; i < 90; ++i) {
        many.lens_q.push_back(i % 3 == 1 ? 0 : int32_t(1 + lengths() % 900));
        many.lens_k.push_back(int32_t(1 + lengths() % 900));
    }
    for (int causal : {0, 1}) {
        many.causal = causal;
        check_fast_matches_reference(many, seed++);
    }
}

SA_TEST(fast_dense_calls_interleaved_on_two_streams) {
    SA_REQUIRE_CUDA_DEVICE();
    // Calls queued on two streams at once, twice each, with no synchronization between them
    // (each call's scratch and state are per stream). Every output equals the reference's.
    int32_t covered = 0;
    REQUIRE_OK(sa_fast_path_covered(SA_OP_DENSE, 0, SA_DTYPE_BF16, 128, &covered));
    if (!covered) SA_SKIP("skipped: fast dense path not covered on this device");
    const int64_t B = 2, H = 16, S = 2000, Dm = 128;
    const size_t elems = size_t(B * S * H * Dm);
    std::mt19937 rng(4242);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<uint16_t> host(elems);
    DeviceBuffer q(elems * 2), k(elems * 2), v(elems * 2), ref(elems * 2);
    for (void* dst : {q.ptr, k.ptr, v.ptr}) {
        for (auto& x : host) x = to_half_bits(normal(rng), SA_DTYPE_BF16);
        REQUIRE_OK(sa_cuda_memcpy(dst, host.data(), elems * 2, SA_COPY_HOST_TO_DEVICE, nullptr));
    }
    const sa_tensor tq = attention_tensor(q.ptr, SA_DTYPE_BF16, false, B, S, H, Dm, false);
    const sa_tensor tk = attention_tensor(k.ptr, SA_DTYPE_BF16, false, B, S, H, Dm, false);
    const sa_tensor tv = attention_tensor(v.ptr, SA_DTYPE_BF16, false, B, S, H, Dm, false);
    void* streams[2] = {nullptr, nullptr};
    REQUIRE_OK(sa_cuda_stream_create(0, &streams[0]));
    REQUIRE_OK(sa_cuda_stream_create(0, &streams[1]));
    DeviceBuffer out0(elems * 2), out1(elems * 2), out2(elems * 2), out3(elems * 2);
    void* outs[4] = {out0.ptr, out1.ptr, out2.ptr, out3.ptr};
    for (int causal : {1, 0}) {
        auto call = [&](void* o, void* stream, int32_t kernel) {
            sa_tensor to = attention_tensor(o, SA_DTYPE_BF16, false, B, S, H, Dm, false);
            sa_attention_options opt;
            sa_attention_options_init(&opt);
            opt.causal = causal;
            opt.kernel = kernel;
            opt.stream = stream;
            REQUIRE_OK(sa_cuda_memset(o, 0xFF, elems * 2, stream));
            REQUIRE_OK(sa_dense_forward(&tq, &tk, &tv, &to, nullptr, &opt));
        };
        for (int i = 0; i < 4; ++i) call(outs[i], streams[i % 2], SA_KERNEL_AUTO);
        REQUIRE_OK(sa_cuda_stream_synchronize(streams[0]));
        REQUIRE_OK(sa_cuda_stream_synchronize(streams[1]));
        call(ref.ptr, nullptr, SA_KERNEL_REFERENCE);
        std::vector<uint16_t> hr(elems), ho(elems);
        REQUIRE_OK(sa_cuda_memcpy(hr.data(), ref.ptr, elems * 2, SA_COPY_DEVICE_TO_HOST, nullptr));
        for (void* o : outs) {
            REQUIRE_OK(sa_cuda_memcpy(ho.data(), o, elems * 2, SA_COPY_DEVICE_TO_HOST, nullptr));
            size_t bad = 0;
            for (size_t i = 0; i < elems; ++i) {
                const double d = std::fabs(double(from_half_bits(ho[i], SA_DTYPE_BF16)) -
                                           double(from_half_bits(hr[i], SA_DTYPE_BF16)));
                if (!(d <= 3e-2)) ++bad;
            }
            CHECK_EQ(bad, size_t(0));
        }
    }
    REQUIRE_OK(sa_cuda_stream_destroy(streams[0]));
    REQUIRE_OK(sa_cuda_stream_destroy(streams[1]));
}
