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
