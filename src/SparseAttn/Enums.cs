namespace SparseAttn;

/// <summary>Element type of attention tensors (values match <c>sa_dtype</c>).</summary>
public enum DataType
{
    /// <summary>32-bit IEEE float (CPU backend only).</summary>
    Float32 = 0,
    /// <summary>16-bit IEEE half (<see cref="System.Half"/>).</summary>
    Float16 = 1,
    /// <summary>16-bit brain float (<see cref="SparseAttn.BFloat16"/>).</summary>
    BFloat16 = 2,
}

/// <summary>Where a tensor lives.</summary>
public enum DeviceKind
{
    /// <summary>Host memory, computed by the CPU backend.</summary>
    Cpu = 0,
    /// <summary>CUDA device memory, computed by the CUDA backend.</summary>
    Cuda = 1,
}

/// <summary>Which CUDA kernel runs a call.</summary>
public enum KernelChoice
{
    /// <summary>The fast kernel where it covers the call, the reference kernel otherwise.</summary>
    Auto = 0,
    /// <summary>Always the simple reference kernel (the GPU-side oracle).</summary>
    Reference = 1,
    /// <summary>
    /// Like <see cref="Auto"/>, but the fast kernel's portable mma.sync (sm_80) path even on GPUs
    /// that have a newer one (the Hopper wgmma kernel): for comparisons across GPU generations.
    /// </summary>
    Portable = 2,
}

/// <summary>
/// Where the causal diagonal sits when S_q != S_k (values match <c>sa_causal_alignment</c>); the two agree
/// when S_q == S_k.
/// </summary>
public enum CausalAlignment
{
    /// <summary>
    /// Query i sees key j iff j &lt;= i + S_k - S_q: the last query sees every key (FlashAttention's convention;
    /// decoding and chunked prefill with the new queries at the end). With S_q &gt; S_k the first S_q - S_k
    /// queries see no key (output 0, log-sum-exp -inf).
    /// </summary>
    BottomRight = 0,

    /// <summary>
    /// Query i sees key j iff j &lt;= i (torch's scaled_dot_product_attention is_causal, FlexAttention's
    /// q_idx &gt;= kv_idx). On CUDA, packed variable-length calls and block-sparse calls with S_q != S_k do
    /// not support it (<see cref="NotSupportedException"/>); the CPU backend runs every call with it.
    /// </summary>
    TopLeft = 1,
}

/// <summary>Attention families (values match <c>sa_operation</c>).</summary>
public enum AttentionOperation
{
    /// <summary>Dense attention, optionally causal.</summary>
    Dense = 0,
    /// <summary>Generalized neighborhood attention.</summary>
    Neighborhood = 1,
    /// <summary>Block-sparse attention, optionally over permuted keys.</summary>
    BlockSparse = 2,
}
