// Validation of every ABI call. Checks run in a fixed order (pointers, ranks, devices, dtypes,
// shapes, options, memory overlap) and build messages only on failure, so the success path
// allocates nothing.
#include "validate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "checked_math.h"
#include "errors.h"

namespace sa {
namespace {

long long ll(int64_t x) { return static_cast<long long>(x); }

const char* dtype_name(int32_t dtype) {
    switch (dtype) {
        case SA_DTYPE_F32: return "f32";
        case SA_DTYPE_F16: return "f16";
        case SA_DTYPE_BF16: return "bf16";
        case SA_DTYPE_I32: return "i32";
        case SA_DTYPE_BOOL: return "bool";
    }
    return "unknown";
}

int64_t dtype_size(int32_t dtype) {
    switch (dtype) {
        case SA_DTYPE_F32: return 4;
        case SA_DTYPE_F16: return 2;
        case SA_DTYPE_BF16: return 2;
        case SA_DTYPE_I32: return 4;
        case SA_DTYPE_BOOL: return 1;
    }
    return 1;
}

std::string device_text(int32_t device_type, int32_t device_id) {
    if (device_type == SA_DEVICE_CPU) return "cpu";
    return "cuda:" + std::to_string(device_id);
}

std::string shape_text(const sa_tensor* t) {
    std::string s = "[";
    for (int32_t i = 0; i < t->rank && i < SA_MAX_RANK; ++i) {
        if (i) s += ", ";
        s += std::to_string(ll(t->shape[i]));
    }
    return s + "]";
}

std::string dims_text(std::initializer_list<int64_t> dims) {
    std::string s = "[";
    bool first = true;
    for (int64_t d : dims) {
        if (!first) s += ", ";
        first = false;
        s += std::to_string(ll(d));
    }
    return s + "]";
}

// A checked tensor: its descriptor and the byte range it may touch.
struct View {
    const sa_tensor* t = nullptr;
    const char* name = "";
    uintptr_t begin = 0;
    uintptr_t end = 0;
};

bool present(const sa_tensor* t) { return t != nullptr && t->data != nullptr; }

// Structural checks shared by every tensor. broadcast_outer allows stride 0 on dims 0 and 1
// (index tensors broadcast over B and H).
View check_tensor(const sa_tensor* t, const char* name, int32_t rank, const char* layout,
                  bool broadcast_outer = false) {
    if (t == nullptr) fail_invalid("%s: tensor descriptor is NULL", name);
    if (t->data == nullptr) fail_invalid("%s: data pointer is NULL", name);
    if (t->rank != rank)
        fail_invalid("%s: rank must be %d (%s), got %d", name, rank, layout, t->rank);
    if (t->dtype < SA_DTYPE_F32 || t->dtype > SA_DTYPE_BOOL)
        fail_invalid("%s: dtype %d is not a valid sa_dtype", name, t->dtype);
    if (t->device_type != SA_DEVICE_CPU && t->device_type != SA_DEVICE_CUDA)
        fail_invalid("%s: device_type %d is not a valid sa_device_type", name, t->device_type);
    if (t->device_type == SA_DEVICE_CPU && t->device_id != 0)
        fail_invalid("%s: device_id must be 0 for a CPU tensor, got %d", name, t->device_id);
    if (t->device_type == SA_DEVICE_CUDA && t->device_id < 0)
        fail_invalid("%s: device_id must be >= 0, got %d", name, t->device_id);
    for (int32_t i = 0; i < rank; ++i)
        if (t->shape[i] < 1)
            fail_invalid("%s: shape[%d] must be >= 1, got %lld", name, i, ll(t->shape[i]));
    if (t->strides[rank - 1] != 1)
        fail_invalid("%s: innermost stride (strides[%d]) must be 1, got %lld", name, rank - 1,
                     ll(t->strides[rank - 1]));
    int64_t max_offset = 0;
    int64_t count = 1;
    for (int32_t i = 0; i < rank; ++i) {
        const int64_t stride = t->strides[i];
        if (stride < 0)
            fail_invalid("%s: strides[%d] must not be negative, got %lld", name, i, ll(stride));
        if (stride == 0 && t->shape[i] > 1 && !(broadcast_outer && i < 2))
            fail_invalid("%s: strides[%d] is 0 (broadcast), which only index tensors allow over "
                         "B and H", name, i);
        int64_t term = 0;
        if (sa::mul_overflows(t->shape[i] - 1, stride, &term) ||
            sa::add_overflows(max_offset, term, &max_offset) ||
            sa::mul_overflows(count, t->shape[i], &count))
            fail_invalid("%s: extents overflow int64 (shape[%d] = %lld, strides[%d] = %lld)",
                         name, i, ll(t->shape[i]), i, ll(stride));
    }
    if (max_offset == INT64_MAX)
        fail_invalid("%s: extents overflow int64 (largest offset %lld)", name, ll(max_offset));
    int64_t bytes = 0;
    uintptr_t end = 0;
    if (sa::mul_overflows(max_offset + 1, dtype_size(t->dtype), &bytes) ||
        sa::add_overflows(reinterpret_cast<uintptr_t>(t->data), static_cast<uintptr_t>(bytes),
                               &end))
        fail_invalid("%s: extents overflow the address space (%lld elements)", name,
                     ll(max_offset + 1));
    View view;
    view.t = t;
    view.name = name;
    view.begin = reinterpret_cast<uintptr_t>(t->data);
    view.end = end;
    return view;
}

void require_dtype(const View& v, int32_t dtype) {
    if (v.t->dtype != dtype)
        fail_invalid("%s: dtype must be %s, got %s", v.name, dtype_name(dtype),
                     dtype_name(v.t->dtype));
}

void require_same_dtype(const View& v, const View& ref) {
    if (v.t->dtype != ref.t->dtype)
        fail_invalid("%s: dtype %s differs from %s's dtype %s", v.name, dtype_name(v.t->dtype),
                     ref.name, dtype_name(ref.t->dtype));
}

// Floating-point tensors the backend of the tensor's device can read and write.
void require_float_dtype(const View& v) {
    const int32_t d = v.t->dtype;
    if (v.t->device_type == SA_DEVICE_CUDA) {
        if (d != SA_DTYPE_F16 && d != SA_DTYPE_BF16)
            fail_invalid("%s: dtype %s is not supported on the CUDA backend (f16 or bf16)",
                         v.name, dtype_name(d));
    } else if (d != SA_DTYPE_F32 && d != SA_DTYPE_F16 && d != SA_DTYPE_BF16) {
        fail_invalid("%s: dtype %s is not supported on the CPU backend (f32, f16 or bf16)",
                     v.name, dtype_name(d));
    }
}

// The reference tensor's device must exist in this build.
void require_device_available(const View& v) {
    if (v.t->device_type != SA_DEVICE_CUDA) return;
#if defined(SPARSEATTN_WITH_CUDA)
    cuda::check_device(v.t->device_id);
#else
    fail_status(SA_ERROR_UNSUPPORTED, "%s: CUDA backend not built (tensor on cuda:%d)", v.name,
                v.t->device_id);
#endif
}

void require_same_device(const View& v, const View& ref) {
    if (v.t->device_type != ref.t->device_type || v.t->device_id != ref.t->device_id)
        fail_invalid("%s: device %s differs from %s's device %s", v.name,
                     device_text(v.t->device_type, v.t->device_id).c_str(), ref.name,
                     device_text(ref.t->device_type, ref.t->device_id).c_str());
}

bool overlaps(const View& a, const View& b) { return a.begin < b.end && b.begin < a.end; }

void require_disjoint(const View& out, const View& other) {
    if (overlaps(out, other)) fail_invalid("%s: memory overlaps %s", out.name, other.name);
}

// The buffers one attention call reads and writes. Backends read every input (index tensors
// included) while they write rows of the outputs, so each written buffer must be disjoint from
// every other buffer of the call.
struct CallBuffers {
    View reads[10];
    int32_t num_reads = 0;
    View writes[3];
    int32_t num_writes = 0;
    void read(const View& v) { reads[num_reads++] = v; }
    void write(const View& v) { writes[num_writes++] = v; }
};

void require_disjoint_buffers(const CallBuffers& b) {
    for (int32_t w = 0; w < b.num_writes; ++w) {
        for (int32_t r = 0; r < b.num_reads; ++r) require_disjoint(b.writes[w], b.reads[r]);
        for (int32_t e = 0; e < w; ++e) require_disjoint(b.writes[w], b.writes[e]);
    }
}

// options->workspace is scratch the CUDA backend writes: one more output, as a byte range.
void add_workspace(CallBuffers& b, const sa_attention_options* options) {
    if (options == nullptr || options->workspace == nullptr || options->workspace_bytes == 0)
        return;
    View w;
    w.name = "options->workspace";
    w.begin = reinterpret_cast<uintptr_t>(options->workspace);
    if (sa::add_overflows(w.begin, static_cast<uintptr_t>(options->workspace_bytes), &w.end))
        fail_invalid("options->workspace: options->workspace_bytes = %zu overflows the address "
                     "space", options->workspace_bytes);
    b.write(w);
}

// Exactly the same memory, layout and dtype (allowed in-place aliasing).
bool same_view(const View& a, const View& b) {
    if (a.t->data != b.t->data || a.t->dtype != b.t->dtype || a.t->rank != b.t->rank)
        return false;
    for (int32_t i = 0; i < a.t->rank; ++i)
        if (a.t->shape[i] != b.t->shape[i] || a.t->strides[i] != b.t->strides[i]) return false;
    return true;
}

// An output's strides must map distinct indices to distinct elements: sorted by stride, each
// stride must step past everything the smaller dims span.
void require_no_self_alias(const View& v) {
    const sa_tensor* t = v.t;
    int32_t order[SA_MAX_RANK];
    int32_t n = 0;
    for (int32_t i = 0; i < t->rank; ++i)
        if (t->shape[i] > 1) order[n++] = i;
    for (int32_t i = 1; i < n; ++i)
        for (int32_t j = i; j > 0 && t->strides[order[j]] < t->strides[order[j - 1]]; --j)
            std::swap(order[j], order[j - 1]);
    int64_t reach = 0;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t d = order[i];
        if (t->strides[d] <= reach)
            fail_invalid("%s: strides alias distinct elements (strides[%d] = %lld within the "
                         "span %lld of smaller dims)", v.name, d, ll(t->strides[d]), ll(reach));
        reach += (t->shape[d] - 1) * t->strides[d];
    }
}

void require_contiguous(const View& v) {
    int64_t expected = 1;
    for (int32_t i = v.t->rank - 1; i >= 0; --i) {
        if (v.t->shape[i] > 1 && v.t->strides[i] != expected)
            fail_invalid("%s: must be contiguous (strides[%d] = %lld, expected %lld)", v.name, i,
                         ll(v.t->strides[i]), ll(expected));
        expected *= v.t->shape[i];
    }
}

void require_shape(const View& v, std::initializer_list<int64_t> dims, const char* layout) {
    int32_t i = 0;
    for (int64_t d : dims) {
        if (v.t->shape[i] != d)
            fail_invalid("%s: shape must be %s = %s, got %s", v.name, layout,
                         dims_text(dims).c_str(), shape_text(v.t).c_str());
        ++i;
    }
}

void check_head_dim(const View& q, int64_t head_dim) {
    if (q.t->device_type == SA_DEVICE_CUDA) {
        if (head_dim % 8 != 0 || head_dim > 256)
            fail_invalid("%s: unsupported head dim D = %lld (the CUDA backend supports multiples "
                         "of 8 up to 256)", q.name, ll(head_dim));
    } else if (head_dim > 512) {
        fail_invalid("%s: unsupported head dim D = %lld (the CPU backend supports 1..512)",
                     q.name, ll(head_dim));
    }
}

float resolve_scale(float scale, int64_t head_dim, const char* name) {
    if (!std::isfinite(scale) || scale < 0.0f)
        fail_invalid("%s must be finite and > 0 (0 selects 1/sqrt(D)), got %g", name,
                     static_cast<double>(scale));
    if (scale == 0.0f) return static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
    return scale;
}

sa_attention_options default_options() {
    sa_attention_options o;
    sa_attention_options_init(&o);
    return o;
}

void apply_options(AttentionProblem& p, const sa_attention_options* options) {
    const sa_attention_options o = options ? *options : default_options();
    p.scale = resolve_scale(o.scale, p.head_dim, "options->scale");
    if (o.causal != 0 && o.causal != 1)
        fail_invalid("options->causal must be 0 or 1, got %d", o.causal);
    if (o.kernel != SA_KERNEL_AUTO && o.kernel != SA_KERNEL_REFERENCE && o.kernel != SA_KERNEL_PORTABLE)
        fail_invalid("options->kernel must be SA_KERNEL_AUTO (0), SA_KERNEL_REFERENCE (1) or "
                     "SA_KERNEL_PORTABLE (2), got %d", o.kernel);
    if (o.num_splits < 0)
        fail_invalid("options->num_splits must be >= 0, got %d", o.num_splits);
    if (o.num_threads < 0)
        fail_invalid("options->num_threads must be >= 0, got %d", o.num_threads);
    if (o.workspace == nullptr && o.workspace_bytes != 0)
        fail_invalid("options->workspace is NULL but options->workspace_bytes is %zu",
                     o.workspace_bytes);
    p.causal = o.causal == 1;
    p.stream = o.stream;
    p.kernel_choice = o.kernel;
    p.num_splits = o.num_splits;
    p.workspace = o.workspace;
    p.workspace_bytes = o.workspace_bytes;
    p.num_threads = o.num_threads;
}

RowStrides row_strides(const sa_tensor* t) { return {t->strides[0], t->strides[1], t->strides[2]}; }

void init_geometry(NeighborhoodGeometry& g) {
    g.rank = 1;
    for (int i = 0; i < 3; ++i) {
        g.grid[i] = 1;
        g.kernel[i] = 1;
        g.dilation[i] = 1;
        g.stride[i] = 1;
        g.causal[i] = 0;
    }
}

AttentionProblem blank_problem(Family family) {
    AttentionProblem p;
    std::memset(&p, 0, sizeof p);
    p.family = family;
    init_geometry(p.neighborhood);
    return p;
}

struct AttentionViews {
    View q, k, v, out, lse;
    bool has_lse = false;
    CallBuffers buffers;  // q, k, v read; out, lse written
};

// q/k/v/out/lse checks shared by the batched and varlen layouts. seq_dim is the sequence
// axis (1 for [B, S, H, D], 0 for [T, H, D]).
AttentionViews check_attention_tensors(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse, bool varlen) {
    const int32_t rank = varlen ? 3 : 4;
    const char* layout = varlen ? "[T, H, D]" : "[B, S, H, D]";
    AttentionViews a;
    a.q = check_tensor(q, "q", rank, layout);
    a.k = check_tensor(k, "k", rank, layout);
    a.v = check_tensor(v, "v", rank, layout);
    a.out = check_tensor(out, "out", rank, layout);
    require_device_available(a.q);
    require_same_device(a.k, a.q);
    require_same_device(a.v, a.q);
    require_same_device(a.out, a.q);
    require_float_dtype(a.q);
    require_same_dtype(a.k, a.q);
    require_same_dtype(a.v, a.q);
    require_same_dtype(a.out, a.q);

    const int32_t h = rank - 2, d = rank - 1;
    if (!varlen && k->shape[0] != q->shape[0])
        fail_invalid("k: shape[0] (B = %lld) must equal q's B = %lld", ll(k->shape[0]),
                     ll(q->shape[0]));
    if (k->shape[d] != q->shape[d])
        fail_invalid("k: shape[%d] (D = %lld) must equal q's D = %lld", d, ll(k->shape[d]),
                     ll(q->shape[d]));
    for (int32_t i = 0; i < rank; ++i)
        if (v->shape[i] != k->shape[i])
            fail_invalid("v: shape %s must equal k's shape %s", shape_text(v).c_str(),
                         shape_text(k).c_str());
    for (int32_t i = 0; i < rank; ++i)
        if (out->shape[i] != q->shape[i])
            fail_invalid("out: shape %s must equal q's shape %s", shape_text(out).c_str(),
                         shape_text(q).c_str());
    if (q->shape[h] % k->shape[h] != 0)
        fail_invalid("k: shape[%d] (H_kv = %lld) must divide q's H_q = %lld", h,
                     ll(k->shape[h]), ll(q->shape[h]));
    check_head_dim(a.q, q->shape[d]);

    require_no_self_alias(a.out);
    a.buffers.read(a.q);
    a.buffers.read(a.k);
    a.buffers.read(a.v);
    a.buffers.write(a.out);

    if (present(lse)) {
        a.has_lse = true;
        if (varlen) {
            a.lse = check_tensor(lse, "lse", 2, "[H_q, T_q]");
        } else {
            a.lse = check_tensor(lse, "lse", 3, "[B, H_q, S_q]");
        }
        require_same_device(a.lse, a.q);
        require_dtype(a.lse, SA_DTYPE_F32);
        if (varlen)
            require_shape(a.lse, {q->shape[1], q->shape[0]}, "[H_q, T_q]");
        else
            require_shape(a.lse, {q->shape[0], q->shape[2], q->shape[1]}, "[B, H_q, S_q]");
        require_no_self_alias(a.lse);
        a.buffers.write(a.lse);
    }
    return a;
}

void fill_batched(AttentionProblem& p, const AttentionViews& a) {
    const sa_tensor* q = a.q.t;
    const sa_tensor* k = a.k.t;
    p.dtype = static_cast<sa_dtype>(q->dtype);
    p.device_type = static_cast<sa_device_type>(q->device_type);
    p.device_id = q->device_id;
    p.q = q->data;
    p.k = k->data;
    p.v = a.v.t->data;
    p.out = a.out.t->data;
    p.batch = q->shape[0];
    p.seqlen_q = q->shape[1];
    p.seqlen_k = k->shape[1];
    p.heads_q = q->shape[2];
    p.heads_kv = k->shape[2];
    p.head_dim = q->shape[3];
    p.q_strides = row_strides(q);
    p.k_strides = row_strides(k);
    p.v_strides = row_strides(a.v.t);
    p.out_strides = row_strides(a.out.t);
    if (a.has_lse) {
        p.lse = static_cast<float*>(a.lse.t->data);
        p.lse_strides = {a.lse.t->strides[0], a.lse.t->strides[1], a.lse.t->strides[2]};
    }
}

// The batched layout's checks; the caller adds its index tensors to buffers and then checks
// them for overlap.
AttentionProblem validate_batched(Family family, const sa_tensor* q, const sa_tensor* k,
                                  const sa_tensor* v, const sa_tensor* out, const sa_tensor* lse,
                                  const sa_attention_options* options, CallBuffers* buffers) {
    const AttentionViews a = check_attention_tensors(q, k, v, out, lse, false);
    AttentionProblem p = blank_problem(family);
    fill_batched(p, a);
    apply_options(p, options);
    *buffers = a.buffers;
    add_workspace(*buffers, options);
    return p;
}

// Reads cu_seqlens contents on the host: starts at 0, non-decreasing, ends at total, every
// length within max_seqlen.
// Returns the longest sequence.
int64_t check_cu_seqlens_contents(const View& cu, int64_t total, int32_t max_seqlen,
                                  const char* total_name, const char* max_name) {
    const int32_t* c = static_cast<const int32_t*>(cu.t->data);
    const int64_t n = cu.t->shape[0];
    if (c[0] != 0) fail_invalid("%s[0] must be 0, got %d", cu.name, c[0]);
    int64_t longest = 0;
    for (int64_t i = 1; i < n; ++i) {
        longest = std::max(longest, static_cast<int64_t>(c[i]) - c[i - 1]);
        if (c[i] < c[i - 1])
            fail_invalid("%s must be non-decreasing: %s[%lld] = %d < %s[%lld] = %d", cu.name,
                         cu.name, ll(i), c[i], cu.name, ll(i - 1), c[i - 1]);
        if (static_cast<int64_t>(c[i]) - c[i - 1] > max_seqlen)
            fail_invalid("%s: sequence %lld has length %lld > %s = %d", cu.name, ll(i - 1),
                         ll(static_cast<int64_t>(c[i]) - c[i - 1]), max_name, max_seqlen);
    }
    if (c[n - 1] != total)
        fail_invalid("%s[%lld] (the last entry) must equal %s = %lld, got %d", cu.name,
                     ll(n - 1), total_name, ll(total), c[n - 1]);
    return longest;
}

struct IndexView {
    View view;
    IndexStrides strides;  // broadcast dims have stride 0
};

// An int32 index tensor of shape [B, H, rows(, cols)], broadcast over B or H through a
// stride of 0 or an extent of 1.
IndexView check_index_tensor(const sa_tensor* t, const char* name, int32_t rank,
                             const char* layout, const View& device_ref, int64_t batch,
                             int64_t heads, int64_t rows, int64_t cols) {
    IndexView iv;
    iv.view = check_tensor(t, name, rank, layout, true);
    require_same_device(iv.view, device_ref);
    require_dtype(iv.view, SA_DTYPE_I32);
    const bool b_ok = t->shape[0] == batch || t->shape[0] == 1;
    const bool h_ok = t->shape[1] == heads || t->shape[1] == 1;
    const bool rows_ok = t->shape[2] == rows;
    const bool cols_ok = rank < 4 || cols < 0 || t->shape[3] == cols;
    if (!b_ok || !h_ok || !rows_ok || !cols_ok) {
        const std::string expected = rank == 4 && cols >= 0
                                         ? dims_text({batch, heads, rows, cols})
                                         : rank == 4 ? dims_text({batch, heads, rows}) + " + [C]"
                                                     : dims_text({batch, heads, rows});
        fail_invalid("%s: shape must be %s = %s (B and H may be 1 to broadcast), got %s", name,
                     layout, expected.c_str(), shape_text(t).c_str());
    }
    iv.strides.batch = t->shape[0] == 1 ? 0 : t->strides[0];
    iv.strides.head = t->shape[1] == 1 ? 0 : t->strides[1];
    iv.strides.row = t->strides[2];
    return iv;
}

const int32_t* index_row(const IndexView& iv, int64_t b, int64_t h, int64_t r) {
    return static_cast<const int32_t*>(iv.view.t->data) + b * iv.strides.batch +
           h * iv.strides.head + r * iv.strides.row;
}

// Reusable per-thread marks for duplicate and permutation checks on host tensors.
std::vector<uint8_t>& scratch_marks(size_t n) {
    thread_local std::vector<uint8_t> marks;
    if (marks.size() < n) marks.assign(n, 0);
    return marks;
}

// Host-side list contents: counts in 0..C, indices in [0, nK) and, with check_repeats, no
// block listed twice across the partial and full lists of a row.
void check_list_contents(const IndexView& num, const IndexView& idx, const IndexView* full_num,
                         const IndexView* full_idx, int64_t batch, int64_t heads, int64_t rows,
                         int64_t num_k_blocks, bool check_repeats) {
    // Marks cost one byte per key block; past this many blocks (a pair count for a huge s_k)
    // repeats are found by sorting each row instead.
    constexpr int64_t kMaxMarkedBlocks = int64_t{1} << 24;
    const bool sort_rows = check_repeats && num_k_blocks > kMaxMarkedBlocks;
    std::vector<uint8_t>& marks =
        scratch_marks(check_repeats && !sort_rows ? static_cast<size_t>(num_k_blocks) : 0);
    std::vector<int32_t> row_entries;
    struct Lists { const IndexView* num; const IndexView* idx; };
    const Lists lists[2] = {{&num, &idx}, {full_num, full_idx}};
    const int64_t capacity[2] = {idx.view.t->shape[3], full_idx ? full_idx->view.t->shape[3] : 0};
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h)
            for (int64_t r = 0; r < rows; ++r) {
                for (int li = 0; li < 2; ++li) {
                    if (lists[li].num == nullptr) continue;
                    const int32_t count = *index_row(*lists[li].num, b, h, r);
                    if (count < 0 || count > capacity[li]) {
                        std::fill(marks.begin(), marks.end(), 0);
                        fail_invalid("%s[%lld, %lld, %lld] = %d must be in 0..%lld (the capacity "
                                     "C of %s)", lists[li].num->view.name, ll(b), ll(h), ll(r),
                                     count, ll(capacity[li]), lists[li].idx->view.name);
                    }
                    const int32_t* entries = index_row(*lists[li].idx, b, h, r);
                    for (int32_t c = 0; c < count; ++c) {
                        const int32_t j = entries[c];
                        if (j < 0 || j >= num_k_blocks) {
                            std::fill(marks.begin(), marks.end(), 0);
                            fail_invalid("%s[%lld, %lld, %lld, %d] = %d must be a key block in "
                                         "[0, %lld)", lists[li].idx->view.name, ll(b), ll(h),
                                         ll(r), c, j, ll(num_k_blocks));
                        }
                        if (sort_rows) {
                            row_entries.push_back(j);
                        } else if (check_repeats) {
                            if (marks[j]) {
                                std::fill(marks.begin(), marks.end(), 0);
                                fail_invalid("%s[%lld, %lld, %lld, %d] = %d: key block listed "
                                             "more than once in the row", lists[li].idx->view.name,
                                             ll(b), ll(h), ll(r), c, j);
                            }
                            marks[j] = 1;
                        }
                    }
                }
                if (sort_rows) {
                    std::sort(row_entries.begin(), row_entries.end());
                    const auto repeat =
                        std::adjacent_find(row_entries.begin(), row_entries.end());
                    if (repeat != row_entries.end())
                        fail_invalid("block lists: key block %d listed more than once in row "
                                     "[%lld, %lld, %lld]", *repeat, ll(b), ll(h), ll(r));
                    row_entries.clear();
                } else if (check_repeats)
                    for (int li = 0; li < 2; ++li) {
                        if (lists[li].num == nullptr) continue;
                        const int32_t n = *index_row(*lists[li].num, b, h, r);
                        const int32_t* e = index_row(*lists[li].idx, b, h, r);
                        for (int32_t x = 0; x < n; ++x) marks[e[x]] = 0;
                    }
            }
}

void check_permutation_contents(const IndexView& perm, int64_t batch, int64_t heads,
                                int64_t length) {
    std::vector<uint8_t>& marks = scratch_marks(static_cast<size_t>(length));
    const int64_t nb = perm.strides.batch == 0 ? 1 : batch;
    const int64_t nh = perm.strides.head == 0 ? 1 : heads;
    for (int64_t b = 0; b < nb; ++b)
        for (int64_t h = 0; h < nh; ++h) {
            const int32_t* p = index_row(perm, b, h, 0);
            int64_t bad = -1;
            for (int64_t i = 0; i < length; ++i) {
                const int32_t x = p[i];
                if (x < 0 || x >= length || marks[x]) {
                    bad = i;
                    break;
                }
                marks[x] = 1;
            }
            const int64_t marked = bad < 0 ? length : bad;
            for (int64_t i = 0; i < marked; ++i) marks[p[i]] = 0;
            if (bad >= 0)
                fail_invalid("%s[%lld, %lld, %lld] = %d: not a permutation of 0..%lld", perm.view.name,
                             ll(b), ll(h), ll(bad), p[bad], ll(length - 1));
        }
}

// Counts are int32, so no entry past INT32_MAX of a list row is ever read.
int32_t list_capacity(const sa_tensor& indices) {
    return static_cast<int32_t>(std::min<int64_t>(indices.shape[3], INT32_MAX));
}

void require_block_size(int32_t block, const char* name) {
    if (block != 64 && block != 128) fail_invalid("%s must be 64 or 128, got %d", name, block);
}

}  // namespace

void require_cuda_device(int32_t device, const char* what) {
#if defined(SPARSEATTN_WITH_CUDA)
    cuda::check_device(device);
    (void)what;
#else
    fail_status(SA_ERROR_UNSUPPORTED, "%s: CUDA backend not built (device %d)", what, device);
#endif
}

AttentionProblem validate_dense(const sa_tensor* q, const sa_tensor* k, const sa_tensor* v,
                                const sa_tensor* out, const sa_tensor* lse,
                                const sa_attention_options* options) {
    CallBuffers buffers;
    AttentionProblem p = validate_batched(Family::Dense, q, k, v, out, lse, options, &buffers);
    require_disjoint_buffers(buffers);
    return p;
}

AttentionProblem validate_dense_shapes(const sa_tensor* q, const sa_tensor* k,
                                       const sa_attention_options* options) {
    View vq = check_tensor(q, "q", 4, "[B, S, H, D]");
    View vk = check_tensor(k, "k", 4, "[B, S, H, D]");
    require_device_available(vq);
    require_same_device(vk, vq);
    require_float_dtype(vq);
    require_same_dtype(vk, vq);
    if (k->shape[0] != q->shape[0])
        fail_invalid("k: shape[0] (B = %lld) must equal q's B = %lld", ll(k->shape[0]),
                     ll(q->shape[0]));
    if (k->shape[3] != q->shape[3])
        fail_invalid("k: shape[3] (D = %lld) must equal q's D = %lld", ll(k->shape[3]),
                     ll(q->shape[3]));
    if (q->shape[2] % k->shape[2] != 0)
        fail_invalid("k: shape[2] (H_kv = %lld) must divide q's H_q = %lld", ll(k->shape[2]),
                     ll(q->shape[2]));
    check_head_dim(vq, q->shape[3]);
    AttentionProblem p = blank_problem(Family::Dense);
    p.dtype = static_cast<sa_dtype>(q->dtype);
    p.device_type = static_cast<sa_device_type>(q->device_type);
    p.device_id = q->device_id;
    p.q = q->data;
    p.k = k->data;
    p.v = k->data;
    p.out = nullptr;
    p.batch = q->shape[0];
    p.seqlen_q = q->shape[1];
    p.seqlen_k = k->shape[1];
    p.heads_q = q->shape[2];
    p.heads_kv = k->shape[2];
    p.head_dim = q->shape[3];
    p.q_strides = row_strides(q);
    p.k_strides = row_strides(k);
    p.v_strides = p.k_strides;
    p.out_strides = p.q_strides;
    apply_options(p, options);
    return p;
}

AttentionProblem validate_dense_varlen(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse, const sa_tensor* cu_seqlens_q,
                                       const sa_tensor* cu_seqlens_k, int32_t max_seqlen_q,
                                       int32_t max_seqlen_k,
                                       const sa_attention_options* options) {
    const AttentionViews a = check_attention_tensors(q, k, v, out, lse, true);
    const View cq = check_tensor(cu_seqlens_q, "cu_seqlens_q", 1, "[B + 1]");
    const View ck = check_tensor(cu_seqlens_k, "cu_seqlens_k", 1, "[B + 1]");
    require_same_device(cq, a.q);
    require_same_device(ck, a.q);
    require_dtype(cq, SA_DTYPE_I32);
    require_dtype(ck, SA_DTYPE_I32);
    if (cu_seqlens_q->shape[0] < 2)
        fail_invalid("cu_seqlens_q: shape[0] (B + 1) must be >= 2, got %lld",
                     ll(cu_seqlens_q->shape[0]));
    if (cu_seqlens_k->shape[0] != cu_seqlens_q->shape[0])
        fail_invalid("cu_seqlens_k: shape[0] = %lld must equal cu_seqlens_q's shape[0] = %lld "
                     "(B + 1)", ll(cu_seqlens_k->shape[0]), ll(cu_seqlens_q->shape[0]));
    if (max_seqlen_q < 1) fail_invalid("max_seqlen_q must be >= 1, got %d", max_seqlen_q);
    if (max_seqlen_k < 1) fail_invalid("max_seqlen_k must be >= 1, got %d", max_seqlen_k);
    CallBuffers buffers = a.buffers;
    buffers.read(cq);
    buffers.read(ck);
    add_workspace(buffers, options);
    require_disjoint_buffers(buffers);
    int64_t longest_q = max_seqlen_q, longest_k = max_seqlen_k;
    if (q->device_type == SA_DEVICE_CPU) {
        longest_q = check_cu_seqlens_contents(cq, q->shape[0], max_seqlen_q, "q's T_q",
                                              "max_seqlen_q");
        longest_k = check_cu_seqlens_contents(ck, k->shape[0], max_seqlen_k, "k's T_k",
                                              "max_seqlen_k");
    }

    AttentionProblem p = blank_problem(Family::Dense);
    p.dtype = static_cast<sa_dtype>(q->dtype);
    p.device_type = static_cast<sa_device_type>(q->device_type);
    p.device_id = q->device_id;
    p.q = q->data;
    p.k = k->data;
    p.v = v->data;
    p.out = out->data;
    p.batch = cu_seqlens_q->shape[0] - 1;
    // The host already knows the longest sequences: a loose bound (up to INT32_MAX) must
    // not make the CPU backend schedule work for rows that do not exist.
    p.seqlen_q = std::max<int64_t>(longest_q, 1);
    p.seqlen_k = std::max<int64_t>(longest_k, 1);
    p.heads_q = q->shape[1];
    p.heads_kv = k->shape[1];
    p.head_dim = q->shape[2];
    p.q_strides = {0, q->strides[0], q->strides[1]};
    p.k_strides = {0, k->strides[0], k->strides[1]};
    p.v_strides = {0, v->strides[0], v->strides[1]};
    p.out_strides = {0, out->strides[0], out->strides[1]};
    if (a.has_lse) {
        p.lse = static_cast<float*>(lse->data);
        p.lse_strides = {0, lse->strides[0], lse->strides[1]};
    }
    p.cu_seqlens_q = static_cast<const int32_t*>(cu_seqlens_q->data);
    p.cu_seqlens_k = static_cast<const int32_t*>(cu_seqlens_k->data);
    apply_options(p, options);
    return p;
}

NeighborhoodGeometry validate_neighborhood_params(const sa_neighborhood_params* params) {
    if (params == nullptr) fail_invalid("params: pointer is NULL");
    const int32_t rank = params->spatial_rank;
    if (rank < 1 || rank > SA_MAX_SPATIAL_DIMS)
        fail_invalid("params->spatial_rank must be 1, 2 or 3, got %d", rank);
    NeighborhoodGeometry g;
    init_geometry(g);
    g.rank = rank;
    for (int32_t i = 0; i < rank; ++i) {
        const int32_t L = params->grid[i], k = params->kernel[i], d = params->dilation[i],
                      s = params->stride[i], c = params->causal[i];
        if (L < 1) fail_invalid("params->grid[%d] must be >= 1, got %d", i, L);
        if (k < 1) fail_invalid("params->kernel[%d] must be >= 1, got %d", i, k);
        if (d < 1) fail_invalid("params->dilation[%d] must be >= 1, got %d", i, d);
        if (s < 1 || s > k)
            fail_invalid("params->stride[%d] = %d must satisfy 1 <= stride <= kernel (%d)", i, s,
                         k);
        if (static_cast<int64_t>(k) * d > L)
            fail_invalid("params->kernel[%d] * params->dilation[%d] = %lld must be <= "
                         "params->grid[%d] = %d", i, i, ll(static_cast<int64_t>(k) * d), i, L);
        if (c != 0 && c != 1) fail_invalid("params->causal[%d] must be 0 or 1, got %d", i, c);
        g.grid[i] = L;
        g.kernel[i] = k;
        g.dilation[i] = d;
        g.stride[i] = s;
        g.causal[i] = c;
    }
    return g;
}

AttentionProblem validate_neighborhood(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse,
                                       const sa_neighborhood_params* params,
                                       const sa_attention_options* options) {
    CallBuffers buffers;
    AttentionProblem p =
        validate_batched(Family::Neighborhood, q, k, v, out, lse, options, &buffers);
    require_disjoint_buffers(buffers);
    p.neighborhood = validate_neighborhood_params(params);
    int64_t tokens = 1;
    for (int32_t i = 0; i < p.neighborhood.rank; ++i)
        if (sa::mul_overflows(tokens, static_cast<int64_t>(p.neighborhood.grid[i]), &tokens))
            fail_invalid("params->grid: the product of the grid sizes overflows int64");
    if (p.seqlen_q != tokens)
        fail_invalid("q: shape[1] (S = %lld) must equal the product of params->grid (%lld)",
                     ll(p.seqlen_q), ll(tokens));
    if (p.seqlen_k != tokens)
        fail_invalid("k: shape[1] (S = %lld) must equal the product of params->grid (%lld)",
                     ll(p.seqlen_k), ll(tokens));
    if (p.causal)
        fail_invalid("options->causal must be 0 for neighborhood attention (causality is per "
                     "dimension in params->causal), got 1");
    return p;
}

AttentionProblem validate_block_sparse(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse,
                                       const sa_block_sparse_params* params,
                                       const sa_attention_options* options) {
    CallBuffers buffers;
    AttentionProblem p =
        validate_batched(Family::BlockSparse, q, k, v, out, lse, options, &buffers);
    if (params == nullptr) fail_invalid("params: pointer is NULL");
    require_block_size(params->block_q, "params->block_q");
    require_block_size(params->block_k, "params->block_k");
    const View vq = check_tensor(q, "q", 4, "[B, S, H, D]");
    const int64_t nq = (p.seqlen_q + params->block_q - 1) / params->block_q;
    const int64_t nk = (p.seqlen_k + params->block_k - 1) / params->block_k;
    if (nq > INT32_MAX || nk > INT32_MAX)
        fail_invalid("q: too many blocks (nQ = %lld, nK = %lld)", ll(nq), ll(nk));

    BlockSparseLists& bs = p.block_sparse;
    bs.block_q = params->block_q;
    bs.block_k = params->block_k;
    bs.num_q_blocks = static_cast<int32_t>(nq);
    bs.num_k_blocks = static_cast<int32_t>(nk);

    const IndexView num = check_index_tensor(&params->kv_num_blocks, "params->kv_num_blocks", 3,
                                             "[B, H_q, nQ]", vq, p.batch, p.heads_q, nq, -1);
    const IndexView idx = check_index_tensor(&params->kv_indices, "params->kv_indices", 4,
                                             "[B, H_q, nQ, C]", vq, p.batch, p.heads_q, nq, -1);
    bs.kv_num_blocks = static_cast<const int32_t*>(params->kv_num_blocks.data);
    bs.kv_indices = static_cast<const int32_t*>(params->kv_indices.data);
    bs.num_strides = num.strides;
    bs.idx_strides = idx.strides;
    bs.capacity = list_capacity(params->kv_indices);
    buffers.read(num.view);
    buffers.read(idx.view);

    const bool has_full_num = params->full_kv_num_blocks.data != nullptr;
    const bool has_full_idx = params->full_kv_indices.data != nullptr;
    if (has_full_num != has_full_idx)
        fail_invalid("%s: must be given together with %s",
                     has_full_num ? "params->full_kv_indices" : "params->full_kv_num_blocks",
                     has_full_num ? "params->full_kv_num_blocks" : "params->full_kv_indices");
    IndexView full_num, full_idx;
    if (has_full_num) {
        full_num = check_index_tensor(&params->full_kv_num_blocks, "params->full_kv_num_blocks",
                                      3, "[B, H_q, nQ]", vq, p.batch, p.heads_q, nq, -1);
        full_idx = check_index_tensor(&params->full_kv_indices, "params->full_kv_indices", 4,
                                      "[B, H_q, nQ, C]", vq, p.batch, p.heads_q, nq, -1);
        bs.full_num_blocks = static_cast<const int32_t*>(params->full_kv_num_blocks.data);
        bs.full_indices = static_cast<const int32_t*>(params->full_kv_indices.data);
        bs.full_num_strides = full_num.strides;
        bs.full_idx_strides = full_idx.strides;
        bs.full_capacity = list_capacity(params->full_kv_indices);
        buffers.read(full_num.view);
        buffers.read(full_idx.view);
    }
    IndexView key_perm, query_perm;
    if (params->key_perm.data != nullptr) {
        key_perm = check_index_tensor(&params->key_perm, "params->key_perm", 3, "[B, H_q, S_k]",
                                      vq, p.batch, p.heads_q, p.seqlen_k, -1);
        bs.key_perm = static_cast<const int32_t*>(params->key_perm.data);
        bs.key_perm_strides = key_perm.strides;
        buffers.read(key_perm.view);
    }
    if (params->query_perm.data != nullptr) {
        query_perm = check_index_tensor(&params->query_perm, "params->query_perm", 3,
                                        "[B, H_q, S_q]", vq, p.batch, p.heads_q, p.seqlen_q, -1);
        bs.query_perm = static_cast<const int32_t*>(params->query_perm.data);
        bs.query_perm_strides = query_perm.strides;
        buffers.read(query_perm.view);
    }
    require_disjoint_buffers(buffers);
    if (p.device_type == SA_DEVICE_CPU) {
        check_list_contents(num, idx, has_full_num ? &full_num : nullptr,
                            has_full_num ? &full_idx : nullptr, p.batch, p.heads_q, nq, nk, true);
        if (bs.key_perm) check_permutation_contents(key_perm, p.batch, p.heads_q, p.seqlen_k);
        if (bs.query_perm) check_permutation_contents(query_perm, p.batch, p.heads_q, p.seqlen_q);
    }
    return p;
}

MergeProblem validate_merge(const sa_tensor* o1, const sa_tensor* lse1, const sa_tensor* o2,
                            const sa_tensor* lse2, const sa_tensor* out,
                            const sa_tensor* lse_out, void* stream) {
    const View v1 = check_tensor(o1, "o1", 4, "[B, S, H, D]");
    const View v2 = check_tensor(o2, "o2", 4, "[B, S, H, D]");
    const View vo = check_tensor(out, "out", 4, "[B, S, H, D]");
    const View l1 = check_tensor(lse1, "lse1", 3, "[B, H, S]");
    const View l2 = check_tensor(lse2, "lse2", 3, "[B, H, S]");
    require_device_available(v1);
    require_same_device(v2, v1);
    require_same_device(vo, v1);
    require_same_device(l1, v1);
    require_same_device(l2, v1);
    require_float_dtype(v1);
    require_float_dtype(v2);
    require_float_dtype(vo);
    require_dtype(l1, SA_DTYPE_F32);
    require_dtype(l2, SA_DTYPE_F32);
    for (int32_t i = 0; i < 4; ++i) {
        if (o2->shape[i] != o1->shape[i])
            fail_invalid("o2: shape %s must equal o1's shape %s", shape_text(o2).c_str(),
                         shape_text(o1).c_str());
        if (out->shape[i] != o1->shape[i])
            fail_invalid("out: shape %s must equal o1's shape %s", shape_text(out).c_str(),
                         shape_text(o1).c_str());
    }
    const int64_t B = o1->shape[0], S = o1->shape[1], H = o1->shape[2], D = o1->shape[3];
    require_shape(l1, {B, H, S}, "[B, H, S]");
    require_shape(l2, {B, H, S}, "[B, H, S]");
    require_no_self_alias(vo);
    if (!same_view(vo, v1)) require_disjoint(vo, v1);
    require_disjoint(vo, v2);
    require_disjoint(vo, l1);
    require_disjoint(vo, l2);

    MergeProblem m;
    std::memset(&m, 0, sizeof m);
    if (present(lse_out)) {
        const View lo = check_tensor(lse_out, "lse_out", 3, "[B, H, S]");
        require_same_device(lo, v1);
        require_dtype(lo, SA_DTYPE_F32);
        require_shape(lo, {B, H, S}, "[B, H, S]");
        require_no_self_alias(lo);
        if (!same_view(lo, l1)) require_disjoint(lo, l1);
        require_disjoint(lo, l2);
        require_disjoint(lo, v1);
        require_disjoint(lo, v2);
        require_disjoint(lo, vo);
        m.lse_out = static_cast<float*>(lse_out->data);
        m.lse_out_strides = {lse_out->strides[0], lse_out->strides[1], lse_out->strides[2]};
    }
    m.device_type = static_cast<sa_device_type>(o1->device_type);
    m.device_id = o1->device_id;
    m.batch = B;
    m.seqlen = S;
    m.heads = H;
    m.head_dim = D;
    m.o1 = o1->data;
    m.o1_dtype = static_cast<sa_dtype>(o1->dtype);
    m.o1_strides = row_strides(o1);
    m.o2 = o2->data;
    m.o2_dtype = static_cast<sa_dtype>(o2->dtype);
    m.o2_strides = row_strides(o2);
    m.out = out->data;
    m.out_dtype = static_cast<sa_dtype>(out->dtype);
    m.out_strides = row_strides(out);
    m.lse1 = static_cast<const float*>(lse1->data);
    m.lse1_strides = {lse1->strides[0], lse1->strides[1], lse1->strides[2]};
    m.lse2 = static_cast<const float*>(lse2->data);
    m.lse2_strides = {lse2->strides[0], lse2->strides[1], lse2->strides[2]};
    m.stream = stream;
    return m;
}

MaskConversion validate_mask_to_lists(const sa_tensor* dense_mask,
                                      const sa_tensor* kv_num_blocks,
                                      const sa_tensor* kv_indices, void* stream) {
    const View mask = check_tensor(dense_mask, "dense_mask", 4, "[B, H, nQ, nK]");
    const View num = check_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H, nQ]");
    const View idx = check_tensor(kv_indices, "kv_indices", 4, "[B, H, nQ, nK]");
    require_device_available(mask);
    require_same_device(num, mask);
    require_same_device(idx, mask);
    require_dtype(mask, SA_DTYPE_BOOL);
    require_dtype(num, SA_DTYPE_I32);
    require_dtype(idx, SA_DTYPE_I32);
    const int64_t B = dense_mask->shape[0], H = dense_mask->shape[1], nq = dense_mask->shape[2],
                  nk = dense_mask->shape[3];
    require_shape(num, {B, H, nq}, "[B, H, nQ]");
    require_shape(idx, {B, H, nq, nk}, "[B, H, nQ, nK]");
    require_contiguous(mask);
    require_contiguous(num);
    require_contiguous(idx);
    if (nk > INT32_MAX) fail_invalid("dense_mask: shape[3] (nK = %lld) exceeds int32", ll(nk));
    require_disjoint(num, mask);
    require_disjoint(idx, mask);
    require_disjoint(idx, num);
    MaskConversion c;
    std::memset(&c, 0, sizeof c);
    c.device_type = static_cast<sa_device_type>(dense_mask->device_type);
    c.device_id = dense_mask->device_id;
    c.batch = B;
    c.heads = H;
    c.num_q_blocks = nq;
    c.num_k_blocks = nk;
    c.mask_in = static_cast<const uint8_t*>(dense_mask->data);
    c.num_out = static_cast<int32_t*>(kv_num_blocks->data);
    c.idx_out = static_cast<int32_t*>(kv_indices->data);
    c.idx_in_capacity = nk;
    c.stream = stream;
    return c;
}

MaskConversion validate_lists_to_mask(const sa_tensor* kv_num_blocks,
                                      const sa_tensor* kv_indices, const sa_tensor* dense_mask,
                                      void* stream) {
    const View num = check_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H, nQ]");
    const View idx = check_tensor(kv_indices, "kv_indices", 4, "[B, H, nQ, C]");
    const View mask = check_tensor(dense_mask, "dense_mask", 4, "[B, H, nQ, nK]");
    require_device_available(num);
    require_same_device(idx, num);
    require_same_device(mask, num);
    require_dtype(num, SA_DTYPE_I32);
    require_dtype(idx, SA_DTYPE_I32);
    require_dtype(mask, SA_DTYPE_BOOL);
    const int64_t B = kv_num_blocks->shape[0], H = kv_num_blocks->shape[1],
                  nq = kv_num_blocks->shape[2], C = kv_indices->shape[3],
                  nk = dense_mask->shape[3];
    require_shape(idx, {B, H, nq}, "[B, H, nQ]");
    require_shape(mask, {B, H, nq}, "[B, H, nQ]");
    require_contiguous(num);
    require_contiguous(idx);
    require_contiguous(mask);
    require_disjoint(mask, num);
    require_disjoint(mask, idx);
    if (num.t->device_type == SA_DEVICE_CPU) {
        IndexView n, i;
        n.view = num;
        n.strides = {kv_num_blocks->strides[0], kv_num_blocks->strides[1],
                     kv_num_blocks->strides[2]};
        i.view = idx;
        i.strides = {kv_indices->strides[0], kv_indices->strides[1], kv_indices->strides[2]};
        check_list_contents(n, i, nullptr, nullptr, B, H, nq, nk, false);
    }
    MaskConversion c;
    std::memset(&c, 0, sizeof c);
    c.device_type = static_cast<sa_device_type>(kv_num_blocks->device_type);
    c.device_id = kv_num_blocks->device_id;
    c.batch = B;
    c.heads = H;
    c.num_q_blocks = nq;
    c.num_k_blocks = nk;
    c.num_in = static_cast<const int32_t*>(kv_num_blocks->data);
    c.idx_in = static_cast<const int32_t*>(kv_indices->data);
    c.idx_in_capacity = C;
    c.mask_out = static_cast<uint8_t*>(dense_mask->data);
    c.stream = stream;
    return c;
}

PbsProblem validate_pbs(const sa_tensor* q, const sa_tensor* k, const sa_pbs_options* options,
                        const sa_tensor* key_perm, const sa_tensor* kv_num_blocks,
                        const sa_tensor* kv_indices) {
    const View vq = check_tensor(q, "q", 4, "[B, S, H, D]");
    const View vk = check_tensor(k, "k", 4, "[B, S, H, D]");
    require_device_available(vq);
    require_same_device(vk, vq);
    require_float_dtype(vq);
    require_same_dtype(vk, vq);
    if (k->shape[0] != q->shape[0])
        fail_invalid("k: shape[0] (B = %lld) must equal q's B = %lld", ll(k->shape[0]),
                     ll(q->shape[0]));
    if (k->shape[1] != q->shape[1])
        fail_invalid("k: shape[1] (S_k = %lld) must equal q's S_q = %lld (PBS plans "
                     "self-attention prefill)", ll(k->shape[1]), ll(q->shape[1]));
    if (k->shape[3] != q->shape[3])
        fail_invalid("k: shape[3] (D = %lld) must equal q's D = %lld", ll(k->shape[3]),
                     ll(q->shape[3]));
    if (q->shape[2] % k->shape[2] != 0)
        fail_invalid("k: shape[2] (H_kv = %lld) must divide q's H_q = %lld", ll(k->shape[2]),
                     ll(q->shape[2]));
    check_head_dim(vq, q->shape[3]);

    sa_pbs_options o;
    sa_pbs_options_init(&o);
    if (options) o = *options;
    require_block_size(o.block, "options->block");
    if (o.segment < o.block || o.segment % o.block != 0)
        fail_invalid("options->segment must be a positive multiple of options->block (%d), got %d",
                     o.block, o.segment);
    if (!(o.tau > 0.0f && o.tau <= 1.0f))
        fail_invalid("options->tau must be in (0, 1], got %g", static_cast<double>(o.tau));
    const int64_t B = q->shape[0], S = q->shape[1], Hq = q->shape[2];
    const float scale = resolve_scale(o.scale, q->shape[3], "options->scale");
    const int64_t n = (S + o.block - 1) / o.block;

    const View vp = check_tensor(key_perm, "key_perm", 3, "[B, H_q, S]");
    const View vn = check_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H_q, nQ]");
    const View vi = check_tensor(kv_indices, "kv_indices", 4, "[B, H_q, nQ, nK]");
    for (const View* out : {&vp, &vn, &vi}) {
        require_same_device(*out, vq);
        require_dtype(*out, SA_DTYPE_I32);
    }
    require_shape(vp, {B, Hq, S}, "[B, H_q, S]");
    require_shape(vn, {B, Hq, n}, "[B, H_q, nQ]");
    require_shape(vi, {B, Hq, n, n}, "[B, H_q, nQ, nK]");
    for (const View* out : {&vp, &vn, &vi}) {
        require_contiguous(*out);
        require_disjoint(*out, vq);
        require_disjoint(*out, vk);
    }
    require_disjoint(vn, vp);
    require_disjoint(vi, vp);
    require_disjoint(vi, vn);

    PbsProblem p;
    std::memset(&p, 0, sizeof p);
    p.dtype = static_cast<sa_dtype>(q->dtype);
    p.device_type = static_cast<sa_device_type>(q->device_type);
    p.device_id = q->device_id;
    p.q = q->data;
    p.q_strides = row_strides(q);
    p.k = k->data;
    p.k_strides = row_strides(k);
    p.batch = B;
    p.seqlen = S;
    p.heads_q = Hq;
    p.heads_kv = k->shape[2];
    p.head_dim = q->shape[3];
    p.block = o.block;
    p.segment = o.segment;
    p.tau = o.tau;
    p.scale = scale;
    p.key_perm = static_cast<int32_t*>(key_perm->data);
    p.kv_num_blocks = static_cast<int32_t*>(kv_num_blocks->data);
    p.kv_indices = static_cast<int32_t*>(kv_indices->data);
    p.num_blocks = n;
    p.stream = o.stream;
    return p;
}

int64_t block_sparse_pair_count(int64_t s_q, int64_t s_k, int32_t block_q, int32_t block_k,
                                int32_t causal, const sa_tensor* kv_num_blocks,
                                const sa_tensor* kv_indices) {
    if (s_q < 1) fail_invalid("s_q must be >= 1, got %lld", ll(s_q));
    if (s_k < 1) fail_invalid("s_k must be >= 1, got %lld", ll(s_k));
    require_block_size(block_q, "block_q");
    require_block_size(block_k, "block_k");
    if (causal != 0 && causal != 1) fail_invalid("causal must be 0 or 1, got %d", causal);
    // Rounded up without adding first: s_q and s_k may be as large as INT64_MAX.
    const int64_t nq = s_q / block_q + (s_q % block_q != 0);
    const int64_t nk = s_k / block_k + (s_k % block_k != 0);
    const View probe = check_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H, nQ]", true);
    if (probe.t->device_type != SA_DEVICE_CPU)
        fail_invalid("kv_num_blocks: must be a host (CPU) tensor for pair counting, got device "
                     "%s", device_text(probe.t->device_type, probe.t->device_id).c_str());
    const int64_t B = kv_num_blocks->shape[0], H = kv_num_blocks->shape[1];
    const IndexView num = check_index_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H, nQ]",
                                             probe, B, H, nq, -1);
    const IndexView idx = check_index_tensor(kv_indices, "kv_indices", 4, "[B, H, nQ, C]", probe,
                                             B, H, nq, -1);
    // Dims both tensors broadcast (stride 0) are counted once and multiplied: B or H may be
    // far larger than any memory.
    const int64_t distinct_b = num.strides.batch == 0 && idx.strides.batch == 0 ? 1 : B;
    const int64_t distinct_h = num.strides.head == 0 && idx.strides.head == 0 ? 1 : H;
    check_list_contents(num, idx, nullptr, nullptr, distinct_b, distinct_h, nq, nk, true);
    const int64_t offset = s_k - s_q;
    int64_t pairs = 0;
    for (int64_t b = 0; b < distinct_b; ++b)
        for (int64_t h = 0; h < distinct_h; ++h)
            for (int64_t r = 0; r < nq; ++r) {
                const int32_t count = *index_row(num, b, h, r);
                const int32_t* entries = index_row(idx, b, h, r);
                const int64_t row_begin = r * block_q;
                const int64_t row_end = std::min(s_q, row_begin + block_q);
                for (int32_t c = 0; c < count; ++c) {
                    const int64_t key_begin = static_cast<int64_t>(entries[c]) * block_k;
                    const int64_t key_end = std::min(s_k, key_begin + block_k);
                    if (!causal) {
                        pairs += (row_end - row_begin) * (key_end - key_begin);
                        continue;
                    }
                    for (int64_t i = row_begin; i < row_end; ++i) {
                        const int64_t last = std::min(key_end, i + offset + 1);
                        if (last > key_begin) pairs += last - key_begin;
                    }
                }
            }
    // Only the broadcast dims multiply here: the message names the one that overflowed.
    if (sa::mul_overflows(pairs, B / distinct_b, &pairs))
        fail_invalid("kv_num_blocks: pair count overflows int64 over the broadcast batch dim "
                     "(shape[0] = B = %lld)", ll(B));
    if (sa::mul_overflows(pairs, H / distinct_h, &pairs))
        fail_invalid("kv_num_blocks: pair count overflows int64 over the broadcast head dim "
                     "(shape[1] = H = %lld)", ll(H));
    return pairs;
}

}  // namespace sa
