// sparseattn_bench: dense attention forward through the C ABI. Checks the fast path against
// the reference kernel on the same inputs, then times it with CUDA events (median of reps).
//   sparseattn_bench --batch 2 --heads 16 --seqlen-q 8192 --dim 128 --causal 1 --dtype bf16
//   sparseattn_bench --suite dense|decode|small [--json FILE] [--kernel auto|portable]
// --kernel portable times the mma.sync path where AUTO would pick the Hopper wgmma kernel.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_fill.h"
#include "sparseattn/sparseattn.h"

namespace {

int32_t g_kernel = SA_KERNEL_AUTO;  // the fast path timed: AUTO or PORTABLE

struct Shape {
    int64_t batch = 2, heads = 16, heads_kv = 0, seqlen_q = 4096, seqlen_k = 0, dim = 128;
    int causal = 0;
    bool bf16 = true;
    int splits = 0;
    int reps = 0;  // 0: chosen from the work size
};

struct Result {
    Shape shape;
    double ms = 0, ms_min = 0, ms_max = 0, tflops = 0, gbps = 0, floor_ratio = 0;
    double max_abs = 0, rel_l2 = 0, lse_max_abs = 0;
    bool written_all = false, ok = false;
};

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "sparseattn_bench: %s\n", what.c_str());
    std::exit(2);
}
void sa_check(sa_status s, const char* what) {
    if (s != SA_OK) die(std::string(what) + ": " + sa_status_string(s) + ": " + sa_last_error());
}
void cu_check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorString(e));
}

float half_to_float(uint16_t h, bool bf16) {
    if (bf16) {
        uint32_t bits = uint32_t(h) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
    const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0) v = std::ldexp(float(man), -24);
    else if (exp == 31) v = man ? NAN : INFINITY;
    else v = std::ldexp(float(man | 0x400), int(exp) - 25);
    return sign ? -v : v;
}

sa_tensor make_bshd(void* data, bool bf16, int64_t b, int64_t s, int64_t h, int64_t d,
                    int64_t seq_stride, int64_t batch_stride) {
    sa_tensor t{};
    t.data = data;
    t.dtype = bf16 ? SA_DTYPE_BF16 : SA_DTYPE_F16;
    t.device_type = SA_DEVICE_CUDA;
    t.rank = 4;
    t.shape[0] = b; t.shape[1] = s; t.shape[2] = h; t.shape[3] = d;
    t.strides[0] = batch_stride; t.strides[1] = seq_stride; t.strides[2] = d; t.strides[3] = 1;
    return t;
}
sa_tensor make_lse(float* data, int64_t b, int64_t h, int64_t s) {
    sa_tensor t{};
    t.data = data;
    t.dtype = SA_DTYPE_F32;
    t.device_type = SA_DEVICE_CUDA;
    t.rank = 3;
    t.shape[0] = b; t.shape[1] = h; t.shape[2] = s;
    t.strides[0] = h * s; t.strides[1] = s; t.strides[2] = 1;
    return t;
}

double allowed_pairs(const Shape& s) {
    if (!s.causal) return double(s.seqlen_q) * double(s.seqlen_k);
    double pairs = 0;
    for (int64_t i = 0; i < s.seqlen_q; ++i)
        pairs += double(std::clamp<int64_t>(i + s.seqlen_k - s.seqlen_q + 1, 0, s.seqlen_k));
    return pairs;
}

void* device_alloc(size_t bytes) {
    void* p = nullptr;
    sa_check(sa_cuda_malloc(0, bytes, &p), "sa_cuda_malloc");
    return p;
}

// Median time of a device-to-device copy, as bytes read plus bytes written per second.
double copy_bandwidth_gbps() {
    const size_t bytes = size_t(1) << 30;
    void* a = device_alloc(bytes);
    void* b = device_alloc(bytes);
    cu_check(cudaMemset(a, 1, bytes), "cudaMemset");
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    std::vector<float> times;
    for (int i = 0; i < 13; ++i) {
        cudaEventRecord(e0);
        cu_check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
        cudaEventRecord(e1);
        cu_check(cudaEventSynchronize(e1), "copy");
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (i >= 3) times.push_back(ms);
    }
    std::sort(times.begin(), times.end());
    sa_cuda_free(0, a);
    sa_cuda_free(0, b);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return 2.0 * double(bytes) / (times[times.size() / 2] * 1e-3) / 1e9;
}

Result run_shape(Shape s, double copy_gbps, uint64_t seed) {
    if (s.heads_kv == 0) s.heads_kv = s.heads;
    if (s.seqlen_k == 0) s.seqlen_k = s.seqlen_q;
    Result r;
    r.shape = s;
    const size_t esz = 2;
    const size_t q_elems = size_t(s.batch * s.seqlen_q * s.heads * s.dim);
    const size_t kv_elems = size_t(s.batch * s.seqlen_k * s.heads_kv * s.dim);
    void* q = device_alloc(q_elems * esz);
    void* k = device_alloc(kv_elems * esz);
    void* v = device_alloc(kv_elems * esz);
    void* out = device_alloc(q_elems * esz);
    float* lse = static_cast<float*>(device_alloc(size_t(s.batch * s.heads * s.seqlen_q) * 4));
    cu_check(bench_fill_random(q, q_elems, s.bf16, seed), "fill q");
    cu_check(bench_fill_random(k, kv_elems, s.bf16, seed + 1), "fill k");
    cu_check(bench_fill_random(v, kv_elems, s.bf16, seed + 2), "fill v");
    // Poison: 0xFF bytes are NaN in both 16-bit formats and in fp32.
    sa_check(sa_cuda_memset(out, 0xFF, q_elems * esz, nullptr), "poison out");
    sa_check(sa_cuda_memset(lse, 0xFF, size_t(s.batch * s.heads * s.seqlen_q) * 4, nullptr), "poison lse");

    sa_tensor tq = make_bshd(q, s.bf16, s.batch, s.seqlen_q, s.heads, s.dim, s.heads * s.dim, s.seqlen_q * s.heads * s.dim);
    sa_tensor tk = make_bshd(k, s.bf16, s.batch, s.seqlen_k, s.heads_kv, s.dim, s.heads_kv * s.dim, s.seqlen_k * s.heads_kv * s.dim);
    sa_tensor tv = make_bshd(v, s.bf16, s.batch, s.seqlen_k, s.heads_kv, s.dim, s.heads_kv * s.dim, s.seqlen_k * s.heads_kv * s.dim);
    sa_tensor to = make_bshd(out, s.bf16, s.batch, s.seqlen_q, s.heads, s.dim, s.heads * s.dim, s.seqlen_q * s.heads * s.dim);
    sa_tensor tl = make_lse(lse, s.batch, s.heads, s.seqlen_q);
    sa_attention_options opt;
    sa_attention_options_init(&opt);
    opt.causal = s.causal;
    opt.num_splits = s.splits;
    opt.kernel = g_kernel;
    sa_check(sa_dense_forward(&tq, &tk, &tv, &to, &tl, &opt), "sa_dense_forward (fast)");
    sa_check(sa_cuda_device_synchronize(0), "synchronize after fast");

    // Reference on the last R query rows (bottom-right causal keeps their key sets).
    const int64_t rows = std::min<int64_t>(s.seqlen_q, 256);
    const size_t ref_elems = size_t(s.batch * rows * s.heads * s.dim);
    void* ref = device_alloc(ref_elems * esz);
    float* ref_lse = static_cast<float*>(device_alloc(size_t(s.batch * s.heads * rows) * 4));
    sa_tensor rq = make_bshd(static_cast<char*>(q) + size_t((s.seqlen_q - rows) * s.heads * s.dim) * esz, s.bf16,
                             s.batch, rows, s.heads, s.dim, s.heads * s.dim, s.seqlen_q * s.heads * s.dim);
    sa_tensor ro = make_bshd(ref, s.bf16, s.batch, rows, s.heads, s.dim, s.heads * s.dim, rows * s.heads * s.dim);
    sa_tensor rl = make_lse(ref_lse, s.batch, s.heads, rows);
    sa_attention_options ropt = opt;
    ropt.kernel = SA_KERNEL_REFERENCE;
    sa_check(sa_dense_forward(&rq, &tk, &tv, &ro, &rl, &ropt), "sa_dense_forward (reference)");

    std::vector<uint16_t> h_out(q_elems), h_ref(ref_elems);
    std::vector<float> h_lse(size_t(s.batch * s.heads * s.seqlen_q)), h_ref_lse(size_t(s.batch * s.heads * rows));
    sa_check(sa_cuda_memcpy(h_out.data(), out, q_elems * esz, SA_COPY_DEVICE_TO_HOST, nullptr), "copy out");
    sa_check(sa_cuda_memcpy(h_ref.data(), ref, ref_elems * esz, SA_COPY_DEVICE_TO_HOST, nullptr), "copy ref");
    sa_check(sa_cuda_memcpy(h_lse.data(), lse, h_lse.size() * 4, SA_COPY_DEVICE_TO_HOST, nullptr), "copy lse");
    sa_check(sa_cuda_memcpy(h_ref_lse.data(), ref_lse, h_ref_lse.size() * 4, SA_COPY_DEVICE_TO_HOST, nullptr), "copy ref lse");
    r.written_all = true;
    for (uint16_t x : h_out)
        if (std::isnan(half_to_float(x, s.bf16))) { r.written_all = false; break; }
    for (float x : h_lse)
        if (std::isnan(x)) { r.written_all = false; break; }
    double diff2 = 0, ref2 = 0;
    for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t h = 0; h < s.heads; ++h) {
                const int64_t fi = s.seqlen_q - rows + i;
                for (int64_t d = 0; d < s.dim; ++d) {
                    const double f = half_to_float(h_out[size_t(((b * s.seqlen_q + fi) * s.heads + h) * s.dim + d)], s.bf16);
                    const double e = half_to_float(h_ref[size_t(((b * rows + i) * s.heads + h) * s.dim + d)], s.bf16);
                    const double dd = std::fabs(f - e);
                    r.max_abs = std::isnan(dd) ? INFINITY : std::max(r.max_abs, dd);
                    diff2 += (f - e) * (f - e);
                    ref2 += e * e;
                }
                const double lf = h_lse[size_t((b * s.heads + h) * s.seqlen_q + fi)];
                const double le = h_ref_lse[size_t((b * s.heads + h) * rows + i)];
                if (!(std::isinf(lf) && std::isinf(le) && lf == le)) {
                    const double dl = std::fabs(lf - le);
                    r.lse_max_abs = std::isnan(dl) ? INFINITY : std::max(r.lse_max_abs, dl);
                }
            }
    r.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
    r.ok = r.written_all && r.rel_l2 < (s.bf16 ? 2e-2 : 5e-3) && r.lse_max_abs < 1e-2;
    sa_cuda_free(0, ref);
    sa_cuda_free(0, ref_lse);

    // Timing: warm-up, then each repetition between its own pair of events.
    const double pairs = allowed_pairs(s);
    const double flops = 4.0 * double(s.batch * s.heads * s.dim) * pairs;
    int reps = s.reps;
    if (reps <= 0) reps = std::clamp(int(2e14 / std::max(flops, 1.0)), 20, 200);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    for (int i = 0; i < 5; ++i) sa_check(sa_dense_forward(&tq, &tk, &tv, &to, &tl, &opt), "warm-up");
    std::vector<float> times;
    for (int i = 0; i < reps; ++i) {
        cudaEventRecord(e0);
        sa_check(sa_dense_forward(&tq, &tk, &tv, &to, &tl, &opt), "timed call");
        cudaEventRecord(e1);
        cu_check(cudaEventSynchronize(e1), "timed call");
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        times.push_back(ms);
    }
    std::sort(times.begin(), times.end());
    r.ms = times[times.size() / 2];
    r.ms_min = times.front();
    r.ms_max = times.back();
    r.tflops = flops / (r.ms * 1e-3) / 1e12;
    const double bytes = double(2 * q_elems + 2 * kv_elems) * esz;
    r.gbps = bytes / (r.ms * 1e-3) / 1e9;
    if (copy_gbps > 0) r.floor_ratio = r.ms / (double(2 * kv_elems * esz) / (copy_gbps * 1e9) * 1e3);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    for (void* p : {q, k, v, out, static_cast<void*>(lse)}) sa_cuda_free(0, p);
    return r;
}

std::string shape_name(const Shape& s) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s B%lld H%lld/%lld Sq%lld Sk%lld D%lld %s%s", s.bf16 ? "bf16" : "fp16",
                  (long long)s.batch, (long long)s.heads, (long long)(s.heads_kv ? s.heads_kv : s.heads),
                  (long long)s.seqlen_q, (long long)(s.seqlen_k ? s.seqlen_k : s.seqlen_q), (long long)s.dim,
                  s.causal ? "causal" : "full", s.splits ? (" splits=" + std::to_string(s.splits)).c_str() : "");
    return buf;
}

std::vector<Shape> suite(const std::string& name) {
    std::vector<Shape> v;
    auto add = [&](int64_t b, int64_t h, int64_t hkv, int64_t sq, int64_t sk, int64_t d, int causal, bool bf16 = true, int splits = 0) {
        Shape s;
        s.batch = b; s.heads = h; s.heads_kv = hkv; s.seqlen_q = sq; s.seqlen_k = sk; s.dim = d;
        s.causal = causal; s.bf16 = bf16; s.splits = splits;
        v.push_back(s);
    };
    if (name == "dense") {
        for (int c = 0; c < 2; ++c) {
            add(2, 16, 16, 8192, 8192, 128, c);
            add(2, 32, 32, 8192, 8192, 64, c);
            add(1, 16, 16, 32768, 32768, 128, c);
        }
        add(2, 16, 16, 8192, 8192, 128, 0, false);
        add(4, 16, 16, 4096, 4096, 32, 1);
        add(4, 16, 16, 4096, 4096, 96, 1);
        add(2, 16, 16, 4096, 4096, 256, 0);
        add(2, 16, 16, 4096, 4096, 256, 1);
        add(2, 32, 8, 8192, 8192, 128, 1);
    } else if (name == "bar") {  // the six anchor shapes only
        for (int c = 0; c < 2; ++c) {
            add(2, 16, 16, 8192, 8192, 128, c);
            add(2, 32, 32, 8192, 8192, 64, c);
            add(1, 16, 16, 32768, 32768, 128, c);
        }
    } else if (name == "decode") {
        add(8, 32, 32, 1, 32768, 128, 0);
        add(8, 32, 32, 1, 32768, 128, 0, true, 1);
        add(8, 32, 32, 1, 32768, 128, 1);
        add(8, 32, 8, 1, 32768, 128, 0);
        add(1, 32, 8, 1, 131072, 128, 0);
        add(8, 32, 8, 64, 32768, 128, 1);
        add(2, 32, 32, 16, 65536, 64, 0, false);
        add(8, 32, 8, 4, 32768, 128, 1);
        add(8, 32, 8, 1, 32768, 64, 0);
        add(4, 28, 4, 1, 32768, 128, 0, false);
    } else if (name == "small") {  // sanitizer-sized: every head dim, ragged, split and not
        for (int d : {32, 64, 96, 128, 256}) add(1, 2, 1, 77, 203, d, 1);
        add(1, 2, 2, 3, 1000, 128, 0, true, 4);
        add(1, 2, 2, 130, 130, 64, 0, false);
        add(2, 6, 2, 5, 300, 128, 1);
        add(1, 8, 2, 1, 1000, 64, 0, true, 3);
    } else {
        die("unknown suite '" + name + "' (dense, bar, decode, small)");
    }
    for (auto& s : v) s.reps = name == "small" ? 3 : 0;
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    Shape one;
    std::string suite_name, json;
    bool has_shape = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value after " + a);
            return argv[++i];
        };
        if (a == "--batch") one.batch = std::stoll(next()), has_shape = true;
        else if (a == "--heads") one.heads = std::stoll(next()), has_shape = true;
        else if (a == "--heads-kv") one.heads_kv = std::stoll(next()), has_shape = true;
        else if (a == "--seqlen-q") one.seqlen_q = std::stoll(next()), has_shape = true;
        else if (a == "--seqlen-k") one.seqlen_k = std::stoll(next()), has_shape = true;
        else if (a == "--dim") one.dim = std::stoll(next()), has_shape = true;
        else if (a == "--causal") one.causal = std::stoi(next()), has_shape = true;
        else if (a == "--dtype") {
            const std::string t = next();
            if (t != "bf16" && t != "fp16") die("--dtype must be bf16 or fp16");
            one.bf16 = t == "bf16";
            has_shape = true;
        } else if (a == "--splits") one.splits = std::stoi(next()), has_shape = true;
        else if (a == "--reps") one.reps = std::stoi(next());
        else if (a == "--suite") suite_name = next();
        else if (a == "--json") json = next();
        else if (a == "--kernel") {
            const std::string k = next();
            if (k != "auto" && k != "portable") die("--kernel must be auto or portable");
            g_kernel = k == "auto" ? SA_KERNEL_AUTO : SA_KERNEL_PORTABLE;
        }
        else if (a == "--help" || a == "-h") {
            std::printf("usage: sparseattn_bench [--suite dense|bar|decode|small] [--batch B --heads H --heads-kv HKV "
                        "--seqlen-q SQ --seqlen-k SK --dim D --causal 0|1 --dtype bf16|fp16 --splits N] "
                        "[--reps N] [--json FILE] [--kernel auto|portable]\n");
            return 0;
        } else die("unknown argument " + a);
    }
    int32_t count = 0;
    sa_check(sa_cuda_device_count(&count), "sa_cuda_device_count");
    if (count < 1) die("no CUDA device");
    sa_device_info info{};
    sa_check(sa_cuda_device_info(0, &info), "sa_cuda_device_info");
    std::vector<Shape> shapes = suite_name.empty() || has_shape ? std::vector<Shape>{one} : suite(suite_name);
    const bool decode_like = suite_name == "decode" || (has_shape && one.seqlen_q <= 64);
    const double copy_gbps = decode_like ? copy_bandwidth_gbps() : 0.0;
    std::printf("device: %s (%d SMs)%s\n", info.name, info.multiprocessor_count,
                copy_gbps > 0 ? (", copy bandwidth " + std::to_string(int(copy_gbps)) + " GB/s (read+write)").c_str() : "");
    std::printf("%-52s %10s %9s %9s %8s %10s %10s %9s %s\n", "shape", "ms", "TFLOP/s", "GB/s", "floor x", "max_abs",
                "rel_l2", "lse_abs", "check");
    std::vector<Result> results;
    bool all_ok = true;
    uint64_t seed = 1234;
    for (const Shape& s : shapes) {
        Result r = run_shape(s, copy_gbps, seed += 17);
        all_ok = all_ok && r.ok;
        std::printf("%-52s %10.4f %9.1f %9.1f %8.2f %10.2e %10.2e %9.2e %s\n", shape_name(r.shape).c_str(), r.ms,
                    r.tflops, r.gbps, r.floor_ratio, r.max_abs, r.rel_l2, r.lse_max_abs,
                    r.ok ? "ok" : (r.written_all ? "FAIL" : "FAIL(unwritten)"));
        std::fflush(stdout);
        results.push_back(r);
    }
    if (!json.empty()) {
        FILE* f = std::fopen(json.c_str(), "w");
        if (!f) die("cannot write " + json);
        std::fprintf(f, "{\"device\": \"%s\", \"copy_gbps\": %.1f, \"kernel\": \"%s\", \"results\": [\n", info.name,
                     copy_gbps, g_kernel == SA_KERNEL_AUTO ? "auto" : "portable");
        for (size_t i = 0; i < results.size(); ++i) {
            const Result& r = results[i];
            const Shape& s = r.shape;
            std::fprintf(f,
                         "  {\"name\": \"%s\", \"dtype\": \"%s\", \"batch\": %lld, \"heads\": %lld, \"heads_kv\": %lld, "
                         "\"seqlen_q\": %lld, \"seqlen_k\": %lld, \"dim\": %lld, \"causal\": %d, \"splits\": %d, "
                         "\"ms\": %.5f, \"ms_min\": %.5f, \"ms_max\": %.5f, \"tflops\": %.2f, \"gbps\": %.1f, \"floor_ratio\": %.3f, "
                         "\"max_abs\": %.3e, \"rel_l2\": %.3e, \"lse_max_abs\": %.3e, \"ok\": %s}%s\n",
                         shape_name(s).c_str(), s.bf16 ? "bf16" : "fp16", (long long)s.batch, (long long)s.heads,
                         (long long)s.heads_kv, (long long)s.seqlen_q, (long long)s.seqlen_k, (long long)s.dim,
                         s.causal, s.splits, r.ms, r.ms_min, r.ms_max, r.tflops, r.gbps, r.floor_ratio, r.max_abs, r.rel_l2,
                         r.lse_max_abs, r.ok ? "true" : "false", i + 1 < results.size() ? "," : "");
        }
        std::fprintf(f, "]}\n");
        std::fclose(f);
    }
    return all_ok ? 0 : 1;
}
