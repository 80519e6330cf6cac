/*
 * SparseAttn: fused dense, neighborhood and block-sparse attention behind a plain C ABI.
 *
 * Conventions
 *  - Every function returns an sa_status. On failure, sa_last_error() returns a thread-local
 *    message naming the offending argument and its value (or the CUDA error string).
 *  - Tensors are described by sa_tensor: a data pointer, dtype, device, rank, shape and strides.
 *    Strides are in elements; the innermost dimension must be contiguous (stride 1). A stride of
 *    0 broadcasts (allowed for index tensors, not for Q/K/V/O).
 *  - Attention tensors default to the [B, S, H, D] layout. Strides describe any other view
 *    (for example [B, H, S, D] memory seen as [B, S, H, D] with permuted strides).
 *  - LSE tensors are fp32 [B, H, S_q]: the natural log of the sum over allowed keys of
 *    exp(scaled score). A query with no allowed key gets output 0 and LSE -inf.
 *  - GQA/MQA: H_q is a multiple of H_kv; query head h reads kv head h / (H_q / H_kv).
 *  - Enum-valued arguments and fields are int32_t holding an enum's value, so that every value
 *    can be checked (an out-of-range value is refused as an invalid argument).
 *  - No buffer a call writes (outputs, LSE, workspace) may overlap any buffer it reads or writes
 *    otherwise (inputs, index tensors, cu_seqlens), except where a function allows in-place use.
 *  - CUDA calls are asynchronous on the given stream (a cudaStream_t; NULL is the legacy
 *    default stream) unless documented otherwise. They never synchronize the host.
 *
 * Thread safety: every function may be called from any thread. Error messages are per thread.
 */
#ifndef SPARSEATTN_H
#define SPARSEATTN_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(SPARSEATTN_BUILDING)
#    define SA_API __declspec(dllexport)
#  else
#    define SA_API __declspec(dllimport)
#  endif
#else
#  define SA_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status, errors, version                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef enum sa_status {
    SA_OK = 0,
    SA_ERROR_INVALID_ARGUMENT = 1, /* bad shape, dtype, stride, pointer, option or head dim   */
    SA_ERROR_UNSUPPORTED = 2,      /* backend not built, no such device, feature unavailable  */
    SA_ERROR_CUDA = 3,             /* a CUDA runtime call failed; message has the CUDA string  */
    SA_ERROR_OUT_OF_MEMORY = 4,    /* host or device allocation failed                         */
    SA_ERROR_INTERNAL = 5          /* a bug: please report with the message                    */
} sa_status;

/* Message of the last failed call on this thread ("" if none). Valid until the next call. */
SA_API const char* sa_last_error(void);
/* Static name of a status code (an sa_status), e.g. "invalid argument". */
SA_API const char* sa_status_string(int32_t status);

#define SA_VERSION_MAJOR 0
#define SA_VERSION_MINOR 1
#define SA_VERSION_PATCH 0

SA_API const char* sa_version_string(void);
SA_API void sa_version(int32_t* major, int32_t* minor, int32_t* patch);

/* ------------------------------------------------------------------------------------------ */
/* Tensors                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef enum sa_dtype {
    SA_DTYPE_F32 = 0,
    SA_DTYPE_F16 = 1,
    SA_DTYPE_BF16 = 2,
    SA_DTYPE_I32 = 3,
    SA_DTYPE_BOOL = 4 /* one byte per element, 0 = false, anything else = true */
} sa_dtype;

typedef enum sa_device_type {
    SA_DEVICE_CPU = 0,
    SA_DEVICE_CUDA = 1
} sa_device_type;

#define SA_MAX_RANK 6

typedef struct sa_tensor {
    void* data;                    /* NULL together with rank 0 means "absent" where optional */
    int32_t dtype;                 /* sa_dtype */
    int32_t device_type;           /* sa_device_type */
    int32_t device_id;             /* CUDA ordinal; 0 for CPU */
    int32_t rank;
    int64_t shape[SA_MAX_RANK];
    int64_t strides[SA_MAX_RANK];  /* in elements */
} sa_tensor;

/* ------------------------------------------------------------------------------------------ */
/* Capabilities                                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef enum sa_backend {
    SA_BACKEND_CPU = 0,
    SA_BACKEND_CUDA = 1
} sa_backend;

/* 1 if the backend (an sa_backend) was compiled into this library, else 0. */
SA_API int32_t sa_backend_built(int32_t backend);

/* Static name of the instruction set the CPU kernels run at: "baseline" (x86-64 SSE2, or the
   target's default), "avx2" (AVX2 + FMA) or "avx512" (AVX-512F). Chosen once per process from
   the CPU's features; the environment variable SPARSEATTN_CPU_ISA=baseline|avx2|avx512 caps it
   (a level the CPU cannot run is lowered to the best one it can). */
SA_API const char* sa_cpu_isa(void);

/* Number of usable CUDA devices (0 when the CUDA backend is not built or no driver/device). */
SA_API sa_status sa_cuda_device_count(int32_t* count);

typedef struct sa_device_info {
    char name[256];
    int32_t compute_major;
    int32_t compute_minor;
    int32_t multiprocessor_count;
    int32_t reserved;
    int64_t total_memory_bytes;
    int64_t l2_cache_bytes;
    int64_t max_shared_memory_per_block; /* opt-in maximum */
} sa_device_info;

SA_API sa_status sa_cuda_device_info(int32_t device, sa_device_info* info);

typedef enum sa_operation {
    SA_OP_DENSE = 0,
    SA_OP_NEIGHBORHOOD = 1,
    SA_OP_BLOCK_SPARSE = 2
} sa_operation;

/* Sets *covered to 1 when a call of `op` (an sa_operation) with this dtype (an sa_dtype) and
   head dim on `device` runs a fast (tiled tensor-core) kernel, 0 when it falls back to the
   reference kernel. A negative device names the CPU (always 0); a CUDA ordinal needs the CUDA
   backend (SA_ERROR_UNSUPPORTED without it, like every CUDA query). */
SA_API sa_status sa_fast_path_covered(int32_t op, int32_t device, int32_t dtype,
                                      int32_t head_dim, int32_t* covered);

/* ------------------------------------------------------------------------------------------ */
/* Device memory and streams (so callers need no other CUDA binding)                          */
/* ------------------------------------------------------------------------------------------ */

typedef enum sa_copy_kind {
    SA_COPY_HOST_TO_DEVICE = 0,
    SA_COPY_DEVICE_TO_HOST = 1,
    SA_COPY_DEVICE_TO_DEVICE = 2
} sa_copy_kind;

SA_API sa_status sa_cuda_malloc(int32_t device, size_t bytes, void** ptr);
SA_API sa_status sa_cuda_free(int32_t device, void* ptr);
/* Host<->device copies return when the host buffer may be reused (they synchronize the
   stream); device-to-device copies are asynchronous on the stream. */
SA_API sa_status sa_cuda_memcpy(void* dst, const void* src, size_t bytes,
                                int32_t kind /* sa_copy_kind */, void* stream);
SA_API sa_status sa_cuda_memset(void* dst, int32_t byte_value, size_t bytes, void* stream);
SA_API sa_status sa_cuda_stream_create(int32_t device, void** stream);
SA_API sa_status sa_cuda_stream_synchronize(void* stream);
SA_API sa_status sa_cuda_stream_destroy(void* stream);
SA_API sa_status sa_cuda_device_synchronize(int32_t device);

/* ------------------------------------------------------------------------------------------ */
/* Common options                                                                             */
/* ------------------------------------------------------------------------------------------ */

typedef enum sa_kernel_choice {
    SA_KERNEL_AUTO = 0,      /* fast kernel where covered, reference kernel otherwise */
    SA_KERNEL_REFERENCE = 1, /* always the simple reference kernel (the GPU-side oracle) */
    SA_KERNEL_PORTABLE = 2   /* like AUTO, but the fast kernel's mma.sync (sm_80) path even on
                                GPUs that have a newer one (the Hopper wgmma kernel) */
} sa_kernel_choice;

/* Where the causal diagonal sits when S_q != S_k (the two agree when S_q == S_k). */
typedef enum sa_causal_alignment {
    SA_CAUSAL_BOTTOM_RIGHT = 0, /* query i sees key j iff j <= i + (S_k - S_q): FlashAttention's,
                                   the last query sees every key (decoding, chunked prefill) */
    SA_CAUSAL_TOP_LEFT = 1      /* query i sees key j iff j <= i: torch SDPA's is_causal,
                                   FlexAttention's q_idx >= kv_idx */
} sa_causal_alignment;

typedef struct sa_attention_options {
    float scale;               /* 0 means 1/sqrt(D) */
    int32_t causal;            /* dense / block-sparse: causal mask, aligned by causal_alignment */
    void* stream;              /* cudaStream_t for CUDA tensors; ignored on CPU */
    int32_t kernel;            /* sa_kernel_choice */
    int32_t num_splits;        /* split-KV: 0 = automatic, 1 = no split, n = n splits */
    void* workspace;           /* optional device scratch for split-KV; NULL = library cache */
    size_t workspace_bytes;
    int32_t num_threads;       /* CPU backend: 0 = all hardware threads */
    int32_t causal_alignment;  /* sa_causal_alignment, used when causal = 1. CUDA: top-left
                                  runs for dense calls; varlen calls, and block-sparse calls with
                                  S_q != S_k, return SA_ERROR_UNSUPPORTED for it (CPU: all run) */
} sa_attention_options;

/* Fills options with the defaults (scale 0, not causal, bottom-right alignment, default stream,
   automatic choices). */
SA_API void sa_attention_options_init(sa_attention_options* options);

/* ------------------------------------------------------------------------------------------ */
/* Dense attention                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* q [B, S_q, H_q, D], k/v [B, S_k, H_kv, D], out [B, S_q, H_q, D] (same dtype as q),
   lse optional fp32 [B, H_q, S_q] (pass NULL or a tensor with data == NULL to skip).
   All on one device. */
SA_API sa_status sa_dense_forward(const sa_tensor* q, const sa_tensor* k, const sa_tensor* v,
                                  sa_tensor* out, sa_tensor* lse,
                                  const sa_attention_options* options);

/* Packed variable-length batches. q [T_q, H_q, D], k/v [T_k, H_kv, D], out like q,
   lse optional fp32 [H_q, T_q]. cu_seqlens_q / cu_seqlens_k: int32 [B + 1] on the same device,
   non-decreasing, starting at 0, ending at T_q / T_k. max_seqlen_q / max_seqlen_k bound every
   sequence (no host round-trip is made to find them). Causal is bottom-right per sequence. */
SA_API sa_status sa_dense_forward_varlen(const sa_tensor* q, const sa_tensor* k,
                                         const sa_tensor* v, sa_tensor* out, sa_tensor* lse,
                                         const sa_tensor* cu_seqlens_q,
                                         const sa_tensor* cu_seqlens_k, int32_t max_seqlen_q,
                                         int32_t max_seqlen_k,
                                         const sa_attention_options* options);

/* Bytes of device workspace that split-KV may need for this dense call (0 if none). */
SA_API sa_status sa_dense_workspace_size(const sa_tensor* q, const sa_tensor* k,
                                         const sa_attention_options* options, size_t* bytes);

/* Merge two partial results over disjoint key sets: o1/o2/out [B, S, H, D] (any float dtype
   the backend supports, may differ), lse1/lse2/lse_out fp32 [B, H, S]. lse_out may be absent.
   out and lse_out may alias o1/lse1. */
SA_API sa_status sa_lse_merge(const sa_tensor* o1, const sa_tensor* lse1, const sa_tensor* o2,
                              const sa_tensor* lse2, sa_tensor* out, sa_tensor* lse_out,
                              void* stream);

/* ------------------------------------------------------------------------------------------ */
/* Generalized neighborhood attention                                                         */
/* ------------------------------------------------------------------------------------------ */

#define SA_MAX_SPATIAL_DIMS 3

/* Tokens of the sequence axis are a row-major grid of `spatial_rank` dims (the last dim
   fastest), so S = prod(grid). Per dim: kernel k, dilation d, stride s, causal flag.
   Valid: 1 <= s <= k, d >= 1, k*d <= L. Query and key grids are the same (self-attention). */
typedef struct sa_neighborhood_params {
    int32_t spatial_rank;                 /* 1, 2 or 3 */
    int32_t grid[SA_MAX_SPATIAL_DIMS];
    int32_t kernel[SA_MAX_SPATIAL_DIMS];
    int32_t dilation[SA_MAX_SPATIAL_DIMS];
    int32_t stride[SA_MAX_SPATIAL_DIMS];
    int32_t causal[SA_MAX_SPATIAL_DIMS];
} sa_neighborhood_params;

/* Fills params for `rank` dims: grid 1, kernel 1, dilation 1, stride 1, not causal. */
SA_API void sa_neighborhood_params_init(sa_neighborhood_params* params, int32_t rank);

/* q/k/v/out [B, S, H, D] with S = prod(grid); lse optional. options->causal must be 0
   (causality is per dimension in params). */
SA_API sa_status sa_neighborhood_forward(const sa_tensor* q, const sa_tensor* k,
                                         const sa_tensor* v, sa_tensor* out, sa_tensor* lse,
                                         const sa_neighborhood_params* params,
                                         const sa_attention_options* options);

/* Neighborhood attention with additional keys/values (global or text tokens, NATTEN's
   additional_keys): every query also attends to all S_extra rows of extra_k/extra_v
   [B, S_extra, H_kv, D] (H_kv dividing H_q), and out is attention over the union of its window
   and those keys (lse optional: its log-sum-exp). The two parts are computed by the
   neighborhood and dense kernels and merged by log-sum-exp in the same call, on
   options->stream. Scratch: a partial output [B, S, H, D] and two LSEs, in options->workspace
   when it holds sa_neighborhood_extra_kv_workspace_size bytes (16-byte aligned); host calls
   without one allocate it, CUDA calls without one fail (the call allocates no device memory).
   The inner calls run with no workspace: split-KV uses the library's per-stream cache. */
SA_API sa_status sa_neighborhood_forward_extra_kv(const sa_tensor* q, const sa_tensor* k,
                                                  const sa_tensor* v, const sa_tensor* extra_k,
                                                  const sa_tensor* extra_v, sa_tensor* out,
                                                  sa_tensor* lse,
                                                  const sa_neighborhood_params* params,
                                                  const sa_attention_options* options);

/* Bytes of scratch sa_neighborhood_forward_extra_kv needs for queries q [B, S, H, D]. */
SA_API sa_status sa_neighborhood_extra_kv_workspace_size(const sa_tensor* q, size_t* bytes);

/* Host helper: the window [*start, *end) of keys (local indices within the dilation group)
   seen along one dim by the query with local index `u`, for a group of `group_length` tokens.
   Exposed so every layer shares one rule. */
SA_API sa_status sa_neighborhood_window(int32_t u, int32_t group_length, int32_t kernel,
                                        int32_t stride, int32_t causal, int32_t* start,
                                        int32_t* end);

/* Number of (query, key) pairs the configuration allows (for FLOP counts). */
SA_API sa_status sa_neighborhood_pair_count(const sa_neighborhood_params* params,
                                            int64_t* pairs);

/* Tile-level estimate of the fast neighborhood kernels (host only). They tile queries and keys
   with boxes of one dilation group's token grid, box sides powers of two: tile_rows queries and
   tile_keys keys per box (both powers of two; the wgmma kernels use 128 and 128, the mma.sync
   kernels 64 and 64). q_box / k_box (NULL: the shape the kernels choose) give the sides per
   dim, dims past spatial_rank 1. */
typedef struct sa_neighborhood_estimate {
    int32_t q_box[SA_MAX_SPATIAL_DIMS];  /* box sides used */
    int32_t k_box[SA_MAX_SPATIAL_DIMS];
    double query_tiles;         /* work tiles holding at least one query */
    double tiles_visited;       /* (query tile, key tile) pairs computed */
    double masked_fraction;     /* share of the visited tiles that need the per-element mask */
    double dense_tiles;         /* tiles dense attention computes on the same token count */
    double pair_bound_speedup;  /* dense pairs / allowed pairs: the FLOP bound */
    double tile_bound_speedup;  /* dense tiles / visited tiles */
    double predicted_speedup;   /* dense time / neighborhood time in unmasked-tile units: a
                                   masked tile costs 1.3, a tile of 2-D/3-D box rows 1.16x more,
                                   each work tile 3.5 more (on dense too); fitted on the H200's
                                   wgmma loop */
} sa_neighborhood_estimate;

SA_API sa_status sa_neighborhood_estimate_tiles(const sa_neighborhood_params* params,
                                                int32_t tile_rows, int32_t tile_keys,
                                                const int32_t* q_box, const int32_t* k_box,
                                                sa_neighborhood_estimate* estimate);

/* ------------------------------------------------------------------------------------------ */
/* Block-sparse attention, optionally over permuted keys and queries                          */
/* ------------------------------------------------------------------------------------------ */

/* Block lists in the FlexAttention form. nQ = ceil(S_q / block_q), nK = ceil(S_k / block_k).
   kv_num_blocks int32 [B, H_q, nQ]; kv_indices int32 [B, H_q, nQ, C] with C >= the largest
   count; entries past the count are ignored. A stride of 0 broadcasts over B or H.
   full_* (optional, same shapes): blocks the caller promises need no mask; they are computed
   like listed blocks (the result is the same), fast kernels skip per-element masking there.
   A block may appear at most once across both lists.

   key_perm (optional) int32 [B, H_q, S_k]: permuted key position j holds original key
   key_perm[j]; K and V rows are gathered through it and block indices refer to permuted key
   blocks. query_perm (optional) int32 [B, H_q, S_q]: permuted query position i holds original
   query query_perm[i]; block rows refer to permuted query blocks and output row
   query_perm[i] receives the result. Each must be a permutation of 0..S-1.
   options->causal masks on original positions: original query p sees original key t iff
   t <= p + (S_k - S_q) (bottom-right), or t <= p with SA_CAUSAL_TOP_LEFT. */
typedef struct sa_block_sparse_params {
    int32_t block_q;  /* 64 or 128 */
    int32_t block_k;  /* 64 or 128 */
    sa_tensor kv_num_blocks;
    sa_tensor kv_indices;
    sa_tensor full_kv_num_blocks; /* data == NULL: absent */
    sa_tensor full_kv_indices;
    sa_tensor key_perm;           /* data == NULL: identity */
    sa_tensor query_perm;         /* data == NULL: identity */
} sa_block_sparse_params;

SA_API sa_status sa_block_sparse_forward(const sa_tensor* q, const sa_tensor* k,
                                         const sa_tensor* v, sa_tensor* out, sa_tensor* lse,
                                         const sa_block_sparse_params* params,
                                         const sa_attention_options* options);

/* Dense boolean block mask [B, H, nQ, nK] -> kv_num_blocks [B, H, nQ] and kv_indices
   [B, H, nQ, nK] (ascending block indices, the rest filled with -1). Same device for all;
   CUDA conversions run on `stream`. */
SA_API sa_status sa_block_mask_to_lists(const sa_tensor* dense_mask, sa_tensor* kv_num_blocks,
                                        sa_tensor* kv_indices, void* stream);
/* The inverse: lists -> dense boolean mask [B, H, nQ, nK]. */
SA_API sa_status sa_block_lists_to_mask(const sa_tensor* kv_num_blocks,
                                        const sa_tensor* kv_indices, sa_tensor* dense_mask,
                                        void* stream);

/* Number of (query, key) pairs a block list allows (host tensors only), honouring causal and
   ragged ends, with identity permutations. For FLOP counts and density reports. */
SA_API sa_status sa_block_sparse_pair_count(int64_t s_q, int64_t s_k, int32_t block_q,
                                            int32_t block_k, int32_t causal,
                                            const sa_tensor* kv_num_blocks,
                                            const sa_tensor* kv_indices, int64_t* pairs);

/* ------------------------------------------------------------------------------------------ */
/* Permuted block-sparse (PBS) planner for causal prefill                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct sa_pbs_options {
    int32_t block;    /* block size for queries and keys: 64 or 128 (default 128) */
    int32_t segment;  /* permutation segment, a multiple of block (default 256) */
    float tau;        /* cumulative block-score threshold in (0, 1] (default 0.9) */
    float scale;      /* 0 means 1/sqrt(D) */
    void* stream;
    int32_t permute_keys; /* 1 (default): keys sorted by importance within each full segment;
                             0: identity permutation, the same block selection on the keys in
                             their own order (own segment up to the diagonal) */
} sa_pbs_options;

SA_API void sa_pbs_options_init(sa_pbs_options* options);

/* Plans PBS for q [B, S, H_q, D], k [B, S, H_kv, D] (S_q == S_k). Writes
   key_perm int32 [B, H_q, S], kv_num_blocks int32 [B, H_q, nQ], kv_indices int32
   [B, H_q, nQ, nK] (ascending; unused entries -1). Feed them to sa_block_sparse_forward with
   block_q = block_k = block and options->causal = 1. */
SA_API sa_status sa_pbs_plan(const sa_tensor* q, const sa_tensor* k,
                             const sa_pbs_options* options, sa_tensor* key_perm,
                             sa_tensor* kv_num_blocks, sa_tensor* kv_indices);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SPARSEATTN_H */
