// The PBS planner: q, k, options and the three plan outputs.
#include "validate.h"

#include <cstring>

#include "attention_checks.h"
#include "errors.h"

namespace sa {
using namespace check;

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
    if (o.permute_keys != 0 && o.permute_keys != 1)
        fail_invalid("options->permute_keys must be 0 or 1, got %d", o.permute_keys);
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
    p.permute_keys = o.permute_keys != 0;
    p.scale = scale;
    p.key_perm = static_cast<int32_t*>(key_perm->data);
    p.kv_num_blocks = static_cast<int32_t*>(kv_num_blocks->data);
    p.kv_indices = static_cast<int32_t*>(kv_indices->data);
    p.num_blocks = n;
    p.stream = o.stream;
    return p;
}

}  // namespace sa
