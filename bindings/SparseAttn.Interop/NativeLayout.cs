using System.Runtime.CompilerServices;

namespace SparseAttn.Interop;

/// <summary>Sizes of the C structs on 64-bit targets, for checks that the mirrors match the header.</summary>
internal static class NativeLayout
{
    public const int SaTensorSize = 120;
    public const int SaDeviceInfoSize = 296;
    public const int SaAttentionOptionsSize = 48;
    public const int SaNeighborhoodParamsSize = 64;
    public const int SaBlockSparseParamsSize = 8 + 6 * SaTensorSize;
    public const int SaPbsOptionsSize = 32;

    /// <summary>Pairs of (struct name, managed size, expected C size).</summary>
    public static IReadOnlyList<(string Name, int Managed, int Expected)> Sizes() =>
    [
        ("sa_tensor", Unsafe.SizeOf<sa_tensor>(), SaTensorSize),
        ("sa_device_info", Unsafe.SizeOf<sa_device_info>(), SaDeviceInfoSize),
        ("sa_attention_options", Unsafe.SizeOf<sa_attention_options>(), SaAttentionOptionsSize),
        ("sa_neighborhood_params", Unsafe.SizeOf<sa_neighborhood_params>(), SaNeighborhoodParamsSize),
        ("sa_block_sparse_params", Unsafe.SizeOf<sa_block_sparse_params>(), SaBlockSparseParamsSize),
        ("sa_pbs_options", Unsafe.SizeOf<sa_pbs_options>(), SaPbsOptionsSize),
    ];
}
