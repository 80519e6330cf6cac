// LSE merge of two partial results (in-place output allowed).
#include "validate.h"

#include <cstring>

#include "errors.h"
#include "tensor_checks.h"

namespace sa {
using namespace check;

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

}  // namespace sa
