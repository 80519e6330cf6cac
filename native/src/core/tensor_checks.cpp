// The checks every validator shares: one tensor descriptor at a time, index tensors, and the
// overlap of the buffers a call reads and writes.
#include "tensor_checks.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "checked_math.h"
#include "errors.h"

namespace sa {
namespace check {

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

bool present(const sa_tensor* t) { return t != nullptr && t->data != nullptr; }

// Structural checks shared by every tensor. broadcast_outer allows stride 0 on dims 0 and 1
// (index tensors broadcast over B and H).
View check_tensor(const sa_tensor* t, const char* name, int32_t rank, const char* layout,
                  bool broadcast_outer) {
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

void require_disjoint_buffers(const CallBuffers& b) {
    for (int32_t w = 0; w < b.num_writes; ++w) {
        for (int32_t r = 0; r < b.num_reads; ++r) require_disjoint(b.writes[w], b.reads[r]);
        for (int32_t e = 0; e < w; ++e) require_disjoint(b.writes[w], b.writes[e]);
    }
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

RowStrides row_strides(const sa_tensor* t) { return {t->strides[0], t->strides[1], t->strides[2]}; }

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

void require_block_size(int32_t block, const char* name) {
    if (block != 64 && block != 128) fail_invalid("%s must be 64 or 128, got %d", name, block);
}

}  // namespace check

void require_cuda_device(int32_t device, const char* what) {
#if defined(SPARSEATTN_WITH_CUDA)
    cuda::check_device(device);
    (void)what;
#else
    fail_status(SA_ERROR_UNSUPPORTED, "%s: CUDA backend not built (device %d)", what, device);
#endif
}

}  // namespace sa
