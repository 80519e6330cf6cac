using System.Runtime.InteropServices;

namespace SparseAttn.Interop;

/// <summary>Mirror of <c>sa_status</c>.</summary>
internal enum sa_status : int
{
    SA_OK = 0,
    SA_ERROR_INVALID_ARGUMENT = 1,
    SA_ERROR_UNSUPPORTED = 2,
    SA_ERROR_CUDA = 3,
    SA_ERROR_OUT_OF_MEMORY = 4,
    SA_ERROR_INTERNAL = 5,
}

/// <summary>Mirror of <c>sa_dtype</c>.</summary>
internal enum sa_dtype : int
{
    SA_DTYPE_F32 = 0,
    SA_DTYPE_F16 = 1,
    SA_DTYPE_BF16 = 2,
    SA_DTYPE_I32 = 3,
    SA_DTYPE_BOOL = 4,
}

/// <summary>Mirror of <c>sa_device_type</c>.</summary>
internal enum sa_device_type : int
{
    SA_DEVICE_CPU = 0,
    SA_DEVICE_CUDA = 1,
}

/// <summary>Mirror of <c>sa_backend</c>.</summary>
internal enum sa_backend : int
{
    SA_BACKEND_CPU = 0,
    SA_BACKEND_CUDA = 1,
}

/// <summary>Mirror of <c>sa_operation</c>.</summary>
internal enum sa_operation : int
{
    SA_OP_DENSE = 0,
    SA_OP_NEIGHBORHOOD = 1,
    SA_OP_BLOCK_SPARSE = 2,
}

/// <summary>Mirror of <c>sa_copy_kind</c>.</summary>
internal enum sa_copy_kind : int
{
    SA_COPY_HOST_TO_DEVICE = 0,
    SA_COPY_DEVICE_TO_HOST = 1,
    SA_COPY_DEVICE_TO_DEVICE = 2,
}

/// <summary>Mirror of <c>sa_kernel_choice</c>.</summary>
internal enum sa_kernel_choice : int
{
    SA_KERNEL_AUTO = 0,
    SA_KERNEL_REFERENCE = 1,
}

/// <summary>Constants of the C header.</summary>
internal static class SaConstants
{
    public const int SA_MAX_RANK = 6;
    public const int SA_MAX_SPATIAL_DIMS = 3;
    public const int DeviceNameLength = 256;
}

/// <summary>Mirror of <c>sa_tensor</c> (120 bytes on 64-bit targets).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct sa_tensor
{
    public void* data;
    public int dtype;
    public int device_type;
    public int device_id;
    public int rank;
    public fixed long shape[SaConstants.SA_MAX_RANK];
    public fixed long strides[SaConstants.SA_MAX_RANK];
}

/// <summary>Mirror of <c>sa_device_info</c> (296 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct sa_device_info
{
    public fixed byte name[SaConstants.DeviceNameLength];
    public int compute_major;
    public int compute_minor;
    public int multiprocessor_count;
    public int reserved;
    public long total_memory_bytes;
    public long l2_cache_bytes;
    public long max_shared_memory_per_block;
}

/// <summary>Mirror of <c>sa_attention_options</c> (48 bytes on 64-bit targets).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct sa_attention_options
{
    public float scale;
    public int causal;
    public nint stream;
    public int kernel;
    public int num_splits;
    public nint workspace;
    public nuint workspace_bytes;
    public int num_threads;
    public int causal_alignment;
}

/// <summary>Mirror of <c>sa_neighborhood_params</c> (64 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct sa_neighborhood_params
{
    public int spatial_rank;
    public fixed int grid[SaConstants.SA_MAX_SPATIAL_DIMS];
    public fixed int kernel[SaConstants.SA_MAX_SPATIAL_DIMS];
    public fixed int dilation[SaConstants.SA_MAX_SPATIAL_DIMS];
    public fixed int stride[SaConstants.SA_MAX_SPATIAL_DIMS];
    public fixed int causal[SaConstants.SA_MAX_SPATIAL_DIMS];
}

/// <summary>Mirror of <c>sa_neighborhood_estimate</c> (80 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct sa_neighborhood_estimate
{
    public fixed int q_box[SaConstants.SA_MAX_SPATIAL_DIMS];
    public fixed int k_box[SaConstants.SA_MAX_SPATIAL_DIMS];
    public double query_tiles;
    public double tiles_visited;
    public double masked_fraction;
    public double dense_tiles;
    public double pair_bound_speedup;
    public double tile_bound_speedup;
    public double predicted_speedup;
}

/// <summary>Mirror of <c>sa_block_sparse_params</c> (728 bytes on 64-bit targets).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct sa_block_sparse_params
{
    public int block_q;
    public int block_k;
    public sa_tensor kv_num_blocks;
    public sa_tensor kv_indices;
    public sa_tensor full_kv_num_blocks;
    public sa_tensor full_kv_indices;
    public sa_tensor key_perm;
    public sa_tensor query_perm;
}

/// <summary>Mirror of <c>sa_pbs_options</c> (32 bytes on 64-bit targets).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct sa_pbs_options
{
    public int block;
    public int segment;
    public float tau;
    public float scale;
    public nint stream;
    public int permute_keys;
}
