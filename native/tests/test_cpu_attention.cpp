// CPU backend correctness against the naive double-precision reference: dense (causal with
// S_q != S_k, GQA, strided views, LSE, ragged sizes, every dtype), varlen and LSE merge.
#include <algorithm>

#include "test_util.h"

using namespace sa_test;

namespace {

struct DenseCase {
    sa_dtype dtype = SA_DTYPE_F32;
    int64_t B = 2, Sq = 37, Sk = 53, Hq = 4, Hkv = 2, D = 24;
    bool causal = false;
    bool top_left = false;  // causal alignment j <= i instead of j <= i + S_k - S_q
    bool bhsd = false;  // q/k/v/out stored as [B, H, S, D], with a gap after every out row
    float scale = 0.0f;
};

void run_dense_case(const DenseCase& c) {
    HostTensor q, k, v, out;
    if (c.bhsd) {
        q = HostTensor::permuted(c.dtype, {c.B, c.Sq, c.Hq, c.D}, {0, 2, 1, 3});
        k = HostTensor::permuted(c.dtype, {c.B, c.Sk, c.Hkv, c.D}, {0, 2, 1, 3});
        v = HostTensor::permuted(c.dtype, {c.B, c.Sk, c.Hkv, c.D}, {0, 2, 1, 3});
        const int64_t row = c.D + 3;  // padded rows: the gap must stay untouched
        out = HostTensor::strided(c.dtype, {c.B, c.Sq, c.Hq, c.D},
                                  {c.Hq * c.Sq * row, row, c.Sq * row, 1}, c.B * c.Hq * c.Sq * row);
    } else {
        q = HostTensor::contiguous(c.dtype, {c.B, c.Sq, c.Hq, c.D});
        k = HostTensor::contiguous(c.dtype, {c.B, c.Sk, c.Hkv, c.D});
        v = HostTensor::contiguous(c.dtype, {c.B, c.Sk, c.Hkv, c.D});
        out = HostTensor::contiguous(c.dtype, {c.B, c.Sq, c.Hq, c.D});
    }
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {c.B, c.Hq, c.Sq});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    out.poison();
    lse.poison();
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = c.causal ? 1 : 0;
    options.causal_alignment = c.top_left ? SA_CAUSAL_TOP_LEFT : SA_CAUSAL_BOTTOM_RIGHT;
    options.scale = c.scale;
    REQUIRE_OK(sa_dense_forward(q.d(), k.d(), v.d(), out.d(), lse.d(), &options));
    const double scale = c.scale != 0.0f ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.D));
    const int64_t offset = c.top_left ? 0 : c.Sk - c.Sq;
    const Reference ref = reference_attention(q, k, v, scale, [&](int64_t, int64_t, int64_t i, int64_t j) {
        return !c.causal || j <= i + offset;
    });
    CHECK_MATCHES_REFERENCE(ref, out, &lse);
    CHECK_EQ(count_writes_outside_view(out), 0);
}

}  // namespace

SA_TEST(cpu_dense_matches_reference_f32) {
    run_dense_case(DenseCase{});
}

SA_TEST(cpu_dense_causal_sq_less_than_sk) {
    DenseCase c;
    c.causal = true;
    c.Sq = 29;
    c.Sk = 70;
    run_dense_case(c);
}

SA_TEST(cpu_dense_causal_sq_greater_than_sk) {
    // Bottom-right alignment: the first S_q - S_k queries see no key (output 0, LSE -inf).
    DenseCase c;
    c.causal = true;
    c.Sq = 45;
    c.Sk = 17;
    run_dense_case(c);
}

SA_TEST(cpu_dense_causal_top_left_sq_less_than_sk) {
    DenseCase c;
    c.causal = true;
    c.top_left = true;
    c.Sq = 29;
    c.Sk = 70;
    run_dense_case(c);
}

SA_TEST(cpu_dense_causal_top_left_sq_greater_than_sk) {
    // Top-left alignment: queries from S_k on see every key.
    DenseCase c;
    c.causal = true;
    c.top_left = true;
    c.Sq = 45;
    c.Sk = 17;
    run_dense_case(c);
    c.dtype = SA_DTYPE_BF16;
    c.bhsd = true;
    run_dense_case(c);
}

SA_TEST(cpu_dense_causal_alignments_agree_when_square) {
    DenseCase c;
    c.causal = true;
    c.top_left = true;
    c.Sq = c.Sk = 41;
    run_dense_case(c);
}

SA_TEST(cpu_dense_gqa_and_mqa) {
    DenseCase c;
    c.Hq = 6;
    c.Hkv = 2;
    run_dense_case(c);
    c.Hq = 5;
    c.Hkv = 1;
    c.causal = true;
    run_dense_case(c);
}

SA_TEST(cpu_dense_rows_read_in_place) {
    // [B, H, S, D] fp32 memory and head dims of whole vectors at every level: the GEMMs read
    // the key rows in place; several query and key tiles, GQA, causal and not, decode.
    DenseCase c;
    c.bhsd = true;
    c.B = 1;
    c.Hq = 4;
    c.Hkv = 2;
    c.D = 64;
    c.Sq = 200;
    c.Sk = 300;
    run_dense_case(c);
    c.causal = true;
    run_dense_case(c);
    c.D = 32;
    c.Sq = 3;
    run_dense_case(c);
    c.Sq = 1;
    run_dense_case(c);
}

SA_TEST(cpu_dense_strided_bhsd_view) {
    DenseCase c;
    c.bhsd = true;
    c.causal = true;
    c.Hq = 4;
    c.Hkv = 2;
    run_dense_case(c);
}

SA_TEST(cpu_dense_ragged_sizes) {
    for (int trial = 0; trial < 4; ++trial) {
        DenseCase c;
        c.B = uniform_int(1, 3);
        c.Sq = uniform_int(1, 90);
        c.Sk = uniform_int(1, 140);
        c.Hkv = uniform_int(1, 3);
        c.Hq = c.Hkv * uniform_int(1, 3);
        const int64_t dims[] = {1, 7, 13, 40, 72, 100};
        c.D = dims[uniform_int(0, 5)];
        c.causal = uniform_int(0, 1) == 1;
        std::printf("trial B=%lld Sq=%lld Sk=%lld Hq=%lld Hkv=%lld D=%lld causal=%d\n",
                    static_cast<long long>(c.B), static_cast<long long>(c.Sq),
                    static_cast<long long>(c.Sk), static_cast<long long>(c.Hq),
                    static_cast<long long>(c.Hkv), static_cast<long long>(c.D), c.causal);
        run_dense_case(c);
    }
}

SA_TEST(cpu_dense_large_head_dim_and_scale) {
    DenseCase c;
    c.B = 1;
    c.Sq = 9;
    c.Sk = 11;
    c.Hq = 2;
    c.Hkv = 1;
    c.D = 512;
    c.scale = 0.02f;
    run_dense_case(c);
}

SA_TEST(cpu_dense_f16) {
    DenseCase c;
    c.dtype = SA_DTYPE_F16;
    c.causal = true;
    run_dense_case(c);
    c.bhsd = true;
    run_dense_case(c);
}

SA_TEST(cpu_dense_bf16) {
    DenseCase c;
    c.dtype = SA_DTYPE_BF16;
    c.causal = true;
    run_dense_case(c);
    c.bhsd = true;
    c.Hq = 6;
    c.Hkv = 3;
    run_dense_case(c);
}

SA_TEST(cpu_dense_without_lse_and_reference_kernel) {
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F32, {1, 20, 2, 16});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F32, {1, 33, 2, 16});
    HostTensor v = HostTensor::contiguous(SA_DTYPE_F32, {1, 33, 2, 16});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F32, {1, 20, 2, 16});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.kernel = SA_KERNEL_REFERENCE;
    options.num_threads = 1;
    for (int with_absent_tensor = 0; with_absent_tensor < 2; ++with_absent_tensor) {
        out.poison();
        sa_tensor absent{};
        REQUIRE_OK(sa_dense_forward(q.d(), k.d(), v.d(), out.d(), with_absent_tensor ? &absent : nullptr,
                                    &options));
        const Reference ref = reference_attention(q, k, v, 0.25, [](int64_t, int64_t, int64_t, int64_t) {
            return true;
        });
        CHECK_MATCHES_REFERENCE(ref, out, nullptr);
    }
}

/* Varlen -------------------------------------------------------------------------------------- */

namespace {

void run_varlen_case(sa_dtype dtype, std::vector<int32_t> len_q, std::vector<int32_t> len_k,
                     int64_t hq, int64_t hkv, int64_t d, bool causal, bool top_left = false) {
    std::vector<int32_t> cu_q(len_q.size() + 1, 0), cu_k(len_k.size() + 1, 0);
    for (size_t i = 0; i < len_q.size(); ++i) cu_q[i + 1] = cu_q[i] + len_q[i];
    for (size_t i = 0; i < len_k.size(); ++i) cu_k[i + 1] = cu_k[i] + len_k[i];
    const int64_t tq = cu_q.back(), tk = cu_k.back();
    const int32_t max_q = *std::max_element(len_q.begin(), len_q.end());
    const int32_t max_k = *std::max_element(len_k.begin(), len_k.end());
    // 4-D views [1, T, H, D] for the reference; the call sees the same storage as [T, H, D].
    HostTensor q = HostTensor::contiguous(dtype, {1, tq, hq, d});
    HostTensor k = HostTensor::contiguous(dtype, {1, tk, hkv, d});
    HostTensor v = HostTensor::contiguous(dtype, {1, tk, hkv, d});
    HostTensor out = HostTensor::contiguous(dtype, {1, tq, hq, d});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {1, hq, tq});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    out.poison();
    lse.poison();
    auto packed = [](const HostTensor& t) {
        sa_tensor s = t.desc;
        s.rank = t.desc.rank - 1;
        for (int i = 0; i < s.rank; ++i) {
            s.shape[i] = t.desc.shape[i + 1];
            s.strides[i] = t.desc.strides[i + 1];
        }
        return s;
    };
    sa_tensor pq = packed(q), pk = packed(k), pv = packed(v), po = packed(out), pl = packed(lse);
    HostTensor cq = HostTensor::contiguous(SA_DTYPE_I32, {static_cast<int64_t>(cu_q.size())});
    HostTensor ck = HostTensor::contiguous(SA_DTYPE_I32, {static_cast<int64_t>(cu_k.size())});
    std::memcpy(cq.i32(), cu_q.data(), cu_q.size() * 4);
    std::memcpy(ck.i32(), cu_k.data(), cu_k.size() * 4);
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = causal ? 1 : 0;
    options.causal_alignment = top_left ? SA_CAUSAL_TOP_LEFT : SA_CAUSAL_BOTTOM_RIGHT;
    REQUIRE_OK(sa_dense_forward_varlen(&pq, &pk, &pv, &po, &pl, cq.d(), ck.d(), max_q, max_k, &options));

    std::vector<int32_t> seq_of_q(static_cast<size_t>(tq)), seq_of_k(static_cast<size_t>(tk));
    for (size_t s = 0; s < len_q.size(); ++s) {
        for (int32_t i = cu_q[s]; i < cu_q[s + 1]; ++i) seq_of_q[i] = static_cast<int32_t>(s);
        for (int32_t j = cu_k[s]; j < cu_k[s + 1]; ++j) seq_of_k[j] = static_cast<int32_t>(s);
    }
    const Reference ref = reference_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(d)),
                                              [&](int64_t, int64_t, int64_t i, int64_t j) {
        const int32_t s = seq_of_q[i];
        if (seq_of_k[j] != s) return false;
        if (!causal) return true;
        const int64_t li = i - cu_q[s], lj = j - cu_k[s];
        return lj <= li + (top_left ? 0 : len_k[s] - len_q[s]);
    });
    CHECK_MATCHES_REFERENCE(ref, out, &lse);
}

}  // namespace

SA_TEST(cpu_varlen_matches_reference) {
    run_varlen_case(SA_DTYPE_F32, {5, 17, 1, 30}, {9, 17, 40, 12}, 4, 2, 24, false);
}

SA_TEST(cpu_varlen_causal_with_empty_and_short_sequences) {
    // Sequence 1 has no queries, sequence 2 has no keys (output 0, LSE -inf), sequence 3 has
    // more queries than keys.
    run_varlen_case(SA_DTYPE_F32, {8, 0, 6, 20}, {13, 5, 0, 7}, 3, 1, 16, true);
    run_varlen_case(SA_DTYPE_BF16, {8, 0, 6, 20}, {13, 5, 0, 7}, 2, 2, 32, true);
}

SA_TEST(cpu_varlen_causal_top_left) {
    run_varlen_case(SA_DTYPE_F32, {8, 0, 6, 20}, {13, 5, 0, 7}, 3, 1, 16, true, true);
}

/* LSE merge ------------------------------------------------------------------------------------ */

SA_TEST(cpu_lse_merge_equals_attention_over_the_union) {
    const int64_t B = 2, S = 9, H = 3, D = 20, Sk = 31, split = 13;
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F32, {B, S, H, D});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F32, {B, Sk, H, D});
    HostTensor v = HostTensor::contiguous(SA_DTYPE_F32, {B, Sk, H, D});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    // Query row 0 of batch 0 sees no key in either part; row 1 sees keys of part 2 only.
    auto in_part = [&](int part) {
        return [&, part](int64_t b, int64_t, int64_t i, int64_t j) {
            if (b == 0 && i == 0) return false;
            if (b == 0 && i == 1 && part == 1) return false;
            return part == 1 ? j < split : j >= split;
        };
    };
    const Reference r1 = reference_attention(q, k, v, scale, in_part(1));
    const Reference r2 = reference_attention(q, k, v, scale, in_part(2));
    const auto part1 = in_part(1), part2 = in_part(2);
    const Reference all = reference_attention(q, k, v, scale, [&](int64_t b, int64_t h, int64_t i, int64_t j) {
        return part1(b, h, i, j) || part2(b, h, i, j);
    });
    for (sa_dtype out_dtype : {SA_DTYPE_F32, SA_DTYPE_F16}) {
        HostTensor o1 = HostTensor::contiguous(SA_DTYPE_F32, {B, S, H, D});
        HostTensor o2 = HostTensor::permuted(SA_DTYPE_BF16, {B, S, H, D}, {0, 2, 1, 3});
        HostTensor l1 = HostTensor::contiguous(SA_DTYPE_F32, {B, H, S});
        HostTensor l2 = HostTensor::contiguous(SA_DTYPE_F32, {B, H, S});
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < S; ++i)
                for (int64_t h = 0; h < H; ++h) {
                    for (int64_t d = 0; d < D; ++d) {
                        o1.set({b, i, h, d}, r1.o(b, i, h, d));
                        o2.set({b, i, h, d}, r2.o(b, i, h, d));
                    }
                    l1.set({b, h, i}, r1.l(b, h, i));
                    l2.set({b, h, i}, r2.l(b, h, i));
                }
        HostTensor out = HostTensor::contiguous(out_dtype, {B, S, H, D});
        HostTensor lo = HostTensor::contiguous(SA_DTYPE_F32, {B, H, S});
        out.poison();
        lo.poison();
        REQUIRE_OK(sa_lse_merge(o1.d(), l1.d(), o2.d(), l2.d(), out.d(), lo.d(), nullptr));
        // bf16 storage of o2 bounds the error.
        Reference expected = all;
        const double tol = out_dtype == SA_DTYPE_F32 ? 1e-2 : 1.2e-2;
        int bad = 0;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < S; ++i)
                for (int64_t h = 0; h < H; ++h) {
                    for (int64_t d = 0; d < D; ++d)
                        if (!(std::fabs(out.get({b, i, h, d}) - expected.o(b, i, h, d)) <= tol)) {
                            if (bad < 3)
                                report_failure(__FILE__, __LINE__, "out[" + std::to_string(b) + "," + std::to_string(i) + "," + std::to_string(h) + "," + std::to_string(d) + "] = " + to_text(out.get({b, i, h, d})) + ", expected " + to_text(expected.o(b, i, h, d)));
                            ++bad;
                        }
                    const double want = expected.l(b, h, i), got = lo.get({b, h, i});
                    if (std::isinf(want) ? !(std::isinf(got) && got < 0) : !(std::fabs(got - want) <= 1e-5 * (1 + std::fabs(want))))
                        ++bad;
                }
        CHECK_EQ(bad, 0);

        // In place: out and lse_out alias o1 and lse1.
        REQUIRE_OK(sa_lse_merge(o1.d(), l1.d(), o2.d(), l2.d(), o1.d(), l1.d(), nullptr));
        bad = 0;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < S; ++i)
                for (int64_t h = 0; h < H; ++h)
                    for (int64_t d = 0; d < D; ++d)
                        if (!(std::fabs(o1.get({b, i, h, d}) - expected.o(b, i, h, d)) <= 1e-2)) ++bad;
        CHECK_EQ(bad, 0);
    }
}
