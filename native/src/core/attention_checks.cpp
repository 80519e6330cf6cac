// Checks shared by the attention calls: q/k/v/out/lse, head dims, options, workspace.
#include "attention_checks.h"

#include <cmath>
#include <cstring>

#include "checked_math.h"
#include "errors.h"

namespace sa {
namespace check {

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

namespace {
sa_attention_options default_options() {
    sa_attention_options o;
    sa_attention_options_init(&o);
    return o;
}
}  // namespace

void apply_options(AttentionProblem& p, const sa_attention_options* options) {
    const sa_attention_options o = options ? *options : default_options();
    p.scale = resolve_scale(o.scale, p.head_dim, "options->scale");
    if (o.causal != 0 && o.causal != 1)
        fail_invalid("options->causal must be 0 or 1, got %d", o.causal);
    if (o.causal_alignment != SA_CAUSAL_BOTTOM_RIGHT && o.causal_alignment != SA_CAUSAL_TOP_LEFT)
        fail_invalid("options->causal_alignment must be SA_CAUSAL_BOTTOM_RIGHT (0) or "
                     "SA_CAUSAL_TOP_LEFT (1), got %d", o.causal_alignment);
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
    p.causal_top_left = p.causal && o.causal_alignment == SA_CAUSAL_TOP_LEFT;
    p.stream = o.stream;
    p.kernel_choice = o.kernel;
    p.num_splits = o.num_splits;
    p.workspace = o.workspace;
    p.workspace_bytes = o.workspace_bytes;
    p.num_threads = o.num_threads;
}

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

}  // namespace check
}  // namespace sa
