using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>Options shared by every attention call.</summary>
public sealed record AttentionOptions
{
    /// <summary>Default options: scale 1/sqrt(D), not causal, default stream, automatic kernel choice.</summary>
    public static AttentionOptions Default { get; } = new();

    /// <summary>Softmax scale, finite and positive; null (the default) means 1/sqrt(D).</summary>
    public float? Scale { get; init; }

    /// <summary>
    /// Dense and block-sparse: causal mask, aligned as <see cref="CausalAlignment"/> says (bottom-right by default:
    /// query i sees key j iff j &lt;= i + S_k - S_q).
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>
    /// Where the causal diagonal sits when S_q != S_k: <see cref="CausalAlignment.BottomRight"/> (the default,
    /// FlashAttention's) or <see cref="CausalAlignment.TopLeft"/> (torch SDPA's is_causal). Used when
    /// <see cref="Causal"/> is true.
    /// </summary>
    public CausalAlignment CausalAlignment { get; init; }

    /// <summary>CUDA stream for device calls (null: the legacy default stream). Ignored on the CPU.</summary>
    public CudaStream? Stream { get; init; }

    /// <summary>CUDA kernel choice: the fast kernel where covered, or always the reference kernel.</summary>
    public KernelChoice Kernel { get; init; }

    /// <summary>Split-KV: 0 = automatic, 1 = no split, n = n splits.</summary>
    public int NumSplits { get; init; }

    /// <summary>CPU backend threads: 0 = all hardware threads.</summary>
    public int NumThreads { get; init; }

    internal void Validate(string parameterName)
    {
        if (Scale is { } scale && !(float.IsFinite(scale) && scale > 0))
        {
            throw new ArgumentOutOfRangeException(parameterName, scale,
                $"{parameterName}.Scale = {scale} must be finite and positive (null means 1/sqrt(D)).");
        }
        if (!Enum.IsDefined(CausalAlignment))
        {
            throw new ArgumentOutOfRangeException(parameterName, CausalAlignment,
                $"{parameterName}.CausalAlignment = {(int)CausalAlignment} is not a CausalAlignment value.");
        }
        if (NumSplits < 0)
        {
            throw new ArgumentOutOfRangeException(parameterName, NumSplits,
                $"{parameterName}.NumSplits = {NumSplits} must be 0 (automatic) or positive.");
        }
        if (NumThreads < 0)
        {
            throw new ArgumentOutOfRangeException(parameterName, NumThreads,
                $"{parameterName}.NumThreads = {NumThreads} must be 0 (all hardware threads) or positive.");
        }
        if (!Enum.IsDefined(Kernel))
        {
            throw new ArgumentOutOfRangeException(parameterName, Kernel,
                $"{parameterName}.Kernel = {(int)Kernel} is not a KernelChoice value.");
        }
    }

    internal sa_attention_options ToNative(bool causalOverride = false)
    {
        return new sa_attention_options
        {
            scale = Scale ?? 0f,
            causal = Causal || causalOverride ? 1 : 0,
            stream = Stream?.Handle ?? 0,
            kernel = (int)Kernel,
            num_splits = NumSplits,
            workspace = 0,
            workspace_bytes = 0,
            num_threads = NumThreads,
            causal_alignment = (int)CausalAlignment,
        };
    }
}
