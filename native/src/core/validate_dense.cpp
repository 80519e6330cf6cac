// Dense and packed variable-length (varlen) calls, and the workspace-size query.
#include "validate.h"

#include <algorithm>
#include <cstdint>

#include "attention_checks.h"
#include "errors.h"

namespace sa {
using namespace check;

namespace {

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

}  // namespace

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

}  // namespace sa
