using System.Runtime.InteropServices;

namespace SparseAttn.Interop;

/// <summary>
/// Every function of <c>sparseattn.h</c>, with the C names verbatim. Pointers are raw; callers pin
/// host memory for the duration of the call; the SparseAttn assembly maps the returned status to its
/// exceptions, with <see cref="NativeMessages.LastError"/> as the message.
/// </summary>
internal static unsafe partial class NativeMethods
{
    /// <summary>Library name the resolver maps to the platform file name.</summary>
    public const string LibraryName = "sparseattn";

    // The resolver must be registered before the first import is bound.
    static NativeMethods() => NativeLibraryResolver.Register();

    /// <summary>Ensures the resolver is registered (runs the static constructor).</summary>
    public static void EnsureResolver() { }

    // Status, errors, version
    [LibraryImport(LibraryName)] public static partial byte* sa_last_error();
    [LibraryImport(LibraryName)] public static partial byte* sa_status_string(sa_status status);
    [LibraryImport(LibraryName)] public static partial byte* sa_version_string();
    [LibraryImport(LibraryName)] public static partial void sa_version(int* major, int* minor, int* patch);

    // Capabilities
    [LibraryImport(LibraryName)] public static partial int sa_backend_built(sa_backend backend);
    [LibraryImport(LibraryName)] public static partial byte* sa_cpu_isa();
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_device_count(int* count);
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_device_info(int device, sa_device_info* info);
    [LibraryImport(LibraryName)]
    public static partial sa_status sa_fast_path_covered(sa_operation op, int device, sa_dtype dtype, int head_dim, int* covered);

    // Device memory and streams
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_malloc(int device, nuint bytes, void** ptr);
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_free(int device, void* ptr);
    [LibraryImport(LibraryName)]
    public static partial sa_status sa_cuda_memcpy(void* dst, void* src, nuint bytes, sa_copy_kind kind, void* stream);
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_memset(void* dst, int byte_value, nuint bytes, void* stream);
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_stream_create(int device, void** stream);
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_stream_synchronize(void* stream);
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_stream_destroy(void* stream);
    [LibraryImport(LibraryName)] public static partial sa_status sa_cuda_device_synchronize(int device);

    // Common options
    [LibraryImport(LibraryName)] public static partial void sa_attention_options_init(sa_attention_options* options);

    // Dense attention
    [LibraryImport(LibraryName)]
    public static partial sa_status sa_dense_forward(sa_tensor* q, sa_tensor* k, sa_tensor* v, sa_tensor* @out,
        sa_tensor* lse, sa_attention_options* options);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_dense_forward_varlen(sa_tensor* q, sa_tensor* k, sa_tensor* v, sa_tensor* @out,
        sa_tensor* lse, sa_tensor* cu_seqlens_q, sa_tensor* cu_seqlens_k, int max_seqlen_q, int max_seqlen_k,
        sa_attention_options* options);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_dense_workspace_size(sa_tensor* q, sa_tensor* k, sa_attention_options* options,
        nuint* bytes);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_lse_merge(sa_tensor* o1, sa_tensor* lse1, sa_tensor* o2, sa_tensor* lse2,
        sa_tensor* @out, sa_tensor* lse_out, void* stream);

    // Generalized neighborhood attention
    [LibraryImport(LibraryName)] public static partial void sa_neighborhood_params_init(sa_neighborhood_params* @params, int rank);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_neighborhood_forward(sa_tensor* q, sa_tensor* k, sa_tensor* v, sa_tensor* @out,
        sa_tensor* lse, sa_neighborhood_params* @params, sa_attention_options* options);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_neighborhood_forward_extra_kv(sa_tensor* q, sa_tensor* k, sa_tensor* v,
        sa_tensor* extra_k, sa_tensor* extra_v, sa_tensor* @out, sa_tensor* lse, sa_neighborhood_params* @params,
        sa_attention_options* options);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_neighborhood_extra_kv_workspace_size(sa_tensor* q, nuint* bytes);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_neighborhood_window(int u, int group_length, int kernel, int stride, int causal,
        int* start, int* end);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_neighborhood_pair_count(sa_neighborhood_params* @params, long* pairs);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_neighborhood_estimate_tiles(sa_neighborhood_params* @params, int tile_rows, int tile_keys,
        int* q_box, int* k_box, sa_neighborhood_estimate* estimate);

    // Block-sparse attention
    [LibraryImport(LibraryName)]
    public static partial sa_status sa_block_sparse_forward(sa_tensor* q, sa_tensor* k, sa_tensor* v, sa_tensor* @out,
        sa_tensor* lse, sa_block_sparse_params* @params, sa_attention_options* options);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_block_mask_to_lists(sa_tensor* dense_mask, sa_tensor* kv_num_blocks,
        sa_tensor* kv_indices, void* stream);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_block_lists_to_mask(sa_tensor* kv_num_blocks, sa_tensor* kv_indices,
        sa_tensor* dense_mask, void* stream);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_block_sparse_pair_count(long s_q, long s_k, int block_q, int block_k, int causal,
        sa_tensor* kv_num_blocks, sa_tensor* kv_indices, long* pairs);

    // Permuted block-sparse planner
    [LibraryImport(LibraryName)] public static partial void sa_pbs_options_init(sa_pbs_options* options);

    [LibraryImport(LibraryName)]
    public static partial sa_status sa_pbs_plan(sa_tensor* q, sa_tensor* k, sa_pbs_options* options, sa_tensor* key_perm,
        sa_tensor* kv_num_blocks, sa_tensor* kv_indices);
}
