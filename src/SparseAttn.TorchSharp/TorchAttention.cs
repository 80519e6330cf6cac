using TorchSharp;
using ScalarType = TorchSharp.torch.ScalarType;
using Tensor = TorchSharp.torch.Tensor;

namespace SparseAttn.TorchSharp;

/// <summary>
/// SparseAttn operations on TorchSharp tensors, without copies. Q, K, V and outputs are 4-D tensors in
/// torch's [B, H, S, D] order (scaled_dot_product_attention's) unless the call says otherwise with
/// <c>layout: </c><see cref="TensorLayout.BSHD"/>: the layout is never inferred from the shapes. Any
/// strided view works as long as the head dim is contiguous (stride 1) and no written element is
/// addressed twice. Log-sum-exp tensors are float32 [B, H_q, S_q] in both layouts.
/// </summary>
/// <remarks>
/// <para>Element types: float32 on the CPU only; float16 and bfloat16 on the CPU and on CUDA. Every tensor
/// of a call must share one dtype (log-sum-exp: float32, indices: int32) and one device.</para>
/// <para>CUDA: calls run on <see cref="AttentionOptions.Stream"/>, or the legacy default stream when it is
/// null. TorchSharp 0.107 does not expose its current CUDA stream; its kernels run on the legacy default
/// stream, so SparseAttn calls are ordered with them. Pass a stream explicitly if you run torch work elsewhere.</para>
/// <para>Errors: <see cref="ArgumentException"/> naming the argument, checked before any native call, for an
/// unsupported dtype or device, a rank other than 4, a head dim that is not contiguous, a tensor that addresses
/// an element twice (an expanded view, stride 0), mismatched dtypes or devices, and shapes that do not fit together in
/// the given layout (the message spells the shapes out in that layout's order); the exceptions of
/// <see cref="Attention"/> otherwise.</para>
/// </remarks>
public static class TorchAttention
{
    // ---------------------------------------------------------------------------------------------
    // Dense
    // ---------------------------------------------------------------------------------------------

    /// <summary>Dense attention into <paramref name="output"/>, optionally writing the log-sum-exp.</summary>
    /// <param name="q">Queries [B, H_q, S_q, D] (torch's order, the default; [B, S_q, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S_k, D] in the layout; H_q is a multiple of H_kv (GQA/MQA).</param>
    /// <param name="v">Values [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="output">Result, shaped like <paramref name="q"/>; must not overlap the inputs.</param>
    /// <param name="lse">Optional float32 [B, H_q, S_q] log-sum-exp output.</param>
    /// <param name="options">Scale, causal (bottom-right aligned), stream, kernel choice; null for the defaults.</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k, v and output.</param>
    public static void Dense(Tensor q, Tensor k, Tensor v, Tensor output, Tensor? lse = null, AttentionOptions? options = null,
        TensorLayout layout = TensorLayout.BHSD)
    {
        var args = AttentionArgs.Bind(q, k, v, output, lse, layout);
        Dispatch(args, new DenseCall(args, options));
    }

    /// <summary>Dense attention; the output is allocated like <paramref name="q"/> (torch.empty_like) and returned.</summary>
    /// <param name="q">Queries [B, H_q, S_q, D] (torch's order, the default; [B, S_q, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="options">Scale, causal, stream, kernel choice; null for the defaults.</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k and v.</param>
    /// <returns>The output, a new tensor like <paramref name="q"/> (same dtype, device and layout).</returns>
    /// <exception cref="ArgumentNullException">A tensor is null.</exception>
    /// <exception cref="ArgumentException">A dtype, device, rank, shape or stride that does not fit the layout; the
    /// message names the argument and shows torch's shapes.</exception>
    /// <example>
    /// Tensors in torch's [B, H, S, D] order, causal as torch's is_causal:
    /// <code>
    /// var q = torch.randn(1, 8, 128, 64);
    /// var k = torch.randn(1, 2, 512, 64);
    /// var v = torch.randn(1, 2, 512, 64);
    /// var output = TorchAttention.Dense(q, k, v, new AttentionOptions { Causal = true, CausalAlignment = CausalAlignment.TopLeft });
    /// </code>
    /// </example>
    public static Tensor Dense(Tensor q, Tensor k, Tensor v, AttentionOptions? options = null,
        TensorLayout layout = TensorLayout.BHSD)
    {
        var output = AllocateLike(q, nameof(q));
        return Complete(output, () => Dense(q, k, v, output, null, options, layout));
    }

    /// <summary>Dense attention returning the output (like <paramref name="q"/>) and the float32 [B, H_q, S_q] log-sum-exp.</summary>
    /// <param name="q">Queries [B, H_q, S_q, D] (torch's order, the default; [B, S_q, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="options">Scale, causal, stream, kernel choice; null for the defaults.</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k and v.</param>
    public static (Tensor Output, Tensor Lse) DenseWithLse(Tensor q, Tensor k, Tensor v, AttentionOptions? options = null,
        TensorLayout layout = TensorLayout.BHSD)
    {
        var output = AllocateLike(q, nameof(q));
        var lse = AllocateLse(q, nameof(q), layout);
        try
        {
            Dense(q, k, v, output, lse, options, layout);
        }
        catch
        {
            output.Dispose();
            lse.Dispose();
            throw;
        }
        return (output, lse);
    }

    // ---------------------------------------------------------------------------------------------
    // Dense, packed variable-length batches
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Dense attention over packed variable-length sequences: sequence b holds query rows
    /// [cuSeqlensQ[b], cuSeqlensQ[b+1]) and key rows [cuSeqlensK[b], cuSeqlensK[b+1]).
    /// </summary>
    /// <param name="q">Queries [T_q, H_q, D].</param>
    /// <param name="k">Keys [T_k, H_kv, D].</param>
    /// <param name="v">Values [T_k, H_kv, D].</param>
    /// <param name="output">Result [T_q, H_q, D].</param>
    /// <param name="cuSeqlensQ">int32 [B + 1] cumulative query lengths, on the device of q (contiguous on the CPU).</param>
    /// <param name="cuSeqlensK">int32 [B + 1] cumulative key lengths.</param>
    /// <param name="maxSeqlenQ">An upper bound of every query sequence length.</param>
    /// <param name="maxSeqlenK">An upper bound of every key sequence length.</param>
    /// <param name="lse">Optional float32 [H_q, T_q] log-sum-exp output.</param>
    /// <param name="options">Scale, causal (bottom-right per sequence), stream, kernel choice.</param>
    public static void DenseVarlen(Tensor q, Tensor k, Tensor v, Tensor output, Tensor cuSeqlensQ, Tensor cuSeqlensK,
        int maxSeqlenQ, int maxSeqlenK, Tensor? lse = null, AttentionOptions? options = null)
    {
        var args = AttentionArgs.Bind(q, k, v, output, lse, TensorLayout.BSHD, packed: true);
        var cuQ = TensorBinding.Bind(cuSeqlensQ, nameof(cuSeqlensQ), ElementKinds.Int32);
        var cuK = TensorBinding.Bind(cuSeqlensK, nameof(cuSeqlensK), ElementKinds.Int32);
        cuQ.SameDevice(args.Q);
        cuK.SameDevice(args.Q);
        Dispatch(args, new VarlenCall(args, cuQ, cuK, maxSeqlenQ, maxSeqlenK, options));
    }

    /// <summary>Packed variable-length dense attention; the output is allocated like <paramref name="q"/> and returned.</summary>
    /// <param name="q">Queries [T_q, H_q, D].</param>
    /// <param name="k">Keys [T_k, H_kv, D].</param>
    /// <param name="v">Values [T_k, H_kv, D].</param>
    /// <param name="cuSeqlensQ">int32 [B + 1] cumulative query lengths.</param>
    /// <param name="cuSeqlensK">int32 [B + 1] cumulative key lengths.</param>
    /// <param name="maxSeqlenQ">An upper bound of every query sequence length.</param>
    /// <param name="maxSeqlenK">An upper bound of every key sequence length.</param>
    /// <param name="options">Scale, causal, stream, kernel choice.</param>
    public static Tensor DenseVarlen(Tensor q, Tensor k, Tensor v, Tensor cuSeqlensQ, Tensor cuSeqlensK, int maxSeqlenQ,
        int maxSeqlenK, AttentionOptions? options = null)
    {
        var output = AllocateLike(q, nameof(q));
        return Complete(output, () => DenseVarlen(q, k, v, output, cuSeqlensQ, cuSeqlensK, maxSeqlenQ, maxSeqlenK, null, options));
    }

    // ---------------------------------------------------------------------------------------------
    // LSE merge
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Merges two partial results over disjoint key sets into the result over their union.
    /// <paramref name="output"/> may be <paramref name="o1"/> and <paramref name="lseOut"/> may be <paramref name="lse1"/>.
    /// </summary>
    /// <param name="o1">First partial output [B, H, S, D] in the layout.</param>
    /// <param name="lse1">First partial log-sum-exp, float32 [B, H, S].</param>
    /// <param name="o2">Second partial output [B, H, S, D] in the layout.</param>
    /// <param name="lse2">Second partial log-sum-exp, float32 [B, H, S].</param>
    /// <param name="output">Merged output [B, H, S, D] in the layout.</param>
    /// <param name="lseOut">Optional merged log-sum-exp [B, H, S].</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of o1, o2 and output.</param>
    /// <param name="stream">CUDA stream (null: the legacy default stream); ignored on the CPU.</param>
    public static void MergeLse(Tensor o1, Tensor lse1, Tensor o2, Tensor lse2, Tensor output, Tensor? lseOut = null,
        TensorLayout layout = TensorLayout.BHSD, CudaStream? stream = null)
    {
        CheckLayout(layout);
        var b1 = TensorBinding.Bind(o1, nameof(o1), ElementKinds.Attention).WithLayout(layout);
        var b2 = TensorBinding.Bind(o2, nameof(o2), ElementKinds.Attention).WithLayout(layout);
        var bo = TensorBinding.Bind(output, nameof(output), ElementKinds.Attention).WithLayout(layout);
        var l1 = TensorBinding.Bind(lse1, nameof(lse1), ElementKinds.Float32);
        var l2 = TensorBinding.Bind(lse2, nameof(lse2), ElementKinds.Float32);
        var lo = lseOut is null ? null : TensorBinding.Bind(lseOut, nameof(lseOut), ElementKinds.Float32);
        foreach (var other in new[] { b2, bo })
        {
            other.SameDtype(b1);
        }
        foreach (var other in new[] { b2, bo, l1, l2, lo })
        {
            other?.SameDevice(b1);
        }
        CheckCudaDtype(b1);
        LayoutShapes.CheckMerge(b1, b2, bo, l1, l2, lo, layout);
        foreach (var t in new[] { b1, b2, bo, l1, l2, lo })
        {
            t?.RequireDistinctElements();
        }
        Dispatch(b1.ScalarType, b1.Device, new MergeCall(b1, l1, b2, l2, bo, lo, stream));
    }

    // ---------------------------------------------------------------------------------------------
    // Neighborhood attention
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Generalized neighborhood attention into <paramref name="output"/>: the S tokens are the row-major
    /// grid of <paramref name="config"/>.
    /// </summary>
    /// <param name="q">Queries [B, H_q, S, D] (torch's order, the default; [B, S, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S, D] in the layout.</param>
    /// <param name="output">Result, shaped like <paramref name="q"/>.</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags.</param>
    /// <param name="lse">Optional float32 [B, H_q, S] log-sum-exp output.</param>
    /// <param name="options">Scale, stream, kernel choice (Causal must be false).</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k, v and output.</param>
    public static void Neighborhood(Tensor q, Tensor k, Tensor v, Tensor output, NeighborhoodConfig config, Tensor? lse = null,
        AttentionOptions? options = null, TensorLayout layout = TensorLayout.BHSD)
    {
        ArgumentNullException.ThrowIfNull(config);
        var args = AttentionArgs.Bind(q, k, v, output, lse, layout);
        Dispatch(args, new NeighborhoodCall(args, config, options));
    }

    /// <summary>Generalized neighborhood attention; the output is allocated like <paramref name="q"/> and returned.</summary>
    /// <param name="q">Queries [B, H_q, S, D] (torch's order, the default; [B, S, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S, D] in the layout.</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags.</param>
    /// <param name="options">Scale, stream, kernel choice.</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k and v.</param>
    public static Tensor Neighborhood(Tensor q, Tensor k, Tensor v, NeighborhoodConfig config, AttentionOptions? options = null,
        TensorLayout layout = TensorLayout.BHSD)
    {
        var output = AllocateLike(q, nameof(q));
        return Complete(output, () => Neighborhood(q, k, v, output, config, null, options, layout));
    }

    /// <summary>
    /// Generalized neighborhood attention with additional keys and values (global or text tokens) into
    /// <paramref name="output"/>: every query attends to the keys of its window and to all of
    /// <paramref name="extraKeys"/>, merged by log-sum-exp in one native call. CUDA tensors need
    /// <paramref name="workspace"/>: a byte tensor on the same device of at least
    /// <see cref="NeighborhoodExtraKeysWorkspaceBytes"/> bytes, kept alive by the caller until the stream
    /// has run the call (the call allocates nothing).
    /// </summary>
    /// <param name="q">Queries [B, H_q, S, D] (torch's order, the default; [B, S, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S, D] in the layout.</param>
    /// <param name="extraKeys">Additional keys [B, H_extra, S_extra, D] in the layout, H_extra dividing H_q.</param>
    /// <param name="extraValues">Additional values [B, H_extra, S_extra, D] in the layout.</param>
    /// <param name="output">Result, shaped like <paramref name="q"/>.</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags of the window part.</param>
    /// <param name="options">Scale, stream, kernel choice.</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of every tensor.</param>
    /// <param name="workspace">CUDA only: uint8 scratch on the device of <paramref name="q"/>.</param>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices that do not match, or a CUDA call without a large enough workspace.</exception>
    public static void NeighborhoodWithExtraKeys(Tensor q, Tensor k, Tensor v, Tensor extraKeys, Tensor extraValues, Tensor output,
        NeighborhoodConfig config, AttentionOptions? options = null, TensorLayout layout = TensorLayout.BHSD, Tensor? workspace = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var args = AttentionArgs.Bind(q, k, v, output, null, layout);
        var extra = AttentionArgs.Bind(q, extraKeys, extraValues, output, null, layout);
        TensorBinding? scratch = null;
        if (args.Q.Device == DeviceKind.Cuda)
        {
            if (workspace is null)
                throw new ArgumentException("CUDA tensors need a workspace of NeighborhoodExtraKeysWorkspaceBytes(q) bytes", nameof(workspace));
            scratch = TensorBinding.Bind(workspace, nameof(workspace), ElementKinds.Any);
            scratch.SameDevice(args.Q);
        }
        Dispatch(args, new NeighborhoodExtraCall(args, extra, scratch, config, options));
        GC.KeepAlive(extra);
        GC.KeepAlive(scratch);
    }

    /// <summary>Bytes of CUDA workspace <see cref="NeighborhoodWithExtraKeys"/> needs for queries <paramref name="q"/>.</summary>
    /// <param name="q">Queries [B, H_q, S, D] (or [B, S, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="layout">Order of the dimensions of <paramref name="q"/>.</param>
    /// <returns>The workspace size in bytes.</returns>
    public static long NeighborhoodExtraKeysWorkspaceBytes(Tensor q, TensorLayout layout = TensorLayout.BHSD)
    {
        CheckLayout(layout);
        var bq = TensorBinding.Bind(q, nameof(q), ElementKinds.Attention).WithLayout(layout);
        var call = new WorkspaceBytesCall(bq);
        Dispatch(bq.ScalarType, bq.Device, call);
        GC.KeepAlive(bq);
        return call.Bytes;
    }

    // ---------------------------------------------------------------------------------------------
    // Block-sparse attention
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Block-sparse attention into <paramref name="output"/> with a host <see cref="BlockMask"/>. On CUDA the
    /// mask is uploaded for the call and freed after it (this waits for the stream); keep a
    /// <see cref="DeviceBlockMask"/> to avoid that.
    /// </summary>
    /// <param name="q">Queries [B, H_q, S_q, D] (torch's order, the default; [B, S_q, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="output">Result, shaped like <paramref name="q"/>, in original query order.</param>
    /// <param name="mask">Block lists (blocks of 64 or 128).</param>
    /// <param name="lse">Optional float32 [B, H_q, S_q] log-sum-exp output.</param>
    /// <param name="options">Scale, causal (on original positions), stream, kernel choice.</param>
    /// <param name="keyPermutation">Optional int32 [S_k] or [B, H_q, S_k]: permuted key j is original key keyPermutation[j].</param>
    /// <param name="queryPermutation">Optional int32 [S_q] or [B, H_q, S_q].</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k, v and output.</param>
    public static void BlockSparse(Tensor q, Tensor k, Tensor v, Tensor output, BlockMask mask, Tensor? lse = null,
        AttentionOptions? options = null, Tensor? keyPermutation = null, Tensor? queryPermutation = null,
        TensorLayout layout = TensorLayout.BHSD)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var args = AttentionArgs.Bind(q, k, v, output, lse, layout);
        var (keys, queries) = BindPermutations(args, keyPermutation, queryPermutation);
        Dispatch(args, new BlockSparseCall(args, mask, null, options, keys, queries));
    }

    /// <summary>Block-sparse attention on CUDA tensors with a mask already on the device (no upload, no wait).</summary>
    /// <param name="q">Queries [B, H_q, S_q, D] (torch's order, the default; [B, S_q, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="output">Result, shaped like <paramref name="q"/>.</param>
    /// <param name="mask">Block lists on the device of q.</param>
    /// <param name="lse">Optional float32 [B, H_q, S_q] log-sum-exp output.</param>
    /// <param name="options">Scale, causal, stream, kernel choice.</param>
    /// <param name="keyPermutation">Optional int32 [S_k] or [B, H_q, S_k] on the device.</param>
    /// <param name="queryPermutation">Optional int32 [S_q] or [B, H_q, S_q] on the device.</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k, v and output.</param>
    public static void BlockSparse(Tensor q, Tensor k, Tensor v, Tensor output, DeviceBlockMask mask, Tensor? lse = null,
        AttentionOptions? options = null, Tensor? keyPermutation = null, Tensor? queryPermutation = null,
        TensorLayout layout = TensorLayout.BHSD)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var args = AttentionArgs.Bind(q, k, v, output, lse, layout);
        if (args.Q.Device != DeviceKind.Cuda)
        {
            throw new ArgumentException("mask is a DeviceBlockMask but q is a cpu tensor; pass the host BlockMask instead.",
                nameof(mask));
        }
        var (keys, queries) = BindPermutations(args, keyPermutation, queryPermutation);
        Dispatch(args, new BlockSparseCall(args, mask.Host, mask, options, keys, queries));
    }

    /// <summary>Block-sparse attention; the output is allocated like <paramref name="q"/> and returned.</summary>
    /// <param name="q">Queries [B, H_q, S_q, D] (torch's order, the default; [B, S_q, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S_k, D] in the layout.</param>
    /// <param name="mask">Block lists (blocks of 64 or 128).</param>
    /// <param name="options">Scale, causal, stream, kernel choice.</param>
    /// <param name="keyPermutation">Optional int32 [S_k] or [B, H_q, S_k].</param>
    /// <param name="queryPermutation">Optional int32 [S_q] or [B, H_q, S_q].</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k and v.</param>
    public static Tensor BlockSparse(Tensor q, Tensor k, Tensor v, BlockMask mask, AttentionOptions? options = null,
        Tensor? keyPermutation = null, Tensor? queryPermutation = null, TensorLayout layout = TensorLayout.BHSD)
    {
        var output = AllocateLike(q, nameof(q));
        return Complete(output, () => BlockSparse(q, k, v, output, mask, null, options, keyPermutation, queryPermutation, layout));
    }

    // ---------------------------------------------------------------------------------------------
    // Permuted block-sparse (PBS)
    // ---------------------------------------------------------------------------------------------

    /// <summary>Plans PBS (causal prefill) for q [B, H_q, S, D] and k [B, H_kv, S, D] (default layout); the plan lives on the host.</summary>
    /// <param name="q">Queries [B, H_q, S, D] (the default; [B, S, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys.</param>
    /// <param name="options">Block, segment, tau and scale; null for the defaults (128, 256, 0.9).</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q and k.</param>
    /// <param name="stream">CUDA stream to plan on (null: the legacy default stream); ignored on the CPU.</param>
    public static PbsPlan PlanPermutedBlockSparse(Tensor q, Tensor k, PbsOptions? options = null,
        TensorLayout layout = TensorLayout.BHSD, CudaStream? stream = null)
    {
        CheckLayout(layout);
        var bq = TensorBinding.Bind(q, nameof(q), ElementKinds.Attention).WithLayout(layout);
        var bk = TensorBinding.Bind(k, nameof(k), ElementKinds.Attention).WithLayout(layout);
        bk.SameDtype(bq);
        bk.SameDevice(bq);
        CheckCudaDtype(bq);
        LayoutShapes.CheckPlan(bq, bk, layout);
        bq.RequireDistinctElements();
        bk.RequireDistinctElements();
        var call = new PlanCall(bq, bk, options, stream);
        Dispatch(bq.ScalarType, bq.Device, call);
        return call.Plan!;
    }

    /// <summary>Runs a PBS plan into <paramref name="output"/>: causal block-sparse attention over the permuted keys.</summary>
    /// <param name="q">Queries [B, H_q, S, D] (torch's order, the default; [B, S, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S, D] in the layout.</param>
    /// <param name="output">Result, shaped like <paramref name="q"/>.</param>
    /// <param name="plan">The plan from <see cref="PlanPermutedBlockSparse"/>.</param>
    /// <param name="lse">Optional float32 [B, H_q, S] log-sum-exp output.</param>
    /// <param name="options">Scale, stream, kernel choice; causal is always on.</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k, v and output.</param>
    public static void RunPermutedBlockSparse(Tensor q, Tensor k, Tensor v, Tensor output, PbsPlan plan, Tensor? lse = null,
        AttentionOptions? options = null, TensorLayout layout = TensorLayout.BHSD)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var args = AttentionArgs.Bind(q, k, v, output, lse, layout);
        Dispatch(args, new PbsRunCall(args, plan, options));
    }

    /// <summary>Runs a PBS plan; the output is allocated like <paramref name="q"/> and returned.</summary>
    /// <param name="q">Queries [B, H_q, S, D] (torch's order, the default; [B, S, H_q, D] with <see cref="TensorLayout.BSHD"/>).</param>
    /// <param name="k">Keys [B, H_kv, S, D] in the layout.</param>
    /// <param name="v">Values [B, H_kv, S, D] in the layout.</param>
    /// <param name="plan">The plan.</param>
    /// <param name="options">Scale, stream, kernel choice; causal is always on.</param>
    /// <param name="layout">Order of the dimensions (default: torch's [B, H, S, D]) of q, k and v.</param>
    public static Tensor RunPermutedBlockSparse(Tensor q, Tensor k, Tensor v, PbsPlan plan, AttentionOptions? options = null,
        TensorLayout layout = TensorLayout.BHSD)
    {
        var output = AllocateLike(q, nameof(q));
        return Complete(output, () => RunPermutedBlockSparse(q, k, v, output, plan, null, options, layout));
    }

    // ---------------------------------------------------------------------------------------------
    // Binding and dispatch
    // ---------------------------------------------------------------------------------------------

    private static void CheckLayout(TensorLayout layout)
    {
        if (!Enum.IsDefined(layout))
        {
            throw new ArgumentOutOfRangeException(nameof(layout), layout, $"layout = {(int)layout} is not a TensorLayout value.");
        }
    }

    private static void CheckCudaDtype(TensorBinding reference)
    {
        if (reference.Device == DeviceKind.Cuda && reference.ScalarType == ScalarType.Float32)
        {
            throw new ArgumentException(
                $"{reference.Name} is float32 on {reference.DeviceName}; the CUDA kernels take float16 or bfloat16 (float32 is CPU only).",
                reference.Name);
        }
    }

    private static Tensor AllocateLike(Tensor q, string name)
    {
        if (q is null)
        {
            throw new ArgumentNullException(name);
        }
        return torch.empty_like(q);
    }

    private static Tensor AllocateLse(Tensor q, string name, TensorLayout layout)
    {
        CheckLayout(layout);
        var binding = TensorBinding.Bind(q, name, ElementKinds.Attention).WithLayout(layout);
        LayoutShapes.RequireRank4(binding, layout);
        var shape = binding.Lengths;
        return torch.empty([shape[0], shape[2], shape[1]], dtype: ScalarType.Float32, device: q.device);
    }

    /// <summary>Runs <paramref name="call"/> and returns <paramref name="output"/>, disposing it if the call throws.</summary>
    private static Tensor Complete(Tensor output, Action call)
    {
        try
        {
            call();
        }
        catch
        {
            output.Dispose();
            throw;
        }
        return output;
    }

    private static (TensorBinding? Keys, TensorBinding? Queries) BindPermutations(AttentionArgs args, Tensor? keyPermutation,
        Tensor? queryPermutation)
    {
        var keys = keyPermutation is null ? null : TensorBinding.Bind(keyPermutation, nameof(keyPermutation), ElementKinds.Int32);
        var queries = queryPermutation is null
            ? null
            : TensorBinding.Bind(queryPermutation, nameof(queryPermutation), ElementKinds.Int32);
        keys?.SameDevice(args.Q);
        queries?.SameDevice(args.Q);
        return (keys, queries);
    }

    /// <summary>An operation written once per element type, for the host and for a CUDA device.</summary>
    private interface ITypedCall
    {
        void Host<T>() where T : unmanaged;

        void Device<T>() where T : unmanaged;
    }

    private static void Dispatch(AttentionArgs args, ITypedCall call)
    {
        Dispatch(args.Q.ScalarType, args.Q.Device, call);
        GC.KeepAlive(args);
    }

    private static void Dispatch(ScalarType dtype, DeviceKind device, ITypedCall call)
    {
        var host = device == DeviceKind.Cpu;
        switch (dtype)
        {
            case ScalarType.Float32 when host:
                call.Host<float>();
                break;
            case ScalarType.Float16 when host:
                call.Host<Half>();
                break;
            case ScalarType.Float16:
                call.Device<Half>();
                break;
            case ScalarType.BFloat16 when host:
                call.Host<BFloat16>();
                break;
            case ScalarType.BFloat16:
                call.Device<BFloat16>();
                break;
            default:
                throw new ArgumentException($"dtype {dtype} on {device} is not supported.", "q");
        }
    }

    /// <summary>Q, K, V, output and the optional LSE of one call, checked for dtype, device and layout.</summary>
    private sealed class AttentionArgs
    {
        private AttentionArgs(TensorBinding q, TensorBinding k, TensorBinding v, TensorBinding output, TensorBinding? lse)
        {
            Q = q;
            K = k;
            V = v;
            Output = output;
            Lse = lse;
        }

        public TensorBinding Q { get; }

        public TensorBinding K { get; }

        public TensorBinding V { get; }

        public TensorBinding Output { get; }

        public TensorBinding? Lse { get; }

        public static AttentionArgs Bind(Tensor q, Tensor k, Tensor v, Tensor output, Tensor? lse, TensorLayout layout,
            bool packed = false)
        {
            CheckLayout(layout);
            var bq = TensorBinding.Bind(q, nameof(q), ElementKinds.Attention).WithLayout(layout);
            var bk = TensorBinding.Bind(k, nameof(k), ElementKinds.Attention).WithLayout(layout);
            var bv = TensorBinding.Bind(v, nameof(v), ElementKinds.Attention).WithLayout(layout);
            var bo = TensorBinding.Bind(output, nameof(output), ElementKinds.Attention).WithLayout(layout);
            var bl = lse is null ? null : TensorBinding.Bind(lse, nameof(lse), ElementKinds.Float32);
            foreach (var other in new[] { bk, bv, bo })
            {
                other.SameDtype(bq);
                other.SameDevice(bq);
            }
            bl?.SameDevice(bq);
            CheckCudaDtype(bq);
            foreach (var t in new[] { bq, bk, bv, bo, bl })
            {
                t?.RequireDistinctElements();
            }
            if (packed)
            {
                LayoutShapes.CheckPacked(bq, bk, bv, bo, bl);
            }
            else
            {
                LayoutShapes.Check(bq, bk, bv, bo, bl, layout);
            }
            return new AttentionArgs(bq, bk, bv, bo, bl);
        }
    }

    private sealed class DenseCall(AttentionArgs a, AttentionOptions? options) : ITypedCall
    {
        public void Host<T>() where T : unmanaged
        {
            if (a.Lse is null)
            {
                Attention.Dense(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(), options);
            }
            else
            {
                Attention.Dense(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(),
                    a.Lse.Writable<float>(), options);
            }
        }

        public void Device<T>() where T : unmanaged
        {
            if (a.Lse is null)
            {
                Attention.Dense<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(), options);
            }
            else
            {
                Attention.Dense<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(),
                    a.Lse.DeviceView<float>(), options);
            }
        }
    }

    private sealed class VarlenCall(AttentionArgs a, TensorBinding cuQ, TensorBinding cuK, int maxQ, int maxK,
        AttentionOptions? options) : ITypedCall
    {
        public void Host<T>() where T : unmanaged
        {
            if (a.Lse is null)
            {
                Attention.DenseVarlen(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(),
                    cuQ.Flat<int>(), cuK.Flat<int>(), maxQ, maxK, options);
            }
            else
            {
                Attention.DenseVarlen(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(),
                    a.Lse.Writable<float>(), cuQ.Flat<int>(), cuK.Flat<int>(), maxQ, maxK, options);
            }
            GC.KeepAlive(cuQ);
            GC.KeepAlive(cuK);
        }

        public void Device<T>() where T : unmanaged
        {
            ICudaTensor<float>? lse = a.Lse?.DeviceView<float>();
            Attention.DenseVarlen<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(), lse,
                cuQ.DeviceView<int>(), cuK.DeviceView<int>(), maxQ, maxK, options);
            GC.KeepAlive(cuQ);
            GC.KeepAlive(cuK);
        }
    }

    private sealed class MergeCall(TensorBinding o1, TensorBinding lse1, TensorBinding o2, TensorBinding lse2,
        TensorBinding output, TensorBinding? lseOut, CudaStream? stream) : ITypedCall
    {
        public void Host<T>() where T : unmanaged
        {
            if (lseOut is null)
            {
                Attention.MergeLse(o1.ReadOnly<T>(), lse1.ReadOnly<float>(), o2.ReadOnly<T>(), lse2.ReadOnly<float>(),
                    output.Writable<T>());
            }
            else
            {
                Attention.MergeLse(o1.ReadOnly<T>(), lse1.ReadOnly<float>(), o2.ReadOnly<T>(), lse2.ReadOnly<float>(),
                    output.Writable<T>(), lseOut.Writable<float>());
            }
            KeepAlive();
        }

        public void Device<T>() where T : unmanaged
        {
            ICudaTensor<float>? merged = lseOut?.DeviceView<float>();
            Attention.MergeLse<T>(o1.DeviceView<T>(), lse1.DeviceView<float>(), o2.DeviceView<T>(), lse2.DeviceView<float>(),
                output.DeviceView<T>(), merged, stream);
            KeepAlive();
        }

        private void KeepAlive()
        {
            GC.KeepAlive(o1);
            GC.KeepAlive(lse1);
            GC.KeepAlive(o2);
            GC.KeepAlive(lse2);
            GC.KeepAlive(output);
            GC.KeepAlive(lseOut);
        }
    }

    // The native size query of the additional-keys scratch, for queries of either device.
    private sealed class WorkspaceBytesCall(TensorBinding q) : ITypedCall
    {
        public long Bytes { get; private set; }

        public void Host<T>() where T : unmanaged => Bytes = Attention.NeighborhoodExtraKeysWorkspaceBytes(q.ReadOnly<T>());

        public void Device<T>() where T : unmanaged => Bytes = Attention.NeighborhoodExtraKeysWorkspaceBytes(q.DeviceView<T>());
    }

    private sealed class NeighborhoodExtraCall(AttentionArgs a, AttentionArgs extra, TensorBinding? scratch, NeighborhoodConfig config,
        AttentionOptions? options) : ITypedCall
    {
        public void Host<T>() where T : unmanaged =>
            Attention.NeighborhoodWithExtraKeys(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), extra.K.ReadOnly<T>(),
                extra.V.ReadOnly<T>(), a.Output.Writable<T>(), config, options);

        public void Device<T>() where T : unmanaged
        {
            Attention.NeighborhoodWithExtraKeys(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), extra.K.DeviceView<T>(),
                extra.V.DeviceView<T>(), a.Output.DeviceView<T>(), scratch!.DeviceView<byte>(), config, options);
        }
    }

    private sealed class NeighborhoodCall(AttentionArgs a, NeighborhoodConfig config, AttentionOptions? options) : ITypedCall
    {
        public void Host<T>() where T : unmanaged
        {
            if (a.Lse is null)
            {
                Attention.Neighborhood(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(), config,
                    options);
            }
            else
            {
                Attention.Neighborhood(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(),
                    a.Lse.Writable<float>(), config, options);
            }
        }

        public void Device<T>() where T : unmanaged
        {
            if (a.Lse is null)
            {
                Attention.Neighborhood<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(),
                    config, options);
            }
            else
            {
                Attention.Neighborhood<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(),
                    a.Lse.DeviceView<float>(), config, options);
            }
        }
    }

    private sealed class BlockSparseCall(AttentionArgs a, BlockMask mask, DeviceBlockMask? deviceMask, AttentionOptions? options,
        TensorBinding? keys, TensorBinding? queries) : ITypedCall
    {
        public void Host<T>() where T : unmanaged
        {
            var keyPermutation = keys is null ? default : keys.Flat<int>();
            var queryPermutation = queries is null ? default : queries.Flat<int>();
            if (a.Lse is null)
            {
                Attention.BlockSparse(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(), mask,
                    options, keyPermutation, queryPermutation);
            }
            else
            {
                Attention.BlockSparse(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(),
                    a.Lse.Writable<float>(), mask, options, keyPermutation, queryPermutation);
            }
            GC.KeepAlive(keys);
            GC.KeepAlive(queries);
        }

        public void Device<T>() where T : unmanaged
        {
            ICudaTensor<int>? keyPermutation = keys?.DeviceView<int>();
            ICudaTensor<int>? queryPermutation = queries?.DeviceView<int>();
            var uploaded = deviceMask is null ? mask.ToDevice(a.Q.DeviceIndex) : null;
            try
            {
                var lists = deviceMask ?? uploaded!;
                if (a.Lse is null)
                {
                    Attention.BlockSparse<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(),
                        lists, options, keyPermutation, queryPermutation);
                }
                else
                {
                    Attention.BlockSparse<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(),
                        a.Lse.DeviceView<float>(), lists, options, keyPermutation, queryPermutation);
                }
                if (uploaded is not null)
                {
                    // The uploaded lists are freed on return: wait until the call no longer reads them.
                    (options?.Stream ?? CudaStream.Default).Synchronize();
                }
            }
            finally
            {
                uploaded?.Dispose();
            }
            GC.KeepAlive(keys);
            GC.KeepAlive(queries);
        }
    }

    private sealed class PlanCall(TensorBinding q, TensorBinding k, PbsOptions? options, CudaStream? stream) : ITypedCall
    {
        public PbsPlan? Plan { get; private set; }

        public void Host<T>() where T : unmanaged
        {
            Plan = PermutedBlockSparse.Plan(q.ReadOnly<T>(), k.ReadOnly<T>(), options);
            GC.KeepAlive(q);
            GC.KeepAlive(k);
        }

        public void Device<T>() where T : unmanaged
        {
            Plan = PermutedBlockSparse.Plan<T>(q.DeviceView<T>(), k.DeviceView<T>(), options, stream);
            GC.KeepAlive(q);
            GC.KeepAlive(k);
        }
    }

    private sealed class PbsRunCall(AttentionArgs a, PbsPlan plan, AttentionOptions? options) : ITypedCall
    {
        public void Host<T>() where T : unmanaged
        {
            if (a.Lse is null)
            {
                PermutedBlockSparse.Run(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(), plan,
                    options);
            }
            else
            {
                PermutedBlockSparse.Run(a.Q.ReadOnly<T>(), a.K.ReadOnly<T>(), a.V.ReadOnly<T>(), a.Output.Writable<T>(),
                    a.Lse.Writable<float>(), plan, options);
            }
        }

        public void Device<T>() where T : unmanaged
        {
            if (a.Lse is null)
            {
                PermutedBlockSparse.Run<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(),
                    plan, options);
            }
            else
            {
                PermutedBlockSparse.Run<T>(a.Q.DeviceView<T>(), a.K.DeviceView<T>(), a.V.DeviceView<T>(), a.Output.DeviceView<T>(),
                    a.Lse.DeviceView<float>(), plan, options);
            }
        }
    }
}
