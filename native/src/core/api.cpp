// The C ABI: every exported function validates, dispatches to the backend of the tensors'
// device, and converts exceptions to a status through guard().
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "checked_math.h"
#include "errors.h"
#include "neighborhood_tiles.h"
#include "neighborhood_window.h"
#include "tensor_checks.h"
#include "validate.h"

namespace {

#if !defined(SPARSEATTN_WITH_CUDA)
[[noreturn]] void cuda_not_built(const char* function) {
    sa::fail_status(SA_ERROR_UNSUPPORTED, "%s: CUDA backend not built", function);
}
#endif

template <typename Problem, typename CpuFn, typename CudaFn>
void dispatch(const Problem& p, CpuFn cpu_fn, CudaFn cuda_fn) {
    if (p.device_type == SA_DEVICE_CPU) {
        cpu_fn(p);
        return;
    }
#if defined(SPARSEATTN_WITH_CUDA)
    cuda_fn(p);
#else
    (void)cuda_fn;
    cuda_not_built("device tensors");
#endif
}

// Backends are named through these so the CPU-only build does not reference sa::cuda.
#if defined(SPARSEATTN_WITH_CUDA)
#define SA_CUDA_FN(name) [](const auto& problem) { sa::cuda::name(problem); }
#else
#define SA_CUDA_FN(name) [](const auto&) {}
#endif
#define SA_CPU_FN(name) [](const auto& problem) { sa::cpu::name(problem); }

// Keys seen by the queries of a causal dilation group of `length` tokens: sum over u of
// u + 1 - start(u), where the window rule (neighborhood_window.h) starts the windows of a
// stride block b at max((b + 1) * s - k, 0) and those of a partial last block at length - k.
// In closed form, so grids near INT32_MAX cost nothing; tests check it query by query.
int64_t causal_group_pairs(int64_t length, int64_t k, int64_t s) {
    const int64_t full = length / s;  // stride blocks of s queries
    const int64_t first = k / s;      // first block whose windows do not start at 0
    int64_t starts = 0;
    if (full > first) {
        const int64_t blocks_plus_one = (full * (full + 1) - first * (first + 1)) / 2;
        starts = s * s * blocks_plus_one - s * k * (full - first);
    }
    starts += (length - full * s) * (length - k);
    return length * (length + 1) / 2 - starts;
}

// Pairs along one dim: non-causal windows always hold k keys; causal ones depend on the
// group length, of which there are two (L div d + 1 for the first L mod d groups).
int64_t pairs_along_dim(int64_t length, int64_t k, int64_t d, int64_t s, bool causal) {
    if (!causal) return length * k;
    const int64_t q = length / d, r = length % d;
    return r * causal_group_pairs(q + 1, k, s) + (d - r) * causal_group_pairs(q, k, s);
}

void require_pointer(const void* p, const char* name) {
    if (p == nullptr) sa::fail_invalid("%s: pointer is NULL", name);
}

}  // namespace

extern "C" {

/* Capabilities ------------------------------------------------------------------------------ */

SA_API int32_t sa_backend_built(int32_t backend) {
    switch (backend) {
        case SA_BACKEND_CPU: return 1;
        case SA_BACKEND_CUDA:
#if defined(SPARSEATTN_WITH_CUDA)
            return 1;
#else
            return 0;
#endif
    }
    return 0;
}

SA_API const char* sa_cpu_isa(void) { return sa::cpu::active_isa_name(); }

SA_API sa_status sa_cuda_device_count(int32_t* count) {
    return sa::guard([&] {
        require_pointer(count, "count");
#if defined(SPARSEATTN_WITH_CUDA)
        *count = sa::cuda::device_count();
#else
        *count = 0;
#endif
    });
}

SA_API sa_status sa_cuda_device_info(int32_t device, sa_device_info* info) {
    return sa::guard([&] {
        require_pointer(info, "info");
        sa::require_cuda_device(device, "device");
#if defined(SPARSEATTN_WITH_CUDA)
        std::memset(info, 0, sizeof *info);
        sa::cuda::device_info(device, info);
#endif
    });
}

SA_API sa_status sa_fast_path_covered(int32_t op, int32_t device, int32_t dtype,
                                      int32_t head_dim, int32_t* covered) {
    return sa::guard([&] {
        require_pointer(covered, "covered");
        *covered = 0;
        if (op != SA_OP_DENSE && op != SA_OP_NEIGHBORHOOD && op != SA_OP_BLOCK_SPARSE)
            sa::fail_invalid("op: %d is not a valid sa_operation", static_cast<int>(op));
        if (dtype < SA_DTYPE_F32 || dtype > SA_DTYPE_BOOL)
            sa::fail_invalid("dtype: %d is not a valid sa_dtype", static_cast<int>(dtype));
        // A negative device names the CPU, which has no tensor-core kernels.
        if (device < 0) return;
        sa::require_cuda_device(device, "device");
#if defined(SPARSEATTN_WITH_CUDA)
        *covered = sa::cuda::fast_path_covered(static_cast<sa_operation>(op), device,
                                               static_cast<sa_dtype>(dtype), head_dim)
                       ? 1
                       : 0;
#else
        (void)head_dim;
#endif
    });
}

/* Device memory and streams ------------------------------------------------------------------ */

SA_API sa_status sa_cuda_malloc(int32_t device, size_t bytes, void** ptr) {
    return sa::guard([&] {
        require_pointer(ptr, "ptr");
        *ptr = nullptr;
        sa::require_cuda_device(device, "device");
#if defined(SPARSEATTN_WITH_CUDA)
        *ptr = sa::cuda::malloc_device(device, bytes);
#endif
    });
}

SA_API sa_status sa_cuda_free(int32_t device, void* ptr) {
    return sa::guard([&] {
        sa::require_cuda_device(device, "device");
#if defined(SPARSEATTN_WITH_CUDA)
        if (ptr != nullptr) sa::cuda::free_device(device, ptr);
#endif
    });
}

SA_API sa_status sa_cuda_memcpy(void* dst, const void* src, size_t bytes, int32_t kind,
                                void* stream) {
    return sa::guard([&] {
#if defined(SPARSEATTN_WITH_CUDA)
        if (kind != SA_COPY_HOST_TO_DEVICE && kind != SA_COPY_DEVICE_TO_HOST &&
            kind != SA_COPY_DEVICE_TO_DEVICE)
            sa::fail_invalid("kind: %d is not a valid sa_copy_kind", static_cast<int>(kind));
        if (bytes == 0) return;
        require_pointer(dst, "dst");
        require_pointer(src, "src");
        sa::cuda::memcpy(dst, src, bytes, static_cast<sa_copy_kind>(kind), stream);
#else
        cuda_not_built("sa_cuda_memcpy");
#endif
    });
}

SA_API sa_status sa_cuda_memset(void* dst, int32_t byte_value, size_t bytes, void* stream) {
    return sa::guard([&] {
#if defined(SPARSEATTN_WITH_CUDA)
        if (bytes == 0) return;
        require_pointer(dst, "dst");
        sa::cuda::memset(dst, byte_value, bytes, stream);
#else
        cuda_not_built("sa_cuda_memset");
#endif
    });
}

SA_API sa_status sa_cuda_stream_create(int32_t device, void** stream) {
    return sa::guard([&] {
        require_pointer(stream, "stream");
        *stream = nullptr;
        sa::require_cuda_device(device, "device");
#if defined(SPARSEATTN_WITH_CUDA)
        *stream = sa::cuda::stream_create(device);
#endif
    });
}

SA_API sa_status sa_cuda_stream_synchronize(void* stream) {
    return sa::guard([&] {
#if defined(SPARSEATTN_WITH_CUDA)
        sa::cuda::stream_synchronize(stream);
#else
        cuda_not_built("sa_cuda_stream_synchronize");
#endif
    });
}

SA_API sa_status sa_cuda_stream_destroy(void* stream) {
    return sa::guard([&] {
#if defined(SPARSEATTN_WITH_CUDA)
        if (stream != nullptr) sa::cuda::stream_destroy(stream);
#else
        cuda_not_built("sa_cuda_stream_destroy");
#endif
    });
}

SA_API sa_status sa_cuda_device_synchronize(int32_t device) {
    return sa::guard([&] {
        sa::require_cuda_device(device, "device");
#if defined(SPARSEATTN_WITH_CUDA)
        sa::cuda::device_synchronize(device);
#endif
    });
}

/* Options ------------------------------------------------------------------------------------ */

SA_API void sa_attention_options_init(sa_attention_options* options) {
    if (options == nullptr) return;
    std::memset(options, 0, sizeof *options);
    options->scale = 0.0f;
    options->causal = 0;
    options->causal_alignment = SA_CAUSAL_BOTTOM_RIGHT;
    options->stream = nullptr;
    options->kernel = SA_KERNEL_AUTO;
    options->num_splits = 0;
    options->workspace = nullptr;
    options->workspace_bytes = 0;
    options->num_threads = 0;
}

SA_API void sa_neighborhood_params_init(sa_neighborhood_params* params, int32_t rank) {
    if (params == nullptr) return;
    std::memset(params, 0, sizeof *params);
    params->spatial_rank = rank;
    for (int i = 0; i < SA_MAX_SPATIAL_DIMS; ++i) {
        params->grid[i] = 1;
        params->kernel[i] = 1;
        params->dilation[i] = 1;
        params->stride[i] = 1;
        params->causal[i] = 0;
    }
}

SA_API void sa_pbs_options_init(sa_pbs_options* options) {
    if (options == nullptr) return;
    std::memset(options, 0, sizeof *options);
    options->block = 128;
    options->segment = 256;
    options->tau = 0.9f;
    options->scale = 0.0f;
    options->stream = nullptr;
    options->permute_keys = 1;
}

/* Attention ---------------------------------------------------------------------------------- */

SA_API sa_status sa_dense_forward(const sa_tensor* q, const sa_tensor* k, const sa_tensor* v,
                                  sa_tensor* out, sa_tensor* lse,
                                  const sa_attention_options* options) {
    return sa::guard([&] {
        const sa::AttentionProblem p = sa::validate_dense(q, k, v, out, lse, options);
        dispatch(p, SA_CPU_FN(dense_forward), SA_CUDA_FN(dense_forward));
    });
}

SA_API sa_status sa_dense_forward_varlen(const sa_tensor* q, const sa_tensor* k,
                                         const sa_tensor* v, sa_tensor* out, sa_tensor* lse,
                                         const sa_tensor* cu_seqlens_q,
                                         const sa_tensor* cu_seqlens_k, int32_t max_seqlen_q,
                                         int32_t max_seqlen_k,
                                         const sa_attention_options* options) {
    return sa::guard([&] {
        const sa::AttentionProblem p =
            sa::validate_dense_varlen(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k,
                                      max_seqlen_q, max_seqlen_k, options);
        dispatch(p, SA_CPU_FN(dense_forward), SA_CUDA_FN(dense_forward));
    });
}

SA_API sa_status sa_dense_workspace_size(const sa_tensor* q, const sa_tensor* k,
                                         const sa_attention_options* options, size_t* bytes) {
    return sa::guard([&] {
        require_pointer(bytes, "bytes");
        *bytes = 0;
        const sa::AttentionProblem p = sa::validate_dense_shapes(q, k, options);
#if defined(SPARSEATTN_WITH_CUDA)
        if (p.device_type == SA_DEVICE_CUDA) *bytes = sa::cuda::dense_workspace_size(p);
#else
        (void)p;
#endif
    });
}

SA_API sa_status sa_lse_merge(const sa_tensor* o1, const sa_tensor* lse1, const sa_tensor* o2,
                              const sa_tensor* lse2, sa_tensor* out, sa_tensor* lse_out,
                              void* stream) {
    return sa::guard([&] {
        const sa::MergeProblem m = sa::validate_merge(o1, lse1, o2, lse2, out, lse_out, stream);
        dispatch(m, SA_CPU_FN(lse_merge), SA_CUDA_FN(lse_merge));
    });
}

SA_API sa_status sa_neighborhood_forward(const sa_tensor* q, const sa_tensor* k,
                                         const sa_tensor* v, sa_tensor* out, sa_tensor* lse,
                                         const sa_neighborhood_params* params,
                                         const sa_attention_options* options) {
    return sa::guard([&] {
        const sa::AttentionProblem p =
            sa::validate_neighborhood(q, k, v, out, lse, params, options);
        dispatch(p, SA_CPU_FN(neighborhood_forward), SA_CUDA_FN(neighborhood_forward));
    });
}

namespace {

// Scratch of the additional-keys call for queries [B, S, H, D]: the partial output of the
// additional keys (the queries' dtype), then the LSEs of both parts, each 256-byte aligned.
struct ExtraKvScratch {
    size_t o_bytes = 0, lse_bytes = 0;
    size_t total() const { return o_bytes + 2 * lse_bytes; }
};

size_t align256(size_t x) { return (x + 255) / 256 * 256; }

ExtraKvScratch extra_kv_scratch(const sa_tensor* q) {
    // check_tensor has checked that the tensor's byte extent fits: these products do too.
    sa::check::check_tensor(q, "q", 4, "[B, S, H, D]");
    const size_t B = size_t(q->shape[0]), S = size_t(q->shape[1]), H = size_t(q->shape[2]), D = size_t(q->shape[3]);
    ExtraKvScratch s;
    s.o_bytes = align256(B * S * H * D * size_t(sa::check::dtype_size(q->dtype)));
    s.lse_bytes = align256(B * H * S * sizeof(float));
    return s;
}

sa_tensor scratch_tensor(void* data, int32_t dtype, const sa_tensor* like, std::initializer_list<int64_t> shape) {
    sa_tensor t;
    std::memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.device_type = like->device_type;
    t.device_id = like->device_id;
    t.rank = static_cast<int32_t>(shape.size());
    int64_t stride = 1, i = t.rank - 1;
    const int64_t* dims = shape.begin();
    for (; i >= 0; --i) {
        t.shape[i] = dims[i];
        t.strides[i] = stride;
        stride *= dims[i];
    }
    return t;
}

}  // namespace

SA_API sa_status sa_neighborhood_extra_kv_workspace_size(const sa_tensor* q, size_t* bytes) {
    return sa::guard([&] {
        require_pointer(bytes, "bytes");
        *bytes = 0;
        *bytes = extra_kv_scratch(q).total();
    });
}

SA_API sa_status sa_neighborhood_forward_extra_kv(const sa_tensor* q, const sa_tensor* k,
                                                  const sa_tensor* v, const sa_tensor* extra_k,
                                                  const sa_tensor* extra_v, sa_tensor* out,
                                                  sa_tensor* lse,
                                                  const sa_neighborhood_params* params,
                                                  const sa_attention_options* options) {
    return sa::guard([&] {
        require_pointer(options, "options");
        if (!sa::check::present(extra_k) || !sa::check::present(extra_v))
            sa::fail_invalid("extra_k and extra_v are required (sa_neighborhood_forward has no additional keys)");
        // Both parts validated before anything runs: the window part on out (with the caller's
        // lse), the additional keys against q and out (shapes, devices, overlaps), first under
        // their own names.
        sa::validate_neighborhood(q, k, v, out, lse, params, options);
        {
            namespace c = sa::check;
            const c::View vq = c::check_tensor(q, "q", 4, "[B, S, H, D]");
            const c::View vk = c::check_tensor(extra_k, "extra_k", 4, "[B, S_extra, H_extra, D]");
            const c::View vv = c::check_tensor(extra_v, "extra_v", 4, "[B, S_extra, H_extra, D]");
            c::require_same_dtype(vk, vq);
            c::require_same_dtype(vv, vq);
            c::require_same_device(vk, vq);
            c::require_same_device(vv, vq);
            const int64_t he = extra_k->shape[2];
            c::require_shape(vk, {q->shape[0], extra_k->shape[1], he, q->shape[3]}, "[B, S_extra, H_extra, D] (B and D of q)");
            c::require_shape(vv, {q->shape[0], extra_k->shape[1], he, q->shape[3]}, "[B, S_extra, H_extra, D] (extra_k's shape)");
            if (he < 1 || q->shape[2] % he != 0)
                sa::fail_invalid("extra_k: %lld heads must divide the %lld query heads", static_cast<long long>(he),
                                 static_cast<long long>(q->shape[2]));
        }
        sa_attention_options inner = *options;
        inner.workspace = nullptr;
        inner.workspace_bytes = 0;
        sa::validate_dense(q, extra_k, extra_v, out, lse, &inner);
        const ExtraKvScratch need = extra_kv_scratch(q);
        std::vector<unsigned char> host;
        unsigned char* base = static_cast<unsigned char*>(options->workspace);
        if (base == nullptr || options->workspace_bytes < need.total()) {
            if (q->device_type != SA_DEVICE_CPU)
                sa::fail_invalid("options->workspace: a CUDA call with additional keys needs %zu bytes of device "
                                 "workspace (sa_neighborhood_extra_kv_workspace_size), got %zu",
                                 need.total(), base == nullptr ? size_t(0) : options->workspace_bytes);
            host.resize(need.total() + 16);
            base = host.data();
        }
        if (host.empty() && reinterpret_cast<uintptr_t>(base) % 16 != 0)
            sa::fail_invalid("options->workspace must be 16-byte aligned");
        base = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(base) + 15) / 16 * 16);
        const int64_t B = q->shape[0], S = q->shape[1], H = q->shape[2], D = q->shape[3];
        sa_tensor o2 = scratch_tensor(base, q->dtype, q, {B, S, H, D});
        sa_tensor lse1 = scratch_tensor(base + need.o_bytes, SA_DTYPE_F32, q, {B, H, S});
        sa_tensor lse2 = scratch_tensor(base + need.o_bytes + need.lse_bytes, SA_DTYPE_F32, q, {B, H, S});
        // The window part writes out and lse1, the additional keys o2 and lse2; the merge
        // rewrites out (and the caller's lse) in place.
        const sa::AttentionProblem p1 = sa::validate_neighborhood(q, k, v, out, &lse1, params, &inner);
        const sa::AttentionProblem p2 = sa::validate_dense(q, extra_k, extra_v, &o2, &lse2, &inner);
        const sa::MergeProblem m = sa::validate_merge(out, &lse1, &o2, &lse2, out, lse, options->stream);
        dispatch(p1, SA_CPU_FN(neighborhood_forward), SA_CUDA_FN(neighborhood_forward));
        dispatch(p2, SA_CPU_FN(dense_forward), SA_CUDA_FN(dense_forward));
        dispatch(m, SA_CPU_FN(lse_merge), SA_CUDA_FN(lse_merge));
    });
}

SA_API sa_status sa_neighborhood_window(int32_t u, int32_t group_length, int32_t kernel,
                                        int32_t stride, int32_t causal, int32_t* start,
                                        int32_t* end) {
    return sa::guard([&] {
        require_pointer(start, "start");
        require_pointer(end, "end");
        if (group_length < 1)
            sa::fail_invalid("group_length must be >= 1, got %d", group_length);
        if (u < 0 || u >= group_length)
            sa::fail_invalid("u must be in [0, group_length = %d), got %d", group_length, u);
        if (kernel < 1 || kernel > group_length)
            sa::fail_invalid("kernel must be in 1..group_length (%d), got %d", group_length,
                             kernel);
        if (stride < 1 || stride > kernel)
            sa::fail_invalid("stride must be in 1..kernel (%d), got %d", kernel, stride);
        if (causal != 0 && causal != 1) sa::fail_invalid("causal must be 0 or 1, got %d", causal);
        const sa::KeyRange r = sa::neighborhood_window(u, group_length, kernel, stride, causal);
        *start = r.start;
        *end = r.end;
    });
}

SA_API sa_status sa_neighborhood_pair_count(const sa_neighborhood_params* params,
                                            int64_t* pairs) {
    return sa::guard([&] {
        require_pointer(pairs, "pairs");
        const sa::NeighborhoodGeometry g = sa::validate_neighborhood_params(params);
        // The mask is an AND over dims, so the pair count is the product of per-dim counts.
        int64_t total = 1;
        for (int32_t dim = 0; dim < g.rank; ++dim) {
            const int64_t along = pairs_along_dim(g.grid[dim], g.kernel[dim], g.dilation[dim],
                                                  g.stride[dim], g.causal[dim] != 0);
            if (sa::mul_overflows(total, along, &total))
                sa::fail_invalid("params: pair count overflows int64");
        }
        *pairs = total;
    });
}

namespace {
int32_t log2_of_power(int32_t v, const char* name) {
    if (v < 1 || (v & (v - 1)) != 0 || v > (1 << 20))
        sa::fail_invalid("%s: must be a power of two in [1, 2^20], got %d", name, v);
    int32_t s = 0;
    while ((1 << s) < v) ++s;
    return s;
}

// Box sides given by the caller: powers of two whose product is the tile volume.
void read_box(const int32_t* box, int32_t rank, int32_t volume_log2, const char* name, int32_t (&shift)[3]) {
    int32_t total = 0;
    for (int32_t d = 0; d < 3; ++d) {
        const int32_t side = d < rank ? box[d] : 1;
        if (d >= rank && box[d] != 1) sa::fail_invalid("%s[%d]: must be 1 past spatial_rank, got %d", name, d, box[d]);
        shift[d] = log2_of_power(side, name);
        total += shift[d];
    }
    if (total != volume_log2)
        sa::fail_invalid("%s: the product of the sides must be %d, got 2^%d", name, 1 << volume_log2, total);
}
}  // namespace

SA_API sa_status sa_neighborhood_estimate_tiles(const sa_neighborhood_params* params, int32_t tile_rows,
                                                int32_t tile_keys, const int32_t* q_box, const int32_t* k_box,
                                                sa_neighborhood_estimate* estimate) {
    return sa::guard([&] {
        require_pointer(estimate, "estimate");
        const sa::NeighborhoodGeometry g = sa::validate_neighborhood_params(params);
        const int32_t rows_log2 = log2_of_power(tile_rows, "tile_rows");
        const int32_t keys_log2 = log2_of_power(tile_keys, "tile_keys");
        sa::NeighborhoodTileShape shape = sa::best_neighborhood_tiles(g, rows_log2, keys_log2, sa::kNeighborhoodMaskCost);
        if (q_box != nullptr) read_box(q_box, g.rank, rows_log2, "q_box", shape.q_shift);
        if (k_box != nullptr) read_box(k_box, g.rank, keys_log2, "k_box", shape.k_shift);
        const sa::NeighborhoodTileCount n = sa::neighborhood_tile_count(g, shape);
        double tokens = 1, pairs = 1;
        for (int32_t d = 0; d < 3; ++d) {
            tokens *= double(g.grid[d]);
            double along = 0;
            for (int32_t x = 0; x < g.grid[d]; ++x) {
                const int32_t lg = sa::dilation_group_length(g.grid[d], g.dilation[d], x % g.dilation[d]);
                const sa::KeyRange r =
                    sa::neighborhood_window(x / g.dilation[d], lg, g.kernel[d], g.stride[d], g.causal[d] != 0);
                along += double(r.end - r.start);
            }
            pairs *= along;
        }
        std::memset(estimate, 0, sizeof(*estimate));
        for (int32_t d = 0; d < 3; ++d) {
            estimate->q_box[d] = 1 << shape.q_shift[d];
            estimate->k_box[d] = 1 << shape.k_shift[d];
        }
        estimate->query_tiles = n.query_tiles;
        estimate->tiles_visited = n.visited_tiles;
        estimate->masked_fraction = n.visited_tiles > 0 ? (n.visited_tiles - n.full_tiles) / n.visited_tiles : 0.0;
        estimate->dense_tiles = std::ceil(tokens / tile_rows) * std::ceil(tokens / tile_keys);
        estimate->pair_bound_speedup = pairs > 0 ? tokens * tokens / pairs : 0.0;
        estimate->tile_bound_speedup = n.visited_tiles > 0 ? estimate->dense_tiles / n.visited_tiles : 0.0;
        // Time in unmasked key tiles: every work tile's own cost, plus its key tiles (masked ones
        // and, for 2-D/3-D boxes, box rows costing more). Dense runs ceil(tokens / tile_rows)
        // work tiles of contiguous rows, unmasked.
        const double dense_work = std::ceil(tokens / tile_rows);
        const double box_rows = g.rank > 1 ? 1.0 + sa::kNeighborhoodBoxRowCost : 1.0;
        const double na_time = n.visited_tiles * box_rows * (1.0 + sa::kNeighborhoodMaskCost * estimate->masked_fraction) +
                               sa::kNeighborhoodWorkTileCost * n.query_tiles;
        const double dense_time = estimate->dense_tiles + sa::kNeighborhoodWorkTileCost * dense_work;
        estimate->predicted_speedup = n.visited_tiles > 0 ? dense_time / na_time : 0.0;
    });
}

/* Block-sparse -------------------------------------------------------------------------------- */

SA_API sa_status sa_block_sparse_forward(const sa_tensor* q, const sa_tensor* k,
                                         const sa_tensor* v, sa_tensor* out, sa_tensor* lse,
                                         const sa_block_sparse_params* params,
                                         const sa_attention_options* options) {
    return sa::guard([&] {
        const sa::AttentionProblem p =
            sa::validate_block_sparse(q, k, v, out, lse, params, options);
        dispatch(p, SA_CPU_FN(block_sparse_forward), SA_CUDA_FN(block_sparse_forward));
    });
}

SA_API sa_status sa_block_mask_to_lists(const sa_tensor* dense_mask, sa_tensor* kv_num_blocks,
                                        sa_tensor* kv_indices, void* stream) {
    return sa::guard([&] {
        const sa::MaskConversion c =
            sa::validate_mask_to_lists(dense_mask, kv_num_blocks, kv_indices, stream);
        dispatch(c, SA_CPU_FN(block_mask_to_lists), SA_CUDA_FN(block_mask_to_lists));
    });
}

SA_API sa_status sa_block_lists_to_mask(const sa_tensor* kv_num_blocks,
                                        const sa_tensor* kv_indices, sa_tensor* dense_mask,
                                        void* stream) {
    return sa::guard([&] {
        const sa::MaskConversion c =
            sa::validate_lists_to_mask(kv_num_blocks, kv_indices, dense_mask, stream);
        dispatch(c, SA_CPU_FN(block_lists_to_mask), SA_CUDA_FN(block_lists_to_mask));
    });
}

SA_API sa_status sa_block_sparse_pair_count(int64_t s_q, int64_t s_k, int32_t block_q,
                                            int32_t block_k, int32_t causal,
                                            const sa_tensor* kv_num_blocks,
                                            const sa_tensor* kv_indices, int64_t* pairs) {
    return sa::guard([&] {
        require_pointer(pairs, "pairs");
        *pairs = sa::block_sparse_pair_count(s_q, s_k, block_q, block_k, causal, kv_num_blocks,
                                             kv_indices);
    });
}

/* PBS ---------------------------------------------------------------------------------------- */

SA_API sa_status sa_pbs_plan(const sa_tensor* q, const sa_tensor* k,
                             const sa_pbs_options* options, sa_tensor* key_perm,
                             sa_tensor* kv_num_blocks, sa_tensor* kv_indices) {
    return sa::guard([&] {
        const sa::PbsProblem p =
            sa::validate_pbs(q, k, options, key_perm, kv_num_blocks, kv_indices);
        dispatch(p, SA_CPU_FN(pbs_plan), SA_CUDA_FN(pbs_plan));
    });
}

}  // extern "C"
