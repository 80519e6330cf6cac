// sparseattn_bench_sparse: the neighborhood, block-sparse and PBS calls through the C ABI,
// each timed beside our dense forward on the same tokens in the same process, with the
// neighborhood tile estimate printed next to the measurement. Each case is first checked
// against the reference kernel (heads 0-1 for block-sparse; all of it for neighborhood); PBS
// runs on structured inputs and reports its accuracy against dense causal attention.
//   sparseattn_bench_sparse --suite na|bs|pbs|small [--json FILE] [--kernel auto|portable] [--check 0|1]
//                           [--seqlen S (PBS only: this sequence length)]
//                           [--density X --perm none|identity|within-block|random (one block-sparse case)]
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench_fill.h"
#include "sparseattn/sparseattn.h"

namespace {

int32_t g_kernel = SA_KERNEL_AUTO;
bool g_check = true;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "sparseattn_bench_sparse: %s\n", what.c_str());
    std::exit(2);
}
void sa_check(sa_status s, const char* what) {
    if (s != SA_OK) die(std::string(what) + ": " + sa_status_string(s) + ": " + sa_last_error());
}
void cu_check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorString(e));
}

float bf16_to_float(uint16_t h) {
    const uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

void* device_alloc(size_t bytes) {
    void* p = nullptr;
    sa_check(sa_cuda_malloc(0, bytes, &p), "sa_cuda_malloc");
    return p;
}

sa_tensor bshd(void* data, int64_t s, int64_t h, int64_t d, int64_t heads_stride) {
    sa_tensor t{};
    t.data = data;
    t.dtype = SA_DTYPE_BF16;
    t.device_type = SA_DEVICE_CUDA;
    t.rank = 4;
    t.shape[0] = 1; t.shape[1] = s; t.shape[2] = h; t.shape[3] = d;
    t.strides[0] = s * heads_stride * d; t.strides[1] = heads_stride * d; t.strides[2] = d; t.strides[3] = 1;
    return t;
}
sa_tensor ints(void* data, std::vector<int64_t> shape, std::vector<int64_t> strides) {
    sa_tensor t{};
    t.data = data;
    t.dtype = SA_DTYPE_I32;
    t.device_type = SA_DEVICE_CUDA;
    t.rank = int32_t(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) {
        t.shape[i] = shape[i];
        t.strides[i] = strides[i];
    }
    return t;
}

// Median, fastest and slowest of `reps` timed calls (CUDA events around each), after warm-up.
struct Timing {
    double median = 0, min = 0, max = 0;
};
Timing time_reps(const std::function<void()>& call, int reps) {
    for (int i = 0; i < 2; ++i) call();
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    std::vector<float> times;
    for (int i = 0; i < reps; ++i) {
        cudaEventRecord(e0);
        call();
        cudaEventRecord(e1);
        cu_check(cudaEventSynchronize(e1), "timed call");
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        times.push_back(ms);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    std::sort(times.begin(), times.end());
    return Timing{times[times.size() / 2], times.front(), times.back()};
}
double time_ms(const std::function<void()>& call, int reps) { return time_reps(call, reps).median; }
int reps_for(double flops) { return std::clamp(int(5e13 / std::max(flops, 1.0)), 3, 50); }

// Relative L2 error and max |diff| of two bf16 buffers with the same strided layout.
struct Check {
    double rel_l2 = 0, max_abs = 0;
    bool all_written = true;
};
Check compare(const void* got, const void* want, int64_t s, int64_t h_used, int64_t h_stride, int64_t d) {
    const size_t n = size_t(s * h_stride * d);
    std::vector<uint16_t> a(n), b(n);
    sa_check(sa_cuda_memcpy(a.data(), got, n * 2, SA_COPY_DEVICE_TO_HOST, nullptr), "copy");
    sa_check(sa_cuda_memcpy(b.data(), want, n * 2, SA_COPY_DEVICE_TO_HOST, nullptr), "copy");
    Check c;
    double diff2 = 0, ref2 = 0;
    for (int64_t i = 0; i < s; ++i)
        for (int64_t h = 0; h < h_used; ++h)
            for (int64_t x = 0; x < d; ++x) {
                const size_t at = size_t((i * h_stride + h) * d + x);
                const double f = bf16_to_float(a[at]), e = bf16_to_float(b[at]);
                if (std::isnan(f)) c.all_written = false;
                const double dd = std::fabs(f - e);
                if (!std::isnan(dd)) c.max_abs = std::max(c.max_abs, dd);
                diff2 += (f - e) * (f - e);
                ref2 += e * e;
            }
    c.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
    return c;
}

struct Row {
    std::string name;
    double ms = 0, tflops = 0, dense_ms = 0, speedup = 0;
    double ms_min = 0, ms_max = 0;  // fastest and slowest repetition; 0 where ms is not one timed call (PBS)
    double est_tile = 0, est_pred = 0, est_pairs = 0, est_masked = 0;
    double extra = 0;  // block-sparse: time / (density x dense time); PBS: planner share
    Check check;
    bool checked = false;
    double plan_ms = 0, run_ms = 0, density = 0;  // PBS
    AccuracyMetrics metrics{};
    bool has_metrics = false;
};
std::vector<Row> g_rows;

void print_row(const Row& r) {
    std::printf("%-46s %9.3f ms %7.1f TFLOP/s  dense %9.3f ms  x%6.2f", r.name.c_str(), r.ms, r.tflops, r.dense_ms,
                r.speedup);
    if (r.est_pairs > 0)
        std::printf("  bound pairs x%.2f tiles x%.2f pred x%.2f masked %.2f", r.est_pairs, r.est_tile, r.est_pred,
                    r.est_masked);
    if (r.extra > 0) std::printf("  ratio %.3f", r.extra);
    if (r.checked)
        std::printf("  | rel_l2 %.2e max %.2e %s", r.check.rel_l2, r.check.max_abs,
                    r.check.all_written && r.check.rel_l2 < 2e-2 ? "ok" : "FAIL");
    std::printf("\n");
    std::fflush(stdout);
}

struct Buffers {
    int64_t s, h, d;
    void *q, *k, *v, *out, *ref;
    Buffers(int64_t s_, int64_t h_, int64_t d_, uint64_t seed) : s(s_), h(h_), d(d_) {
        const size_t n = size_t(s * h * d);
        q = device_alloc(n * 2);
        k = device_alloc(n * 2);
        v = device_alloc(n * 2);
        out = device_alloc(n * 2);
        ref = device_alloc(n * 2);
        cu_check(bench_fill_random(q, n, true, seed), "fill q");
        cu_check(bench_fill_random(k, n, true, seed + 1), "fill k");
        cu_check(bench_fill_random(v, n, true, seed + 2), "fill v");
        sa_check(sa_cuda_memset(out, 0xFF, n * 2, nullptr), "poison");
        sa_check(sa_cuda_memset(ref, 0xFF, n * 2, nullptr), "poison");
    }
    ~Buffers() {
        for (void* p : {q, k, v, out, ref}) sa_cuda_free(0, p);
    }
    double dense_ms(bool causal) const {
        sa_tensor tq = bshd(q, s, h, d, h), tk = bshd(k, s, h, d, h), tv = bshd(v, s, h, d, h), to = bshd(ref, s, h, d, h);
        sa_attention_options opt;
        sa_attention_options_init(&opt);
        opt.causal = causal;
        opt.kernel = g_kernel;
        const double pairs = causal ? double(s) * double(s + 1) / 2 : double(s) * double(s);
        return time_ms([&] { sa_check(sa_dense_forward(&tq, &tk, &tv, &to, nullptr, &opt), "dense"); },
                       reps_for(4.0 * double(h * d) * pairs));
    }
};

// Neighborhood -------------------------------------------------------------------------------

struct NaCase {
    const char* name;
    int32_t rank, grid[3], kernel[3], stride[3], dilation[3], causal[3];
    int64_t heads;
};

void run_na(const NaCase& c, double& dense_cache_ms, int64_t& dense_cache_s) {
    sa_neighborhood_params params;
    sa_neighborhood_params_init(&params, c.rank);
    int64_t s = 1;
    for (int d = 0; d < c.rank; ++d) {
        params.grid[d] = c.grid[d];
        params.kernel[d] = c.kernel[d];
        params.stride[d] = c.stride[d];
        params.dilation[d] = c.dilation[d];
        params.causal[d] = c.causal[d];
        s *= c.grid[d];
    }
    const int64_t h = c.heads, d = 128;
    Buffers buf(s, h, d, 11);
    sa_tensor tq = bshd(buf.q, s, h, d, h), tk = bshd(buf.k, s, h, d, h), tv = bshd(buf.v, s, h, d, h);
    sa_tensor to = bshd(buf.out, s, h, d, h), tr = bshd(buf.ref, s, h, d, h);
    sa_attention_options opt;
    sa_attention_options_init(&opt);
    opt.kernel = g_kernel;
    Row r;
    r.name = c.name;
    sa_check(sa_neighborhood_forward(&tq, &tk, &tv, &to, nullptr, &params, &opt), "neighborhood (fast)");
    if (g_check) {
        sa_attention_options ropt = opt;
        ropt.kernel = SA_KERNEL_REFERENCE;
        sa_check(sa_neighborhood_forward(&tq, &tk, &tv, &tr, nullptr, &params, &ropt), "neighborhood (reference)");
        sa_check(sa_cuda_device_synchronize(0), "sync");
        r.check = compare(buf.out, buf.ref, s, h, h, d);
        r.checked = true;
    }
    int64_t pairs = 0;
    sa_check(sa_neighborhood_pair_count(&params, &pairs), "pair count");
    const double flops = 4.0 * double(h * d) * double(pairs);
    const Timing t = time_reps([&] { sa_check(sa_neighborhood_forward(&tq, &tk, &tv, &to, nullptr, &params, &opt), "na"); },
                               reps_for(flops));
    r.ms = t.median;
    r.ms_min = t.min;
    r.ms_max = t.max;
    r.tflops = flops / (r.ms * 1e-3) / 1e12;
    if (dense_cache_s != s * h) {
        dense_cache_ms = buf.dense_ms(false);
        dense_cache_s = s * h;
    }
    r.dense_ms = dense_cache_ms;
    r.speedup = r.dense_ms / r.ms;
    sa_neighborhood_estimate est;
    const int32_t tile = g_kernel == SA_KERNEL_PORTABLE ? 64 : 128;
    sa_check(sa_neighborhood_estimate_tiles(&params, tile, tile, nullptr, nullptr, &est), "estimate");
    r.est_pairs = est.pair_bound_speedup;
    r.est_tile = est.tile_bound_speedup;
    r.est_pred = est.predicted_speedup;
    r.est_masked = est.masked_fraction;
    print_row(r);
    std::printf("    boxes q %dx%dx%d k %dx%dx%d, %.0f tiles visited\n", est.q_box[0], est.q_box[1], est.q_box[2],
                est.k_box[0], est.k_box[1], est.k_box[2], est.tiles_visited);
    g_rows.push_back(r);
}

// Block-sparse -------------------------------------------------------------------------------

// Random 128 x 128 block lists per head (plus the diagonal), as the FlexAttention anchor draws
// them; returns the listed block count.
int64_t random_lists(int64_t h, int64_t nb, double density, uint32_t seed, std::vector<int32_t>& num,
                     std::vector<int32_t>& idx) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    num.assign(size_t(h * nb), 0);
    idx.assign(size_t(h * nb * nb), -1);
    int64_t total = 0;
    for (int64_t row = 0; row < h * nb; ++row) {
        const int64_t qb = row % nb;
        int32_t n = 0;
        for (int64_t j = 0; j < nb; ++j)
            if (u(rng) < density || j == qb) idx[size_t(row * nb + n++)] = int32_t(j);
        num[size_t(row)] = n;
        total += n;
    }
    return total;
}

// Key permutations of the block-sparse cases: none, the identity passed as a permutation (the
// gather path on in-order rows), rows shuffled within each block (the same rows per tile,
// gathered), and a uniformly random permutation.
enum class KeyPerm { none, identity, within_block, random };
const char* key_perm_name(KeyPerm m) {
    switch (m) {
        case KeyPerm::identity: return " key-perm identity";
        case KeyPerm::within_block: return " key-perm within-block";
        case KeyPerm::random: return " key-perm";
        default: return "";
    }
}

void run_bs(int64_t s, int64_t h, double density, KeyPerm mode, double& dense_ms) {
    const bool permute = mode != KeyPerm::none;
    const int64_t d = 128, block = 128, nb = s / block;
    Buffers buf(s, h, d, 21);
    std::vector<int32_t> num, idx;
    const int64_t listed = random_lists(h, nb, density, 7, num, idx);
    void* dnum = device_alloc(num.size() * 4);
    void* didx = device_alloc(idx.size() * 4);
    sa_check(sa_cuda_memcpy(dnum, num.data(), num.size() * 4, SA_COPY_HOST_TO_DEVICE, nullptr), "copy");
    sa_check(sa_cuda_memcpy(didx, idx.data(), idx.size() * 4, SA_COPY_HOST_TO_DEVICE, nullptr), "copy");
    void* dperm = nullptr;
    if (permute) {
        std::vector<int32_t> perm(size_t(h * s));
        std::mt19937 rng(3);
        for (int64_t i = 0; i < h; ++i) {
            int32_t* p = perm.data() + i * s;
            for (int64_t t = 0; t < s; ++t) p[t] = int32_t(t);
            if (mode == KeyPerm::random) std::shuffle(p, p + s, rng);
            if (mode == KeyPerm::within_block)
                for (int64_t t = 0; t < s; t += block) std::shuffle(p + t, p + std::min(s, t + block), rng);
        }
        dperm = device_alloc(perm.size() * 4);
        sa_check(sa_cuda_memcpy(dperm, perm.data(), perm.size() * 4, SA_COPY_HOST_TO_DEVICE, nullptr), "copy");
    }
    auto params_for = [&](int64_t heads_used) {
        sa_block_sparse_params p;
        std::memset(&p, 0, sizeof p);
        p.block_q = p.block_k = int32_t(block);
        p.kv_num_blocks = ints(dnum, {1, heads_used, nb}, {h * nb, nb, 1});
        p.kv_indices = ints(didx, {1, heads_used, nb, nb}, {h * nb * nb, nb * nb, nb, 1});
        if (permute) p.key_perm = ints(dperm, {1, heads_used, s}, {h * s, s, 1});
        return p;
    };
    sa_attention_options opt;
    sa_attention_options_init(&opt);
    opt.kernel = g_kernel;
    Row r;
    char name[96];
    std::snprintf(name, sizeof name, "block-sparse S%lld H%lld density %.3f%s", (long long)s, (long long)h,
                  double(listed) / double(h * nb * nb), key_perm_name(mode));
    r.name = name;
    if (g_check) {  // heads 0-1 against the reference kernel
        const sa_block_sparse_params p2 = params_for(2);
        sa_tensor q2 = bshd(buf.q, s, 2, d, h), k2 = bshd(buf.k, s, 2, d, h), v2 = bshd(buf.v, s, 2, d, h);
        sa_tensor o2 = bshd(buf.out, s, 2, d, h), r2 = bshd(buf.ref, s, 2, d, h);
        sa_check(sa_block_sparse_forward(&q2, &k2, &v2, &o2, nullptr, &p2, &opt), "block-sparse (fast)");
        sa_attention_options ropt = opt;
        ropt.kernel = SA_KERNEL_REFERENCE;
        sa_check(sa_block_sparse_forward(&q2, &k2, &v2, &r2, nullptr, &p2, &ropt), "block-sparse (reference)");
        sa_check(sa_cuda_device_synchronize(0), "sync");
        r.check = compare(buf.out, buf.ref, s, 2, h, d);
        r.checked = true;
    }
    const sa_block_sparse_params p = params_for(h);
    sa_tensor tq = bshd(buf.q, s, h, d, h), tk = bshd(buf.k, s, h, d, h), tv = bshd(buf.v, s, h, d, h);
    sa_tensor to = bshd(buf.out, s, h, d, h);
    const double flops = 4.0 * double(d) * double(listed) * double(block * block);
    const Timing t = time_reps([&] { sa_check(sa_block_sparse_forward(&tq, &tk, &tv, &to, nullptr, &p, &opt), "bs"); },
                               reps_for(flops));
    r.ms = t.median;
    r.ms_min = t.min;
    r.ms_max = t.max;
    r.tflops = flops / (r.ms * 1e-3) / 1e12;
    if (dense_ms <= 0) dense_ms = buf.dense_ms(false);
    r.dense_ms = dense_ms;
    r.speedup = dense_ms / r.ms;
    r.extra = r.ms / (double(listed) / double(h * nb * nb) * dense_ms);  // bar: <= 1.15
    print_row(r);
    g_rows.push_back(r);
    sa_cuda_free(0, dnum);
    sa_cuda_free(0, didx);
    if (dperm) sa_cuda_free(0, dperm);
}

// PBS: planner + permuted block-sparse causal prefill on structured inputs (bench_fill.h:
// needles scattered across the sequence, a local pattern, sink tokens), beside our dense causal
// on the same tokens; accuracy against that dense output. Each configuration is planned and
// run with the key permutation on and off.
struct PbsConfig {
    int32_t segment;
    float tau;
    bool permute;
};

void run_pbs(int64_t s, int64_t h, const std::vector<PbsConfig>& configs) {
    const int64_t d = 128, block = 128, nb = s / block;
    Buffers buf(s, h, d, 31);
    StructuredFill fill;
    fill.seqlen = s;
    fill.heads = h;
    fill.head_dim = d;
    fill.scale = 1.0f / std::sqrt(float(d));
    cu_check(bench_fill_structured(buf.q, buf.k, buf.v, fill), "structured fill");
    std::printf("PBS inputs: needles %.4f of keys at +%.1f, local +%.1f, %lld sink tokens at +%.1f, noise %.2f\n",
                fill.needle_fraction, fill.needle_logit, fill.local_logit, (long long)fill.sink_tokens,
                fill.sink_logit, fill.noise);
    void* perm = device_alloc(size_t(h * s) * 4);
    void* num = device_alloc(size_t(h * nb) * 4);
    void* idx = device_alloc(size_t(h * nb * nb) * 4);
    void* lse_dense = device_alloc(size_t(h * s) * 4);
    void* lse_sparse = device_alloc(size_t(h * s) * 4);
    sa_tensor tq = bshd(buf.q, s, h, d, h), tk = bshd(buf.k, s, h, d, h), tv = bshd(buf.v, s, h, d, h);
    sa_tensor to = bshd(buf.out, s, h, d, h), tref = bshd(buf.ref, s, h, d, h);
    sa_tensor tperm = ints(perm, {1, h, s}, {h * s, s, 1}), tnum = ints(num, {1, h, nb}, {h * nb, nb, 1});
    sa_tensor tidx = ints(idx, {1, h, nb, nb}, {h * nb * nb, nb * nb, nb, 1});
    auto lse_tensor = [&](void* data) {
        sa_tensor t{};
        t.data = data;
        t.dtype = SA_DTYPE_F32;
        t.device_type = SA_DEVICE_CUDA;
        t.rank = 3;
        t.shape[0] = 1; t.shape[1] = h; t.shape[2] = s;
        t.strides[0] = h * s; t.strides[1] = s; t.strides[2] = 1;
        return t;
    };
    sa_tensor tlse_dense = lse_tensor(lse_dense), tlse_sparse = lse_tensor(lse_sparse);
    sa_attention_options opt;
    sa_attention_options_init(&opt);
    opt.causal = 1;
    opt.kernel = g_kernel;
    sa_check(sa_dense_forward(&tq, &tk, &tv, &tref, &tlse_dense, &opt), "dense causal with LSE");
    const double dense_ms = buf.dense_ms(true);
    for (const PbsConfig& c : configs) {
        sa_pbs_options popt;
        sa_pbs_options_init(&popt);
        popt.block = int32_t(block);
        popt.segment = c.segment;
        popt.tau = c.tau;
        popt.permute_keys = c.permute ? 1 : 0;
        sa_block_sparse_params p;
        std::memset(&p, 0, sizeof p);
        p.block_q = p.block_k = int32_t(block);
        p.kv_num_blocks = tnum;
        p.kv_indices = tidx;
        p.key_perm = tperm;
        const double plan_ms = time_ms([&] { sa_check(sa_pbs_plan(&tq, &tk, &popt, &tperm, &tnum, &tidx), "plan"); }, 5);
        sa_check(sa_cuda_memset(buf.out, 0xFF, size_t(s * h * d) * 2, nullptr), "poison");
        sa_check(sa_block_sparse_forward(&tq, &tk, &tv, &to, &tlse_sparse, &p, &opt), "pbs with LSE");
        AccuracyMetrics m{};
        cu_check(bench_accuracy(buf.out, buf.ref, uint64_t(s * h * d), static_cast<const float*>(lse_sparse),
                                static_cast<const float*>(lse_dense), uint64_t(h * s), &m),
                 "accuracy");
        const double run_ms = time_ms([&] { sa_check(sa_block_sparse_forward(&tq, &tk, &tv, &to, nullptr, &p, &opt), "pbs"); }, 5);
        std::vector<int32_t> counts(size_t(h * nb)), lists(size_t(h * nb * nb));
        sa_check(sa_cuda_memcpy(counts.data(), num, counts.size() * 4, SA_COPY_DEVICE_TO_HOST, nullptr), "copy");
        sa_check(sa_cuda_memcpy(lists.data(), idx, lists.size() * 4, SA_COPY_DEVICE_TO_HOST, nullptr), "copy");
        double causal_listed = 0;  // listed blocks that hold any causal pair (j <= i)
        for (int64_t row = 0; row < h * nb; ++row)
            for (int32_t e = 0; e < counts[size_t(row)]; ++e)
                if (lists[size_t(row * nb + e)] <= row % nb) causal_listed += 1;
        double listed = 0;
        for (int32_t x : counts) listed += x;
        const double causal_blocks = double(h) * double(nb) * double(nb + 1) / 2;
        Row r;
        char name[160];
        std::snprintf(name, sizeof name, "PBS S%lld H%lld seg %d tau %.3f %s", (long long)s, (long long)h, c.segment,
                      double(c.tau), c.permute ? "key-perm" : "no-perm");
        r.name = name;
        r.ms = plan_ms + run_ms;
        r.dense_ms = dense_ms;
        r.speedup = dense_ms / r.ms;
        r.extra = plan_ms / r.ms;
        r.plan_ms = plan_ms;
        r.run_ms = run_ms;
        r.density = listed / causal_blocks;
        r.metrics = m;
        r.has_metrics = true;
        print_row(r);
        std::printf("    plan %.3f ms + run %.3f ms; blocks listed %.4f of causal (%.4f below the diagonal); mass mean %.4f "
                    "min %.4f rows<0.9 %.4f; rel L1 %.4f; cosine %.5f\n",
                    plan_ms, run_ms, r.density, causal_listed / causal_blocks, m.mass_mean, m.mass_min,
                    m.rows_below_90, m.rel_l1, m.cosine);
        g_rows.push_back(r);
    }
    for (void* x : {perm, num, idx, lse_dense, lse_sparse}) sa_cuda_free(0, x);
}

}  // namespace

int main(int argc, char** argv) {
    std::string suite = "small", json;
    int64_t pbs_seqlen = 0;  // PBS: one sequence length instead of 32768 and 131072
    double bs_density = 0;   // block-sparse: one case (with --perm) instead of the suite
    KeyPerm bs_mode = KeyPerm::none;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + a);
            return argv[++i];
        };
        if (a == "--suite") suite = next();
        else if (a == "--json") json = next();
        else if (a == "--check") g_check = next() != "0";
        else if (a == "--seqlen") pbs_seqlen = std::stoll(next());
        else if (a == "--density") bs_density = std::stod(next());
        else if (a == "--perm") {
            const std::string m = next();
            bs_mode = m == "none" ? KeyPerm::none : m == "identity" ? KeyPerm::identity
                    : m == "within-block" ? KeyPerm::within_block : m == "random" ? KeyPerm::random
                    : (die("--perm none|identity|within-block|random"), KeyPerm::none);
        }
        else if (a == "--kernel") {
            const std::string k = next();
            g_kernel = k == "portable" ? SA_KERNEL_PORTABLE : k == "auto" ? SA_KERNEL_AUTO : (die("--kernel auto|portable"), 0);
        } else {
            std::printf("usage: sparseattn_bench_sparse [--suite na|bs|pbs|small] [--json FILE] [--kernel auto|portable] [--check 0|1] [--seqlen S] [--density X --perm MODE]\n");
            return a == "--help" ? 0 : 2;
        }
    }
    sa_device_info info;
    sa_check(sa_cuda_device_info(0, &info), "device info");
    std::printf("device %s, kernel %s\n", info.name, g_kernel == SA_KERNEL_PORTABLE ? "portable" : "auto");
    if (suite == "na" || suite == "small") {
        const bool small = suite == "small";
        const std::vector<NaCase> cases = small
            ? std::vector<NaCase>{{"NA 1-D 4096 w512", 1, {4096, 1, 1}, {512, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 4},
                                  {"NA 2-D 64x64 w13x13", 2, {64, 64, 1}, {13, 13, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 4},
                                  {"NA 3-D 8x16x24 w5x7x9 dil2", 3, {8, 16, 24}, {3, 7, 9}, {1, 2, 2}, {1, 2, 2}, {0, 0, 0}, 2}}
            : std::vector<NaCase>{
                  {"NA 1-D 32768 w2048", 1, {32768, 1, 1}, {2048, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 16},
                  {"NA 1-D 32768 w2048 s256", 1, {32768, 1, 1}, {2048, 1, 1}, {256, 1, 1}, {1, 1, 1}, {0, 0, 0}, 16},
                  {"NA 1-D 32768 w2048 blocked", 1, {32768, 1, 1}, {2048, 1, 1}, {2048, 1, 1}, {1, 1, 1}, {0, 0, 0}, 16},
                  {"NA 2-D 256x256 w80x80", 2, {256, 256, 1}, {80, 80, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 24},
                  {"NA 2-D 256x256 w80x80 s16x16", 2, {256, 256, 1}, {80, 80, 1}, {16, 16, 1}, {1, 1, 1}, {0, 0, 0}, 24},
                  {"NA 3-D 30x48x80 w18x24x24", 3, {30, 48, 80}, {18, 24, 24}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 24},
                  {"NA 3-D 30x48x80 w18x24x24 s16x8x8", 3, {30, 48, 80}, {18, 24, 24}, {16, 8, 8}, {1, 1, 1}, {0, 0, 0}, 24},
              };
        double dense_ms = 0;
        int64_t dense_s = 0;
        for (const NaCase& c : cases) run_na(c, dense_ms, dense_s);
    }
    if (suite == "bs" || suite == "small") {
        const int64_t s = suite == "small" ? 4096 : 32768, h = suite == "small" ? 4 : 32;
        double dense_ms = 0;
        if (bs_density > 0) {
            run_bs(s, h, bs_density, bs_mode, dense_ms);
        } else {
        for (double density : {0.05, 0.1, 0.25, 0.5})
            for (KeyPerm mode : {KeyPerm::none, KeyPerm::random}) run_bs(s, h, density, mode, dense_ms);
        for (double density : {0.1, 0.5})
            for (KeyPerm mode : {KeyPerm::identity, KeyPerm::within_block}) run_bs(s, h, density, mode, dense_ms);
        }
    }
    if (suite == "pbs" || suite == "small") {
        const std::vector<PbsConfig> configs =
            suite == "small" ? std::vector<PbsConfig>{{1024, 0.99f, true}, {1024, 0.99f, false}}
                             : std::vector<PbsConfig>{{256, 0.9f, true},    {2048, 0.9f, true},   {2048, 0.99f, true},
                                                      {2048, 0.999f, true}, {2048, 0.99f, false}, {2048, 0.999f, false}};
        if (suite == "small") run_pbs(4096, 4, configs);
        else if (pbs_seqlen > 0) run_pbs(pbs_seqlen, 32, configs);
        else
            for (int64_t s : {int64_t(32768), int64_t(131072)}) run_pbs(s, 32, configs);
    }
    if (!json.empty()) {
        FILE* f = std::fopen(json.c_str(), "w");
        if (!f) die("cannot write " + json);
        std::fprintf(f, "{\"device\": \"%s\", \"kernel\": \"%s\", \"results\": [\n", info.name,
                     g_kernel == SA_KERNEL_PORTABLE ? "portable" : "auto");
        for (size_t i = 0; i < g_rows.size(); ++i) {
            const Row& r = g_rows[i];
            std::fprintf(f,
                         "  {\"name\": \"%s\", \"ms\": %.4f, \"tflops\": %.2f, \"dense_ms\": %.4f, \"speedup\": %.3f, "
                         "\"pair_bound\": %.3f, \"tile_bound\": %.3f, \"predicted\": %.3f, \"masked\": %.3f, "
                         "\"ratio\": %.4f, \"rel_l2\": %.3e, \"checked\": %s",
                         r.name.c_str(), r.ms, r.tflops, r.dense_ms, r.speedup, r.est_pairs, r.est_tile, r.est_pred,
                         r.est_masked, r.extra, r.check.rel_l2, r.checked ? "true" : "false");
            if (r.ms_min > 0) std::fprintf(f, ", \"ms_min\": %.4f, \"ms_max\": %.4f", r.ms_min, r.ms_max);
            if (r.has_metrics)
                std::fprintf(f,
                             ", \"plan_ms\": %.4f, \"run_ms\": %.4f, \"density\": %.5f, \"mass_mean\": %.5f, "
                             "\"mass_min\": %.5f, \"rows_below_90\": %.5f, \"rel_l1\": %.5f, \"cosine\": %.6f",
                             r.plan_ms, r.run_ms, r.density, r.metrics.mass_mean, r.metrics.mass_min,
                             r.metrics.rows_below_90, r.metrics.rel_l1, r.metrics.cosine);
            std::fprintf(f, "}%s\n", i + 1 < g_rows.size() ? "," : "");
        }
        std::fprintf(f, "]}\n");
        std::fclose(f);
    }
    int bad = 0;
    for (const Row& r : g_rows)
        if (r.checked && !(r.check.all_written && r.check.rel_l2 < 2e-2)) ++bad;
    return bad == 0 ? 0 : 1;
}
