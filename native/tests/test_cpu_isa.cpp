// The CPU kernels at each instruction set: the level reported by sa_cpu_isa, and random ragged
// shapes (every dtype, causal and not, decode shapes whose key tiles are shared across threads)
// against the double-precision reference. Like every cpu_ case, these also run once per level
// (isa_<level>.<case> in ctest, SPARSEATTN_CPU_ISA set).
#include <cstdlib>
#include <string>

#include "test_util.h"

using namespace sa_test;

namespace {

int isa_rank(const std::string& name) {
    if (name == "baseline") return 0;
    if (name == "avx2") return 1;
    if (name == "avx512") return 2;
    return -1;
}

struct RaggedCase {
    sa_dtype dtype;
    int64_t B, Sq, Sk, Hq, Hkv, D;
    bool causal;
    int32_t threads;
};

void run_ragged_case(const RaggedCase& c) {
    std::printf("case dtype=%d B=%lld Sq=%lld Sk=%lld Hq=%lld Hkv=%lld D=%lld causal=%d threads=%d\n",
                static_cast<int>(c.dtype), static_cast<long long>(c.B), static_cast<long long>(c.Sq),
                static_cast<long long>(c.Sk), static_cast<long long>(c.Hq), static_cast<long long>(c.Hkv),
                static_cast<long long>(c.D), c.causal, c.threads);
    HostTensor q = HostTensor::contiguous(c.dtype, {c.B, c.Sq, c.Hq, c.D});
    HostTensor k = HostTensor::permuted(c.dtype, {c.B, c.Sk, c.Hkv, c.D}, {0, 2, 1, 3});
    HostTensor v = HostTensor::contiguous(c.dtype, {c.B, c.Sk, c.Hkv, c.D});
    HostTensor out = HostTensor::contiguous(c.dtype, {c.B, c.Sq, c.Hq, c.D});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {c.B, c.Hq, c.Sq});
    q.fill_random();
    k.fill_random();
    v.fill_random();
    out.poison();
    lse.poison();
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = c.causal ? 1 : 0;
    options.num_threads = c.threads;
    REQUIRE_OK(sa_dense_forward(q.d(), k.d(), v.d(), out.d(), lse.d(), &options));
    const int64_t offset = c.Sk - c.Sq;
    const Reference ref = reference_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(c.D)),
                                              [&](int64_t, int64_t, int64_t i, int64_t j) {
                                                  return !c.causal || j <= i + offset;
                                              });
    CHECK_MATCHES_REFERENCE(ref, out, &lse);
}

sa_dtype random_dtype() {
    const sa_dtype dtypes[] = {SA_DTYPE_F32, SA_DTYPE_BF16, SA_DTYPE_F16};
    return dtypes[uniform_int(0, 2)];
}

}  // namespace

SA_TEST(cpu_isa_reports_a_known_level) {
    const char* name = sa_cpu_isa();
    REQUIRE(name != nullptr);
    CHECK(isa_rank(name) >= 0);
    CHECK(sa_cpu_isa() == name);  // chosen once
    const char* forced = std::getenv("SPARSEATTN_CPU_ISA");
    if (forced && isa_rank(forced) >= 0) CHECK(isa_rank(name) <= isa_rank(forced));
}

SA_TEST(cpu_kernels_random_ragged_shapes) {
    const int64_t dims[] = {1, 5, 8, 16, 24, 33, 64, 80, 128, 200};
    for (int trial = 0; trial < 10; ++trial) {
        RaggedCase c;
        c.dtype = random_dtype();
        c.B = uniform_int(1, 2);
        c.Sq = uniform_int(1, 300);
        c.Sk = uniform_int(1, 300);
        c.Hkv = uniform_int(1, 2);
        c.Hq = c.Hkv * uniform_int(1, 3);
        c.D = dims[uniform_int(0, 9)];
        c.causal = uniform_int(0, 1) == 1;
        c.threads = static_cast<int32_t>(uniform_int(0, 3));
        run_ragged_case(c);
    }
}

SA_TEST(cpu_kernels_decode_shares_key_tiles) {
    // One or a few queries over many keys: fewer query tiles than threads, so the key tiles
    // are dealt to several work items and merged by their log-sum-exp.
    const int64_t dims[] = {16, 64, 100, 128};
    for (int trial = 0; trial < 6; ++trial) {
        RaggedCase c;
        c.dtype = random_dtype();
        c.B = 1;
        c.Sq = uniform_int(1, 3);
        c.Sk = uniform_int(200, 1500);
        c.Hkv = 1;
        c.Hq = uniform_int(1, 4);
        c.D = dims[uniform_int(0, 3)];
        c.causal = uniform_int(0, 1) == 1;
        c.threads = static_cast<int32_t>(uniform_int(2, 4));
        run_ragged_case(c);
    }
}

SA_TEST(cpu_kernels_decode_chunk_tails_and_masks) {
    // One and two queries (the fused decode step, kLanes keys a chunk): key counts that leave
    // every tail length of a chunk and of a four-key group, rows read in place (fp32, D a
    // multiple of the vector) or packed (other D, bf16/fp16), causal masks that cut the last
    // chunk for the first of two queries, and shares of key tiles on several threads.
    const int64_t key_counts[] = {1, 3, 17, 130, 261, 1031};
    const int64_t dims[] = {128, 64, 100};
    int index = 0;
    for (int64_t sq = 1; sq <= 2; ++sq) {
        for (int64_t sk : key_counts) {
            for (int64_t d : dims) {
                RaggedCase c;
                const sa_dtype dtypes[] = {SA_DTYPE_F32, SA_DTYPE_F32, SA_DTYPE_BF16, SA_DTYPE_F16};
                c.dtype = dtypes[index % 4];
                c.B = 1;
                c.Sq = sq;
                c.Sk = sk;
                c.Hkv = 1;
                c.Hq = 1 + index % 3;
                c.D = d;
                c.causal = index % 2 == 1;
                c.threads = 1 + index % 3;
                run_ragged_case(c);
                ++index;
            }
        }
    }
}
