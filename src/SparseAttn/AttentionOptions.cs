using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>Options shared by every attention call.</summary>
public sealed record AttentionOptions
{
    /// <summary>Default options: scale 1/sqrt(D), not causal, default stream, automatic kernel choice.</summary>
    public static AttentionOptions Default { get; } = new();

    /// <summary>Softmax scale; 0 means 1/sqrt(D). Otherwise finite and positive.</summary>
    public float Scale { get; init; }

    /// <summary>Dense and block-sparse: bottom-right aligned causal mask (query i sees key j iff j &lt;= i + S_k - S_q).</summary>
    public bool Causal { get; init; }

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
        if (Scale != 0 && !(float.IsFinite(Scale) && Scale > 0))
        {
            throw new ArgumentOutOfRangeException(parameterName, Scale,
                $"{parameterName}.Scale = {Scale} must be 0 (meaning 1/sqrt(D)) or finite and positive.");
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
            scale = Scale,
            causal = Causal || causalOverride ? 1 : 0,
            stream = Stream?.Handle ?? 0,
            kernel = (int)Kernel,
            num_splits = NumSplits,
            workspace = 0,
            workspace_bytes = 0,
            num_threads = NumThreads,
            reserved = 0,
        };
    }
}
