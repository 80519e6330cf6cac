using System.Numerics.Tensors;
using SparseAttn.Interop;

namespace SparseAttn;

public static unsafe partial class Attention
{
    // ---------------------------------------------------------------------------------------------
    // Generalized neighborhood attention
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Generalized neighborhood attention on the CPU: the S tokens form the row-major grid of
    /// <paramref name="config"/> (S = product of the grid), and each query sees the keys of its window
    /// in every dimension. <see cref="AttentionOptions.Causal"/> must be false (causality is per dimension).
    /// </summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags.</param>
    /// <param name="options">Scale, threads; null for the defaults.</param>
    public static void Neighborhood<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, NeighborhoodConfig config, AttentionOptions? options = null) where T : unmanaged =>
        NeighborhoodHost(q, k, v, output, default, false, config, options);

    /// <summary>Generalized neighborhood attention on the CPU, also writing the log-sum-exp.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [B, H_q, S].</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags.</param>
    /// <param name="options">Scale, threads; null for the defaults.</param>
    public static void Neighborhood<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, TensorSpan<float> lse, NeighborhoodConfig config, AttentionOptions? options = null)
        where T : unmanaged =>
        NeighborhoodHost(q, k, v, output, lse, true, config, options);

    /// <summary>Generalized neighborhood attention on a CUDA device.</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags.</param>
    /// <param name="options">Scale, stream, kernel choice; null for the defaults.</param>
    public static void Neighborhood<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        NeighborhoodConfig config, AttentionOptions? options = null) where T : unmanaged =>
        NeighborhoodDevice(q, k, v, output, null, config, options);

    /// <summary>Generalized neighborhood attention on a CUDA device, also writing the log-sum-exp.</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [B, H_q, S].</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags.</param>
    /// <param name="options">Scale, stream, kernel choice; null for the defaults.</param>
    public static void Neighborhood<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        ICudaTensor<float> lse, NeighborhoodConfig config, AttentionOptions? options = null) where T : unmanaged
    {
        Validation.NotNull(lse, nameof(lse));
        NeighborhoodDevice(q, k, v, output, lse, config, options);
    }

    /// <summary>
    /// Generalized neighborhood attention on the CPU with additional keys and values (global or text
    /// tokens): every query attends to the keys of its window and to all rows of
    /// <paramref name="extraKeys"/>, the two parts merged by log-sum-exp in the same native call, so the
    /// result is attention over their union.
    /// </summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="extraKeys">Additional keys [B, S_extra, H_extra, D], H_extra dividing H_q.</param>
    /// <param name="extraValues">Additional values [B, S_extra, H_extra, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags of the window part.</param>
    /// <param name="options">Scale, threads; null for the defaults.</param>
    /// <exception cref="ArgumentException">Shapes that do not match, or <see cref="AttentionOptions.Causal"/> set.</exception>
    public static void NeighborhoodWithExtraKeys<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        ReadOnlyTensorSpan<T> extraKeys, ReadOnlyTensorSpan<T> extraValues, TensorSpan<T> output, NeighborhoodConfig config,
        AttentionOptions? options = null) where T : unmanaged
    {
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cpu);
        options ??= AttentionOptions.Default;
        options.Validate(nameof(options));
        var dims = Validation.Qkvo(new TensorArg(nameof(q), q.Lengths, q.Strides), new TensorArg(nameof(k), k.Lengths, k.Strides),
            new TensorArg(nameof(v), v.Lengths, v.Strides), new TensorArg(nameof(output), output.Lengths, output.Strides),
            DeviceKind.Cpu);
        Validation.Qkvo(new TensorArg(nameof(q), q.Lengths, q.Strides),
            new TensorArg(nameof(extraKeys), extraKeys.Lengths, extraKeys.Strides),
            new TensorArg(nameof(extraValues), extraValues.Lengths, extraValues.Strides),
            new TensorArg(nameof(output), output.Lengths, output.Strides), DeviceKind.Cpu);
        CheckNeighborhood(config, dims, options);
        var parameters = config.ToNative();
        fixed (T* pq = q)
        fixed (T* pk = k)
        fixed (T* pv = v)
        fixed (T* pek = extraKeys)
        fixed (T* pev = extraValues)
        fixed (T* po = output)
        {
            var t = Descriptors.HostAttention(dtype, pq, q, pk, k, pv, v, po, output, null, default, false);
            var ek = Descriptors.Host(pek, dtype, extraKeys.Lengths, extraKeys.Strides);
            var ev = Descriptors.Host(pev, dtype, extraValues.Lengths, extraValues.Strides);
            var native = options.ToNative();
            NativeStatus.Check(NativeMethods.sa_neighborhood_forward_extra_kv(&t.Q, &t.K, &t.V, &ek, &ev, &t.Output, null,
                &parameters, &native), NativeNames.Attention);
        }
    }

    /// <summary>
    /// Generalized neighborhood attention on the GPU with additional keys and values (global or text
    /// tokens), as the host overload: the window part on the neighborhood kernels, the additional keys
    /// on the dense ones, merged by log-sum-exp on the options' stream. The call allocates no device
    /// memory: its scratch is <paramref name="workspace"/>, at least
    /// <see cref="NeighborhoodExtraKeysWorkspaceBytes{T}(ICudaTensor{T})"/> bytes on the same device.
    /// </summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="extraKeys">Additional keys [B, S_extra, H_extra, D], H_extra dividing H_q.</param>
    /// <param name="extraValues">Additional values [B, S_extra, H_extra, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="workspace">Device scratch of at least <see cref="NeighborhoodExtraKeysWorkspaceBytes{T}(ICudaTensor{T})"/> bytes.</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags of the window part.</param>
    /// <param name="options">Scale, stream, kernel choice; null for the defaults.</param>
    /// <exception cref="ArgumentException">Shapes that do not match, <see cref="AttentionOptions.Causal"/> set, or a workspace too small.</exception>
    public static void NeighborhoodWithExtraKeys<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> extraKeys,
        ICudaTensor<T> extraValues, ICudaTensor<T> output, ICudaTensor<byte> workspace, NeighborhoodConfig config,
        AttentionOptions? options = null) where T : unmanaged
    {
        var dims = ValidateDevice(q, k, v, output, null, options);
        ValidateDevice(q, extraKeys, extraValues, output, null, options);
        Validation.NotNull(workspace, nameof(workspace));
        options ??= AttentionOptions.Default;
        CheckNeighborhood(config, dims, options);
        var dtype = ElementTypes.Native<T>();
        var parameters = config.ToNative();
        var t = Descriptors.DeviceAttention(dtype, q, k, v, output, null);
        var ek = Descriptors.Device(extraKeys, dtype);
        var ev = Descriptors.Device(extraValues, dtype);
        var native = options.ToNative();
        native.workspace = workspace.DataPointer;
        native.workspace_bytes = (nuint)Shapes.ElementCount(workspace.Lengths);
        NativeStatus.Check(NativeMethods.sa_neighborhood_forward_extra_kv(&t.Q, &t.K, &t.V, &ek, &ev, &t.Output, null,
            &parameters, &native), NativeNames.Attention);
        GC.KeepAlive(workspace);
    }

    /// <summary>Bytes of device scratch <see cref="NeighborhoodWithExtraKeys{T}(ICudaTensor{T}, ICudaTensor{T}, ICudaTensor{T}, ICudaTensor{T}, ICudaTensor{T}, ICudaTensor{T}, ICudaTensor{byte}, NeighborhoodConfig, AttentionOptions?)"/> needs for queries shaped like <paramref name="q"/>.</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <returns>The workspace size in bytes.</returns>
    public static long NeighborhoodExtraKeysWorkspaceBytes<T>(ICudaTensor<T> q) where T : unmanaged
    {
        Validation.NotNull(q, nameof(q));
        var desc = Descriptors.Device(q, ElementTypes.Native<T>());
        nuint bytes = 0;
        NativeStatus.Check(NativeMethods.sa_neighborhood_extra_kv_workspace_size(&desc, &bytes), NativeNames.Attention);
        return (long)bytes;
    }

    // The additional-keys scratch size for host queries (the same native query as the device overload).
    internal static long NeighborhoodExtraKeysWorkspaceBytes<T>(ReadOnlyTensorSpan<T> q) where T : unmanaged
    {
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cpu);
        fixed (T* pq = q)
        {
            var desc = Descriptors.Host(pq, dtype, q.Lengths, q.Strides);
            nuint bytes = 0;
            NativeStatus.Check(NativeMethods.sa_neighborhood_extra_kv_workspace_size(&desc, &bytes), NativeNames.Attention);
            return (long)bytes;
        }
    }

    private static void CheckNeighborhood(NeighborhoodConfig config, AttentionDims dims, AttentionOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (options.Causal)
        {
            throw new ArgumentException(
                "options.Causal must be false for neighborhood attention: set causality per dimension in the NeighborhoodConfig.",
                nameof(options));
        }
        if (dims.SeqQ != config.SequenceLength || dims.SeqK != config.SequenceLength)
        {
            throw new ArgumentException(
                $"q and k have {dims.SeqQ} and {dims.SeqK} tokens but the grid of config has {config.SequenceLength}; " +
                "S must equal the product of the grid.", nameof(config));
        }
    }

    private static void NeighborhoodHost<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, TensorSpan<float> lse, bool hasLse, NeighborhoodConfig config, AttentionOptions? options)
        where T : unmanaged
    {
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cpu);
        options ??= AttentionOptions.Default;
        options.Validate(nameof(options));
        var dims = Validation.Qkvo(new TensorArg(nameof(q), q.Lengths, q.Strides), new TensorArg(nameof(k), k.Lengths, k.Strides),
            new TensorArg(nameof(v), v.Lengths, v.Strides), new TensorArg(nameof(output), output.Lengths, output.Strides),
            DeviceKind.Cpu);
        if (hasLse)
        {
            Validation.Lse(new TensorArg(nameof(lse), lse.Lengths, lse.Strides), dims);
        }
        CheckNeighborhood(config, dims, options);
        var parameters = config.ToNative();
        fixed (T* pq = q)
        fixed (T* pk = k)
        fixed (T* pv = v)
        fixed (T* po = output)
        fixed (float* pl = lse)
        {
            var t = Descriptors.HostAttention(dtype, pq, q, pk, k, pv, v, po, output, pl, lse, hasLse);
            var native = options.ToNative();
            NativeStatus.Check(NativeMethods.sa_neighborhood_forward(&t.Q, &t.K, &t.V, &t.Output, t.HasLse ? &t.Lse : null, &parameters,
                &native), NativeNames.Attention);
        }
    }

    private static void NeighborhoodDevice<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        ICudaTensor<float>? lse, NeighborhoodConfig config, AttentionOptions? options) where T : unmanaged
    {
        var dims = ValidateDevice(q, k, v, output, lse, options);
        options ??= AttentionOptions.Default;
        CheckNeighborhood(config, dims, options);
        var dtype = ElementTypes.Native<T>();
        var parameters = config.ToNative();
        var t = Descriptors.DeviceAttention(dtype, q, k, v, output, lse);
        var native = options.ToNative();
        NativeStatus.Check(NativeMethods.sa_neighborhood_forward(&t.Q, &t.K, &t.V, &t.Output, t.HasLse ? &t.Lse : null, &parameters,
            &native), NativeNames.Attention);
    }

    // ---------------------------------------------------------------------------------------------
    // Block-sparse attention
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Block-sparse attention on the CPU: each query block attends to the key blocks listed in
    /// <paramref name="mask"/>, minus pairs that causal (on original positions) or the ragged end exclude.
    /// Keys may be permuted first (<paramref name="keyPermutation"/>: permuted position j holds original
    /// key keyPermutation[j]; block indices then refer to permuted key blocks), and so may queries.
    /// </summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="output">Result [B, S_q, H_q, D], in original query order.</param>
    /// <param name="mask">Block lists; block sizes 64 or 128.</param>
    /// <param name="options">Scale, causal flag, threads; null for the defaults.</param>
    /// <param name="keyPermutation">Empty (identity), or a flat span of S_k entries (shared by every batch and head)
    /// or of B * H_q * S_k entries (one permutation per batch and query head, row-major [B, H_q, S_k]).</param>
    /// <param name="queryPermutation">Empty (identity), or a flat span of S_q or B * H_q * S_q entries (as for keys).</param>
    public static void BlockSparse<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, BlockMask mask, AttentionOptions? options = null, ReadOnlySpan<int> keyPermutation = default,
        ReadOnlySpan<int> queryPermutation = default) where T : unmanaged =>
        BlockSparseHost(q, k, v, output, default, false, mask, options, keyPermutation, queryPermutation);

    /// <summary>Block-sparse attention on the CPU, also writing the log-sum-exp.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="output">Result [B, S_q, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [B, H_q, S_q].</param>
    /// <param name="mask">Block lists; block sizes 64 or 128.</param>
    /// <param name="options">Scale, causal flag, threads; null for the defaults.</param>
    /// <param name="keyPermutation">Empty (identity), or a flat span of S_k (shared) or B * H_q * S_k entries (row-major [B, H_q, S_k]).</param>
    /// <param name="queryPermutation">Empty (identity), or a flat span of S_q or B * H_q * S_q entries.</param>
    public static void BlockSparse<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, TensorSpan<float> lse, BlockMask mask, AttentionOptions? options = null,
        ReadOnlySpan<int> keyPermutation = default, ReadOnlySpan<int> queryPermutation = default) where T : unmanaged =>
        BlockSparseHost(q, k, v, output, lse, true, mask, options, keyPermutation, queryPermutation);

    /// <summary>Block-sparse attention on a CUDA device.</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="output">Result [B, S_q, H_q, D].</param>
    /// <param name="mask">Block lists on the same device.</param>
    /// <param name="options">Scale, causal flag, stream, kernel choice; null for the defaults.</param>
    /// <param name="keyPermutation">Null (identity), int32 [S_k] or [B, H_q, S_k] on the device; a per-head
    /// permutation must carry its 3-D shape (a flat [B * H_q * S_k] tensor is refused).</param>
    /// <param name="queryPermutation">Null (identity), int32 [S_q] or [B, H_q, S_q] on the device.</param>
    public static void BlockSparse<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        DeviceBlockMask mask, AttentionOptions? options = null, ICudaTensor<int>? keyPermutation = null,
        ICudaTensor<int>? queryPermutation = null) where T : unmanaged =>
        BlockSparseDevice(q, k, v, output, null, mask, options, keyPermutation, queryPermutation);

    /// <summary>Block-sparse attention on a CUDA device, also writing the log-sum-exp.</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="output">Result [B, S_q, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [B, H_q, S_q].</param>
    /// <param name="mask">Block lists on the same device.</param>
    /// <param name="options">Scale, causal flag, stream, kernel choice; null for the defaults.</param>
    /// <param name="keyPermutation">Null (identity), int32 [S_k] or [B, H_q, S_k] on the device; a per-head
    /// permutation must carry its 3-D shape (a flat [B * H_q * S_k] tensor is refused).</param>
    /// <param name="queryPermutation">Null (identity), int32 [S_q] or [B, H_q, S_q] on the device.</param>
    public static void BlockSparse<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        ICudaTensor<float> lse, DeviceBlockMask mask, AttentionOptions? options = null,
        ICudaTensor<int>? keyPermutation = null, ICudaTensor<int>? queryPermutation = null) where T : unmanaged
    {
        Validation.NotNull(lse, nameof(lse));
        BlockSparseDevice(q, k, v, output, lse, mask, options, keyPermutation, queryPermutation);
    }

    private static void CheckMask(BlockMask mask, AttentionDims dims)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (mask.BlockQ is not (64 or 128) || mask.BlockK is not (64 or 128))
        {
            throw new ArgumentException(
                $"mask has blocks of {mask.BlockQ} x {mask.BlockK}; block-sparse attention takes 64 or 128 rows per block.",
                nameof(mask));
        }
        var queryBlocks = (dims.SeqQ + mask.BlockQ - 1) / mask.BlockQ;
        var keyBlocks = (dims.SeqK + mask.BlockK - 1) / mask.BlockK;
        if (mask.QueryBlocks != queryBlocks || mask.KeyBlocks != keyBlocks)
        {
            throw new ArgumentException(
                $"mask has {mask.QueryBlocks} x {mask.KeyBlocks} blocks but S_q = {dims.SeqQ} and S_k = {dims.SeqK} with " +
                $"blocks of {mask.BlockQ} x {mask.BlockK} need {queryBlocks} x {keyBlocks}.", nameof(mask));
        }
        if (mask.Batch != 1 && mask.Batch != dims.Batch)
        {
            throw new ArgumentException($"mask has batch {mask.Batch}; it must be 1 or the batch {dims.Batch} of q.",
                nameof(mask));
        }
        if (mask.Heads != 1 && mask.Heads != dims.HeadsQ)
        {
            throw new ArgumentException($"mask has {mask.Heads} heads; it must be 1 or the {dims.HeadsQ} query heads of q.",
                nameof(mask));
        }
    }

    /// <summary>Lengths and strides of the mask lists as seen by a call (stride 0 where the mask broadcasts).</summary>
    private static (nint[] CountLengths, nint[] CountStrides, nint[] IndexLengths, nint[] IndexStrides) MaskLayout(
        BlockMask mask, AttentionDims dims)
    {
        nint nq = mask.QueryBlocks, nk = mask.KeyBlocks;
        nint headStride = mask.Heads == 1 ? 0 : 1;
        nint batchStride = mask.Batch == 1 ? 0 : 1;
        return ([dims.Batch, dims.HeadsQ, nq],
            [batchStride * mask.Heads * nq, headStride * nq, 1],
            [dims.Batch, dims.HeadsQ, nq, nk],
            [batchStride * mask.Heads * nq * nk, headStride * nq * nk, nk, 1]);
    }

    private static (nint[] Lengths, nint[] Strides) PermutationLayout(int length, AttentionDims dims, int sequence,
        string name)
    {
        if (length == sequence)
        {
            return ([dims.Batch, dims.HeadsQ, sequence], [0, 0, 1]);
        }
        if (length == (long)dims.Batch * dims.HeadsQ * sequence)
        {
            return ([dims.Batch, dims.HeadsQ, sequence], [(nint)dims.HeadsQ * sequence, sequence, 1]);
        }
        throw new ArgumentException(
            $"{name} has {length} entries; it must have S = {sequence} (shared) or B * H_q * S = " +
            $"{(long)dims.Batch * dims.HeadsQ * sequence} entries.", name);
    }

    private static void CheckPermutation(ReadOnlySpan<int> permutation, int sequence, string name)
    {
        var seen = new bool[sequence];
        for (var start = 0; start < permutation.Length; start += sequence)
        {
            Array.Clear(seen);
            for (var i = 0; i < sequence; i++)
            {
                var x = permutation[start + i];
                if ((uint)x >= (uint)sequence || seen[x])
                {
                    throw new ArgumentException(
                        $"{name} is not a permutation of 0..{sequence - 1}: entry {start + i} is {x}" +
                        ((uint)x >= (uint)sequence ? " (out of range)." : " (repeated)."), name);
                }
                seen[x] = true;
            }
        }
    }

    private static void BlockSparseHost<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, TensorSpan<float> lse, bool hasLse, BlockMask mask, AttentionOptions? options,
        ReadOnlySpan<int> keyPermutation, ReadOnlySpan<int> queryPermutation) where T : unmanaged
    {
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cpu);
        options ??= AttentionOptions.Default;
        options.Validate(nameof(options));
        var dims = Validation.Qkvo(new TensorArg(nameof(q), q.Lengths, q.Strides), new TensorArg(nameof(k), k.Lengths, k.Strides),
            new TensorArg(nameof(v), v.Lengths, v.Strides), new TensorArg(nameof(output), output.Lengths, output.Strides),
            DeviceKind.Cpu);
        if (hasLse)
        {
            Validation.Lse(new TensorArg(nameof(lse), lse.Lengths, lse.Strides), dims);
        }
        CheckMask(mask, dims);
        var layout = MaskLayout(mask, dims);
        var hasKeyPerm = !keyPermutation.IsEmpty;
        var hasQueryPerm = !queryPermutation.IsEmpty;
        (nint[] Lengths, nint[] Strides) keyLayout = default, queryLayout = default;
        if (hasKeyPerm)
        {
            keyLayout = PermutationLayout(keyPermutation.Length, dims, dims.SeqK, nameof(keyPermutation));
            CheckPermutation(keyPermutation, dims.SeqK, nameof(keyPermutation));
        }
        if (hasQueryPerm)
        {
            queryLayout = PermutationLayout(queryPermutation.Length, dims, dims.SeqQ, nameof(queryPermutation));
            CheckPermutation(queryPermutation, dims.SeqQ, nameof(queryPermutation));
        }
        fixed (T* pq = q)
        fixed (T* pk = k)
        fixed (T* pv = v)
        fixed (T* po = output)
        fixed (float* pl = lse)
        fixed (int* pc = mask.Counts)
        fixed (int* pi = mask.Indices)
        fixed (int* pfc = mask.FullCounts)
        fixed (int* pfi = mask.FullIndices)
        fixed (int* pkp = keyPermutation)
        fixed (int* pqp = queryPermutation)
        {
            var t = Descriptors.HostAttention(dtype, pq, q, pk, k, pv, v, po, output, pl, lse, hasLse);
            var parameters = new sa_block_sparse_params
            {
                block_q = mask.BlockQ,
                block_k = mask.BlockK,
                kv_num_blocks = Descriptors.HostInt(pc, layout.CountLengths, layout.CountStrides),
                kv_indices = Descriptors.HostInt(pi, layout.IndexLengths, layout.IndexStrides),
                full_kv_num_blocks = pfc is null ? default : Descriptors.HostInt(pfc, layout.CountLengths, layout.CountStrides),
                full_kv_indices = pfi is null ? default : Descriptors.HostInt(pfi, layout.IndexLengths, layout.IndexStrides),
                key_perm = hasKeyPerm ? Descriptors.HostInt(pkp, keyLayout.Lengths, keyLayout.Strides) : default,
                query_perm = hasQueryPerm ? Descriptors.HostInt(pqp, queryLayout.Lengths, queryLayout.Strides) : default,
            };
            var native = options.ToNative();
            NativeStatus.Check(NativeMethods.sa_block_sparse_forward(&t.Q, &t.K, &t.V, &t.Output, t.HasLse ? &t.Lse : null, &parameters,
                &native), NativeNames.BlockSparse);
        }
    }

    private static sa_tensor DevicePermutation(ICudaTensor<int> permutation, AttentionDims dims, int sequence, string name,
        int device)
    {
        Validation.SameDevice(device, "q", permutation.Device, name);
        var arg = new TensorArg(name, permutation.Lengths, permutation.Strides);
        if (arg.Rank == 1 && arg.Lengths[0] == sequence)
        {
            Validation.Layout(arg);
            nint[] lengths = [dims.Batch, dims.HeadsQ, sequence];
            nint[] strides = [0, 0, 1];
            return Descriptors.Make((void*)permutation.DataPointer, sa_dtype.SA_DTYPE_I32, DeviceKind.Cuda, device, lengths,
                strides);
        }
        if (arg.Rank == 3 && arg.Lengths[0] == dims.Batch && arg.Lengths[1] == dims.HeadsQ && arg.Lengths[2] == sequence)
        {
            Validation.Layout(arg, allowBroadcast: true);
            return Descriptors.Device(permutation, sa_dtype.SA_DTYPE_I32);
        }
        throw new ArgumentException(
            $"{name} has shape {arg.Shape}; it must be [{sequence}] or [{dims.Batch}, {dims.HeadsQ}, {sequence}] " +
            "(give a per-head permutation its [B, H_q, S] lengths).", name);
    }

    private static void BlockSparseDevice<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        ICudaTensor<float>? lse, DeviceBlockMask mask, AttentionOptions? options, ICudaTensor<int>? keyPermutation,
        ICudaTensor<int>? queryPermutation) where T : unmanaged
    {
        var dims = ValidateDevice(q, k, v, output, lse, options);
        options ??= AttentionOptions.Default;
        ArgumentNullException.ThrowIfNull(mask);
        CheckMask(mask.Host, dims);
        Validation.SameDevice(q.Device, nameof(q), mask.Device, nameof(mask));
        var layout = MaskLayout(mask.Host, dims);
        var dtype = ElementTypes.Native<T>();
        var t = Descriptors.DeviceAttention(dtype, q, k, v, output, lse);
        sa_tensor ListTensor(CudaTensor<int>? list, nint[] lengths, nint[] strides) => list is null
            ? default
            : Descriptors.Make((void*)list.DataPointer, sa_dtype.SA_DTYPE_I32, DeviceKind.Cuda, list.Device, lengths, strides);
        var parameters = new sa_block_sparse_params
        {
            block_q = mask.Host.BlockQ,
            block_k = mask.Host.BlockK,
            kv_num_blocks = ListTensor(mask.Counts, layout.CountLengths, layout.CountStrides),
            kv_indices = ListTensor(mask.Indices, layout.IndexLengths, layout.IndexStrides),
            full_kv_num_blocks = ListTensor(mask.FullCounts, layout.CountLengths, layout.CountStrides),
            full_kv_indices = ListTensor(mask.FullIndices, layout.IndexLengths, layout.IndexStrides),
            key_perm = keyPermutation is null
                ? default
                : DevicePermutation(keyPermutation, dims, dims.SeqK, nameof(keyPermutation), q.Device),
            query_perm = queryPermutation is null
                ? default
                : DevicePermutation(queryPermutation, dims, dims.SeqQ, nameof(queryPermutation), q.Device),
        };
        var native = options.ToNative();
        NativeStatus.Check(NativeMethods.sa_block_sparse_forward(&t.Q, &t.K, &t.V, &t.Output, t.HasLse ? &t.Lse : null, &parameters,
            &native), NativeNames.BlockSparse);
    }
}
