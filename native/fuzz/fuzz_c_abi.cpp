// libFuzzer harness over every C ABI entry point on the CPU backend. The input picks the entry
// point, a small problem, each descriptor (mostly plausible, sometimes broken one field at a
// time), where each buffer lies and what the index tensors hold. Every buffer lies in one heap
// arena, so aliasing between arguments is exercised, and any access outside the arena is a
// library bug that AddressSanitizer reports.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "sparseattn/sparseattn.h"

namespace {

constexpr size_t kArenaBytes = size_t{1} << 18;

// Reads the input front to back; past its end every read is 0 (the plain, valid choice).
class Input {
public:
    Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    uint32_t u32() {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(byte()) << (8 * i);
        return v;
    }
    int64_t i64() { return static_cast<int64_t>(static_cast<uint64_t>(u32()) << 32 | u32()); }
    // 1..max.
    int64_t small(int64_t max) { return 1 + byte() % max; }
    // True for one byte value in n; false once the input is exhausted (the plain choice).
    bool one_in(int n) { return pos_ < size_ && byte() % n == n - 1; }
    // An adversarial integer: edge values or raw bits.
    int64_t wild() {
        switch (byte() % 8) {
            case 0: return 0;
            case 1: return -1;
            case 2: return INT32_MAX;
            case 3: return INT64_MAX;
            case 4: return INT64_MIN;
            case 5: return static_cast<int64_t>(1) << (byte() % 63);
            case 6: return static_cast<int32_t>(u32());
            default: return i64();
        }
    }

private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

// SPARSEATTN_FUZZ_TRACE=1 prints the status of each attention call (to check that seeds reach
// the backends rather than stop in validation).
void trace(sa_status status) {
    static const bool enabled = std::getenv("SPARSEATTN_FUZZ_TRACE") != nullptr;
    if (enabled) std::fprintf(stderr, "%s%s%s\n", sa_status_string(status), status ? ": " : "",
                              status ? sa_last_error() : "");
}

int64_t dtype_bytes(int32_t dtype) { return dtype == SA_DTYPE_F32 || dtype == SA_DTYPE_I32 ? 4 : dtype == SA_DTYPE_BOOL ? 1 : 2; }

// The arena and the descriptors placed in it. Descriptors whose views are well-formed but
// reach past the arena are moved to its start or, failing that, the call is skipped: the
// library cannot know the size of a caller's buffer, so such a call is the caller's bug.
class Call {
public:
    explicit Call(Input& in) : in_(in), arena_(new unsigned char[kArenaBytes]) {
        // Floats in [-2, 2] from a seeded generator; index tensors are written over them.
        uint32_t x = in_.u32() | 1;
        for (size_t i = 0; i + 4 <= kArenaBytes; i += 4) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            const float f = static_cast<float>(x % 4001) / 1000.0f - 2.0f;
            std::memcpy(arena_.get() + i, &f, 4);
        }
    }

    bool skip() const { return skip_; }
    unsigned char* arena() { return arena_.get(); }

    // A descriptor of `shape` (row-major unless the input says otherwise) placed in the arena.
    sa_tensor tensor(int32_t dtype, std::initializer_list<int64_t> shape, bool broadcast = false) {
        sa_tensor t{};
        t.dtype = dtype;
        t.device_type = SA_DEVICE_CPU;
        t.rank = static_cast<int32_t>(shape.size());
        int32_t i = 0;
        for (int64_t s : shape) t.shape[i++] = s;
        const uint8_t layout = in_.byte();
        int64_t stride = 1;
        for (int32_t d = t.rank - 1; d >= 0; --d) {
            t.strides[d] = stride;
            stride *= t.shape[d] + ((layout & 1) && d < t.rank - 1 ? 1 : 0);  // padded rows
        }
        if ((layout & 2) && t.rank >= 3) std::swap(t.strides[t.rank - 2], t.strides[t.rank - 3]);
        if (broadcast && (layout & 4)) t.strides[0] = 0;
        if (broadcast && (layout & 8) && t.rank > 1) t.strides[1] = 0;
        if (in_.one_in(8)) mutate(t);
        place(t);
        return t;
    }

    // Writes `count` int32 values from `value(i)` into the elements of an index view.
    template <typename F>
    void fill_ints(const sa_tensor& t, F value) {
        if (!in_arena(t) || t.dtype != SA_DTYPE_I32) return;
        int64_t n = 1;
        for (int32_t d = 0; d < t.rank; ++d) n *= t.shape[d];
        for (int64_t e = 0; e < n && e < (int64_t{1} << 16); ++e) {
            int64_t offset = 0, rest = e;
            for (int32_t d = t.rank - 1; d >= 0; --d) {
                offset += (rest % t.shape[d]) * t.strides[d];
                rest /= t.shape[d];
            }
            const int32_t v = static_cast<int32_t>(value(e));
            std::memcpy(static_cast<unsigned char*>(t.data) + offset * 4, &v, 4);
        }
    }

    Input& in() { return in_; }

private:
    // Breaks one field of a descriptor.
    void mutate(sa_tensor& t) {
        const int32_t field = in_.byte() % 6;
        const int32_t d = in_.byte() % SA_MAX_RANK;
        switch (field) {
            case 0: t.rank = static_cast<int32_t>(in_.wild()); break;
            case 1: t.dtype = static_cast<int32_t>(in_.wild()); break;
            case 2: t.device_type = static_cast<int32_t>(in_.wild()); break;
            case 3: t.device_id = static_cast<int32_t>(in_.wild()); break;
            case 4: t.shape[d] = in_.wild(); break;
            default: t.strides[d] = in_.wild(); break;
        }
    }

    // Largest byte offset + 1 of a well-formed view, or -1 when the library must refuse it
    // anyway (bad rank, dtype, shape or stride, or an extent that overflows).
    static int64_t extent(const sa_tensor& t) {
        if (t.rank < 1 || t.rank > SA_MAX_RANK || t.dtype < SA_DTYPE_F32 || t.dtype > SA_DTYPE_BOOL)
            return -1;
        int64_t last = 0;
        for (int32_t d = 0; d < t.rank; ++d) {
            if (t.shape[d] < 1 || t.strides[d] < 0) return -1;
            int64_t term;
            if (__builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &term) ||
                __builtin_add_overflow(last, term, &last))
                return -1;
        }
        int64_t bytes;
        if (last == INT64_MAX || __builtin_mul_overflow(last + 1, dtype_bytes(t.dtype), &bytes))
            return -1;
        return bytes;
    }

    // Buffers follow each other unless the input asks for an arbitrary offset (which may
    // overlap earlier buffers: the library must refuse those calls).
    void place(sa_tensor& t) {
        if (in_.one_in(32)) return;  // data NULL: absent or refused
        const int64_t bytes = extent(t);
        size_t offset = next_;
        if (in_.one_in(4)) offset = (in_.u32() % kArenaBytes) & ~size_t{3};
        if (bytes >= 0 && offset + static_cast<uint64_t>(bytes) > kArenaBytes) offset = 0;
        if (bytes > static_cast<int64_t>(kArenaBytes)) skip_ = true;
        offset = std::min(offset, kArenaBytes - 4);
        if (bytes >= 0) next_ = std::max(next_, (offset + static_cast<size_t>(bytes) + 63) & ~size_t{63});
        t.data = arena_.get() + offset;
    }

    bool in_arena(const sa_tensor& t) const {
        const int64_t bytes = extent(t);
        const auto* p = static_cast<const unsigned char*>(t.data);
        return p != nullptr && bytes >= 0 && p >= arena_.get() &&
               static_cast<size_t>(p - arena_.get()) + static_cast<uint64_t>(bytes) <= kArenaBytes;
    }

    Input& in_;
    std::unique_ptr<unsigned char[]> arena_;
    bool skip_ = false;
    size_t next_ = 0;
};

struct Problem {
    int64_t B, Sq, Sk, Hq, Hkv, D;
    int32_t dtype;
};

Problem problem(Input& in) {
    Problem p;
    p.B = in.small(2);
    p.Sq = in.small(140);
    p.Sk = in.small(140);
    p.Hkv = in.small(2);
    p.Hq = p.Hkv * in.small(2);
    p.D = in.small(8);
    const int32_t dtypes[3] = {SA_DTYPE_F32, SA_DTYPE_F16, SA_DTYPE_BF16};
    p.dtype = dtypes[in.byte() % 3];
    return p;
}

sa_attention_options options(Input& in) {
    sa_attention_options o;
    sa_attention_options_init(&o);
    o.causal = in.one_in(2) ? 1 : 0;
    o.num_threads = static_cast<int32_t>(in.byte() % 3);
    if (in.one_in(16)) o.scale = static_cast<float>(in.wild());
    if (in.one_in(16)) o.kernel = static_cast<int32_t>(in.wild());
    if (in.one_in(16)) o.num_splits = static_cast<int32_t>(in.wild());
    return o;
}

// Fills block lists with mostly valid contents: counts in 0..C, indices among the key blocks.
void fill_lists(Call& c, const sa_tensor& num, const sa_tensor& idx, int64_t nk) {
    Input& in = c.in();
    const bool wild = in.one_in(8);
    // Mutated descriptors may hold any shape: the harness's own arithmetic stays in range.
    const int64_t capacity = idx.rank == 4 ? std::clamp<int64_t>(idx.shape[3], 1, 1 << 16) : 1;
    c.fill_ints(num, [&](int64_t) { return wild ? in.wild() : static_cast<int64_t>(in.byte() % (capacity + 1)); });
    const int64_t shift = in.byte();
    c.fill_ints(idx, [&](int64_t e) { return wild ? in.wild() : (e % capacity + shift) % std::max<int64_t>(nk, 1); });
}

// A permutation of 0..n-1 (a rotation, maybe reversed; sometimes broken) in every row.
void fill_permutation(Call& c, const sa_tensor& perm, int64_t n) {
    Input& in = c.in();
    const int64_t rotate = in.byte() % n;
    const bool reverse = in.one_in(2), wild = in.one_in(8);
    c.fill_ints(perm, [&](int64_t e) {
        if (wild) return in.wild();
        const int64_t i = (e % n + rotate) % n;
        return reverse ? n - 1 - i : i;
    });
}

void dense(Input& in, bool with_lse) {
    Call c(in);
    const Problem p = problem(in);
    sa_tensor q = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor k = c.tensor(p.dtype, {p.B, p.Sk, p.Hkv, p.D});
    sa_tensor v = c.tensor(p.dtype, {p.B, p.Sk, p.Hkv, p.D});
    sa_tensor out = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor lse = c.tensor(SA_DTYPE_F32, {p.B, p.Hq, p.Sq});
    sa_attention_options o = options(in);
    if (c.skip()) return;
    trace(sa_dense_forward(&q, &k, &v, &out, with_lse ? &lse : nullptr, &o));
    size_t bytes = 0;
    sa_dense_workspace_size(&q, &k, &o, &bytes);
}

void varlen(Input& in) {
    Call c(in);
    const Problem p = problem(in);
    const int64_t n = in.small(3);
    const int64_t tq = p.Sq, tk = p.Sk;
    sa_tensor q = c.tensor(p.dtype, {tq, p.Hq, p.D});
    sa_tensor k = c.tensor(p.dtype, {tk, p.Hkv, p.D});
    sa_tensor v = c.tensor(p.dtype, {tk, p.Hkv, p.D});
    sa_tensor out = c.tensor(p.dtype, {tq, p.Hq, p.D});
    sa_tensor lse = c.tensor(SA_DTYPE_F32, {p.Hq, tq});
    sa_tensor cq = c.tensor(SA_DTYPE_I32, {n + 1});
    sa_tensor ck = c.tensor(SA_DTYPE_I32, {n + 1});
    const bool wild = in.one_in(8);
    c.fill_ints(cq, [&](int64_t e) { return wild ? in.wild() : e == n ? tq : tq * e / n; });
    c.fill_ints(ck, [&](int64_t e) { return wild ? in.wild() : e == n ? tk : tk * e / n; });
    sa_attention_options o = options(in);
    const int32_t max_q = in.one_in(4) ? static_cast<int32_t>(in.wild()) : static_cast<int32_t>(tq);
    const int32_t max_k = in.one_in(4) ? static_cast<int32_t>(in.wild()) : static_cast<int32_t>(tk);
    if (c.skip()) return;
    trace(sa_dense_forward_varlen(&q, &k, &v, &out, in.one_in(2) ? &lse : nullptr, &cq, &ck, max_q, max_k,
                            &o));
}

void merge(Input& in) {
    Call c(in);
    const Problem p = problem(in);
    sa_tensor o1 = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor o2 = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor l1 = c.tensor(SA_DTYPE_F32, {p.B, p.Hq, p.Sq});
    sa_tensor l2 = c.tensor(SA_DTYPE_F32, {p.B, p.Hq, p.Sq});
    sa_tensor out = in.one_in(4) ? o1 : c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor lo = in.one_in(4) ? l1 : c.tensor(SA_DTYPE_F32, {p.B, p.Hq, p.Sq});
    if (c.skip()) return;
    trace(sa_lse_merge(&o1, &l1, &o2, &l2, &out, in.one_in(3) ? nullptr : &lo, nullptr));
}

sa_neighborhood_params neighborhood_params(Input& in, int64_t* tokens) {
    sa_neighborhood_params g;
    sa_neighborhood_params_init(&g, 1 + in.byte() % 3);
    *tokens = 1;
    for (int32_t d = 0; d < g.spatial_rank; ++d) {
        g.grid[d] = static_cast<int32_t>(in.small(12));
        g.dilation[d] = static_cast<int32_t>(in.small(3));
        g.kernel[d] = static_cast<int32_t>(in.small(std::max(1, g.grid[d] / g.dilation[d])));
        g.stride[d] = static_cast<int32_t>(in.small(g.kernel[d]));
        g.causal[d] = in.byte() % 2;
        *tokens *= g.grid[d];
    }
    if (in.one_in(8)) {
        int32_t* fields[5] = {g.grid, g.kernel, g.dilation, g.stride, g.causal};
        fields[in.byte() % 5][in.byte() % 3] = static_cast<int32_t>(in.wild());
    }
    if (in.one_in(16)) g.spatial_rank = static_cast<int32_t>(in.wild());
    return g;
}

void neighborhood(Input& in) {
    Call c(in);
    Problem p = problem(in);
    int64_t tokens = 1;
    const sa_neighborhood_params g = neighborhood_params(in, &tokens);
    p.Sq = p.Sk = tokens;
    sa_tensor q = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor k = c.tensor(p.dtype, {p.B, p.Sk, p.Hkv, p.D});
    sa_tensor v = c.tensor(p.dtype, {p.B, p.Sk, p.Hkv, p.D});
    sa_tensor out = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor lse = c.tensor(SA_DTYPE_F32, {p.B, p.Hq, p.Sq});
    sa_attention_options o = options(in);
    o.causal = in.one_in(16) ? 1 : 0;
    int64_t pairs = 0;
    sa_neighborhood_pair_count(&g, &pairs);
    if (c.skip()) return;
    trace(sa_neighborhood_forward(&q, &k, &v, &out, in.one_in(2) ? &lse : nullptr, &g, &o));
}

void scalar_helpers(Input& in) {
    int32_t start = 0, end = 0;
    sa_neighborhood_window(static_cast<int32_t>(in.wild()), static_cast<int32_t>(in.wild()),
                           static_cast<int32_t>(in.wild()), static_cast<int32_t>(in.wild()),
                           static_cast<int32_t>(in.wild()), &start, &end);
    int64_t tokens = 0, pairs = 0;
    sa_neighborhood_params g = neighborhood_params(in, &tokens);
    for (int32_t d = 0; d < 3; ++d)
        if (in.one_in(2)) g.grid[d] = static_cast<int32_t>(in.wild());
    sa_neighborhood_pair_count(&g, &pairs);
    int32_t covered = 0;
    sa_fast_path_covered(static_cast<int32_t>(in.wild()), static_cast<int32_t>(in.wild()),
                         static_cast<int32_t>(in.wild()), static_cast<int32_t>(in.wild()), &covered);
    sa_backend_built(static_cast<int32_t>(in.wild()));
    sa_status_string(static_cast<int32_t>(in.wild()));
    sa_device_info info;
    sa_cuda_device_info(static_cast<int32_t>(in.wild()), &info);
    int32_t count = 0;
    sa_cuda_device_count(&count);
    void* ptr = nullptr;
    sa_cuda_malloc(static_cast<int32_t>(in.wild()), static_cast<size_t>(in.wild()), &ptr);
    sa_cuda_memcpy(&count, &start, 4, static_cast<int32_t>(in.wild()), nullptr);
}

void block_sparse(Input& in) {
    Call c(in);
    const Problem p = problem(in);
    const int32_t block_q = in.one_in(2) ? 64 : 128, block_k = in.one_in(2) ? 64 : 128;
    const int64_t nq = (p.Sq + block_q - 1) / block_q, nk = (p.Sk + block_k - 1) / block_k;
    const int64_t cap = in.small(4);
    sa_tensor q = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor k = c.tensor(p.dtype, {p.B, p.Sk, p.Hkv, p.D});
    sa_tensor v = c.tensor(p.dtype, {p.B, p.Sk, p.Hkv, p.D});
    sa_tensor out = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor lse = c.tensor(SA_DTYPE_F32, {p.B, p.Hq, p.Sq});
    sa_block_sparse_params bs;
    std::memset(&bs, 0, sizeof bs);
    bs.block_q = in.one_in(16) ? static_cast<int32_t>(in.wild()) : block_q;
    bs.block_k = in.one_in(16) ? static_cast<int32_t>(in.wild()) : block_k;
    bs.kv_num_blocks = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, nq}, true);
    bs.kv_indices = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, nq, cap}, true);
    fill_lists(c, bs.kv_num_blocks, bs.kv_indices, nk);
    if (in.one_in(2)) {
        bs.full_kv_num_blocks = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, nq}, true);
        bs.full_kv_indices = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, nq, cap}, true);
        fill_lists(c, bs.full_kv_num_blocks, bs.full_kv_indices, nk);
    }
    if (in.one_in(2)) {
        bs.key_perm = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, p.Sk}, true);
        fill_permutation(c, bs.key_perm, p.Sk);
    }
    if (in.one_in(2)) {
        bs.query_perm = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, p.Sq}, true);
        fill_permutation(c, bs.query_perm, p.Sq);
    }
    sa_attention_options o = options(in);
    if (c.skip()) return;
    trace(sa_block_sparse_forward(&q, &k, &v, &out, in.one_in(2) ? &lse : nullptr, &bs, &o));
    int64_t pairs = 0;
    const int64_t s_q = in.one_in(4) ? in.wild() : p.Sq, s_k = in.one_in(4) ? in.wild() : p.Sk;
    sa_block_sparse_pair_count(s_q, s_k, bs.block_q, bs.block_k, o.causal, &bs.kv_num_blocks,
                               &bs.kv_indices, &pairs);
}

void mask_conversions(Input& in) {
    Call c(in);
    const int64_t B = in.small(2), H = in.small(2), nq = in.small(6), nk = in.small(6);
    const int64_t cap = in.small(6);
    sa_tensor mask = c.tensor(SA_DTYPE_BOOL, {B, H, nq, nk});
    sa_tensor num = c.tensor(SA_DTYPE_I32, {B, H, nq});
    sa_tensor idx = c.tensor(SA_DTYPE_I32, {B, H, nq, in.one_in(2) ? nk : cap});
    if (c.skip()) return;
    if (in.one_in(2)) {
        trace(sa_block_mask_to_lists(&mask, &num, &idx, nullptr));
    } else {
        fill_lists(c, num, idx, nk);
        trace(sa_block_lists_to_mask(&num, &idx, &mask, nullptr));
    }
}

void pbs(Input& in) {
    Call c(in);
    Problem p = problem(in);
    p.Sk = p.Sq = p.Sq * in.small(3);
    sa_pbs_options o;
    sa_pbs_options_init(&o);
    o.block = in.one_in(2) ? 64 : 128;
    o.segment = o.block * static_cast<int32_t>(in.small(3));
    if (in.one_in(8)) o.tau = static_cast<float>(in.byte()) / 128.0f;
    if (in.one_in(16)) o.segment = static_cast<int32_t>(in.wild());
    const int64_t n = (p.Sq + o.block - 1) / o.block;
    sa_tensor q = c.tensor(p.dtype, {p.B, p.Sq, p.Hq, p.D});
    sa_tensor k = c.tensor(p.dtype, {p.B, p.Sk, p.Hkv, p.D});
    sa_tensor perm = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, p.Sq});
    sa_tensor num = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, n});
    sa_tensor idx = c.tensor(SA_DTYPE_I32, {p.B, p.Hq, n, n});
    if (c.skip()) return;
    trace(sa_pbs_plan(&q, &k, &o, &perm, &num, &idx));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(data, size);
    switch (in.byte() % 10) {
        case 0: dense(in, false); break;
        case 1: dense(in, true); break;
        case 2: varlen(in); break;
        case 3: merge(in); break;
        case 4: neighborhood(in); break;
        case 5: scalar_helpers(in); break;
        case 6: block_sparse(in); break;
        case 7: mask_conversions(in); break;
        case 8: pbs(in); break;
        default: {
            // Null descriptors and parameter structs everywhere.
            sa_dense_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
            sa_block_sparse_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
            sa_neighborhood_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
            sa_pbs_plan(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
            sa_neighborhood_pair_count(nullptr, nullptr);
            break;
        }
    }
    // Every failed call leaves a message; reading it must be safe.
    (void)std::strlen(sa_last_error());
    return 0;
}
