using System.Numerics.Tensors;
using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>Options of the permuted block-sparse (PBS) planner.</summary>
public sealed record PbsOptions
{
    /// <summary>Block size for queries and keys: 64 or 128.</summary>
    public int Block { get; init; } = 128;

    /// <summary>Permutation segment in tokens, a multiple of <see cref="Block"/>.</summary>
    public int Segment { get; init; } = 256;

    /// <summary>Cumulative block-score threshold in (0, 1]: the fewest blocks whose scores reach it are kept.</summary>
    public float Tau { get; init; } = 0.9f;

    /// <summary>Softmax scale of the importance and block scores, finite and positive; null (the default) means 1/sqrt(D).</summary>
    public float? Scale { get; init; }

    /// <summary>
    /// Whether keys are sorted by importance within each full segment (the default). With <c>false</c> the
    /// permutation is the identity and the same block selection runs on the keys in their own order, so
    /// the gain of the permutation can be measured.
    /// </summary>
    public bool PermuteKeys { get; init; } = true;

    internal void Validate(string parameterName)
    {
        if (Block is not (64 or 128))
        {
            throw new ArgumentOutOfRangeException(parameterName, Block, $"{parameterName}.Block = {Block} must be 64 or 128.");
        }
        if (Segment < Block || Segment % Block != 0)
        {
            throw new ArgumentOutOfRangeException(parameterName, Segment,
                $"{parameterName}.Segment = {Segment} must be a positive multiple of Block ({Block}).");
        }
        if (!(Tau > 0 && Tau <= 1))
        {
            throw new ArgumentOutOfRangeException(parameterName, Tau, $"{parameterName}.Tau = {Tau} must be in (0, 1].");
        }
        if (Scale is { } scale && !(float.IsFinite(scale) && scale > 0))
        {
            throw new ArgumentOutOfRangeException(parameterName, scale,
                $"{parameterName}.Scale = {scale} must be finite and positive (null means 1/sqrt(D)).");
        }
    }

    internal sa_pbs_options ToNative(CudaStream? stream) => new()
    {
        block = Block,
        segment = Segment,
        tau = Tau,
        scale = Scale ?? 0f,
        stream = stream?.Handle ?? 0,
        permute_keys = PermuteKeys ? 1 : 0,
    };
}

/// <summary>
/// A PBS plan: a key permutation per (batch, query head) and the block mask over permuted key blocks.
/// Run it with <see cref="PermutedBlockSparse.Run{T}(ReadOnlyTensorSpan{T}, ReadOnlyTensorSpan{T}, ReadOnlyTensorSpan{T}, TensorSpan{T}, PbsPlan, AttentionOptions?)"/>.
/// </summary>
public sealed class PbsPlan
{
    internal PbsPlan(int batch, int heads, int sequenceLength, PbsOptions options, int[] keyPermutation, BlockMask mask)
    {
        Batch = batch;
        Heads = heads;
        SequenceLength = sequenceLength;
        Block = options.Block;
        Segment = options.Segment;
        Tau = options.Tau;
        keyPermutation_ = keyPermutation;
        Mask = mask;
    }

    private readonly int[] keyPermutation_;

    /// <summary>Batch size of the planned call.</summary>
    public int Batch { get; }

    /// <summary>Query heads of the planned call.</summary>
    public int Heads { get; }

    /// <summary>Sequence length S (queries and keys).</summary>
    public int SequenceLength { get; }

    /// <summary>Block size (queries and keys).</summary>
    public int Block { get; }

    /// <summary>Permutation segment in tokens.</summary>
    public int Segment { get; }

    /// <summary>The block-score threshold used.</summary>
    public float Tau { get; }

    /// <summary>
    /// Key permutation, int32 [B, H_q, S] flattened row-major (read-only): for batch b and head h, permuted
    /// position j holds original key <c>KeyPermutation[(b * Heads + h) * SequenceLength + j]</c>.
    /// </summary>
    public ReadOnlySpan<int> KeyPermutation => keyPermutation_;

    /// <summary>Block lists over permuted key blocks, [B, H_q, nQ, nK] (read-only lists).</summary>
    public BlockMask Mask { get; }

    /// <summary>
    /// Fraction of the whole S x S block grid that is listed, (query block, key block) pairs over
    /// B * H_q * nQ * nK. A causal plan never exceeds about one half here; see <see cref="CausalDensity"/>.
    /// </summary>
    public double Density => Mask.Density;

    /// <summary>
    /// Fraction of the causal (query, key) pairs the plan computes, against the dense causal baseline
    /// B * H_q * S (S + 1) / 2: 1 means the plan does all the work of dense causal attention, 0.25 a quarter
    /// of it. Counted per pair, so partial diagonal blocks count only their causal part.
    /// </summary>
    public double CausalDensity
    {
        get
        {
            var causalPairs = (double)Batch * Heads * SequenceLength * (SequenceLength + 1L) / 2;
            return Mask.PairCount(SequenceLength, SequenceLength, causal: true) / causalPairs;
        }
    }
}

/// <summary>
/// Permuted block-sparse attention for causal prefill: keys are reordered within segments by their
/// importance to the last <c>block</c> query rows, so that a few key blocks per query block carry most of the
/// attention; the planner keeps those and block-sparse attention runs over the permuted keys with the
/// causal mask on original positions.
/// </summary>
public static unsafe partial class PermutedBlockSparse
{
    private static PbsOptions CheckPlanArgs(in TensorArg q, in TensorArg k, PbsOptions? options, DeviceKind device)
    {
        options ??= new PbsOptions();
        options.Validate(nameof(options));
        Validation.Rank(q, 4, "[B, S, H, D]");
        Validation.Rank(k, 4, "[B, S, H, D]");
        Validation.Layout(q);
        Validation.Layout(k);
        if (k.Lengths[0] != q.Lengths[0] || k.Lengths[1] != q.Lengths[1] || k.Lengths[3] != q.Lengths[3])
        {
            throw new ArgumentException(
                $"k has shape {k.Shape} but must be [B, S, H_kv, D] with the B, S and D of q {q.Shape} (PBS needs S_q == S_k).",
                k.Name);
        }
        if (q.Lengths[2] % k.Lengths[2] != 0)
        {
            throw new ArgumentException(
                $"q has {q.Lengths[2]} heads, not a multiple of the {k.Lengths[2]} heads of k (GQA needs H_q % H_kv == 0).",
                k.Name);
        }
        Validation.HeadDim((int)q.Lengths[3], device, q.Name);
        return options;
    }

    private static (nint[] Perm, nint[] Counts, nint[] Indices) PlanShapes(int batch, int heads, int seq, int blocks) =>
        ([batch, heads, seq], [batch, heads, blocks], [batch, heads, blocks, blocks]);

    /// <summary>Plans PBS on the CPU for q [B, S, H_q, D] and k [B, S, H_kv, D].</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries.</param>
    /// <param name="k">Keys.</param>
    /// <param name="options">Block, segment, tau and scale; null for the defaults (128, 256, 0.9).</param>
    public static PbsPlan Plan<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, PbsOptions? options = null)
        where T : unmanaged
    {
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cpu);
        options = CheckPlanArgs(new TensorArg(nameof(q), q.Lengths, q.Strides), new TensorArg(nameof(k), k.Lengths, k.Strides),
            options, DeviceKind.Cpu);
        int batch = (int)q.Lengths[0], seq = (int)q.Lengths[1], heads = (int)q.Lengths[2];
        var blocks = (seq + options.Block - 1) / options.Block;
        var perm = new int[(long)batch * heads * seq];
        var counts = new int[batch * heads * blocks];
        var indices = new int[(long)batch * heads * blocks * blocks];
        var shapes = PlanShapes(batch, heads, seq, blocks);
        var native = options.ToNative(null);
        fixed (T* pq = q)
        fixed (T* pk = k)
        fixed (int* pp = perm)
        fixed (int* pc = counts)
        fixed (int* pi = indices)
        {
            var tq = Descriptors.Host(pq, dtype, q.Lengths, q.Strides);
            var tk = Descriptors.Host(pk, dtype, k.Lengths, k.Strides);
            var tp = Descriptors.HostInt(pp, shapes.Perm, Shapes.RowMajorStrides(shapes.Perm));
            var tc = Descriptors.HostInt(pc, shapes.Counts, Shapes.RowMajorStrides(shapes.Counts));
            var ti = Descriptors.HostInt(pi, shapes.Indices, Shapes.RowMajorStrides(shapes.Indices));
            NativeStatus.Check(NativeMethods.sa_pbs_plan(&tq, &tk, &native, &tp, &tc, &ti));
        }
        var mask = BlockMask.FromLists(batch, heads, blocks, blocks, options.Block, options.Block, counts, indices);
        return new PbsPlan(batch, heads, seq, options, perm, mask);
    }

    /// <summary>
    /// Plans PBS on a CUDA device for q [B, S, H_q, D] and k [B, S, H_kv, D]; the plan is copied back to
    /// the host (this waits for <paramref name="stream"/>).
    /// </summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries.</param>
    /// <param name="k">Keys.</param>
    /// <param name="options">Block, segment, tau and scale; null for the defaults.</param>
    /// <param name="stream">Stream to plan on (null: the default stream).</param>
    public static PbsPlan Plan<T>(ICudaTensor<T> q, ICudaTensor<T> k, PbsOptions? options = null, CudaStream? stream = null)
        where T : unmanaged
    {
        Validation.NotNull(q, nameof(q));
        Validation.NotNull(k, nameof(k));
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cuda);
        options = CheckPlanArgs(new TensorArg(nameof(q), q.Lengths, q.Strides), new TensorArg(nameof(k), k.Lengths, k.Strides),
            options, DeviceKind.Cuda);
        Validation.SameDevice(q.Device, nameof(q), k.Device, nameof(k));
        int batch = (int)q.Lengths[0], seq = (int)q.Lengths[1], heads = (int)q.Lengths[2];
        var blocks = (seq + options.Block - 1) / options.Block;
        var shapes = PlanShapes(batch, heads, seq, blocks);
        using var perm = CudaTensor<int>.Allocate(q.Device, shapes.Perm);
        using var counts = CudaTensor<int>.Allocate(q.Device, shapes.Counts);
        using var indices = CudaTensor<int>.Allocate(q.Device, shapes.Indices);
        var tq = Descriptors.Device(q, dtype);
        var tk = Descriptors.Device(k, dtype);
        var tp = Descriptors.Device(perm, sa_dtype.SA_DTYPE_I32);
        var tc = Descriptors.Device(counts, sa_dtype.SA_DTYPE_I32);
        var ti = Descriptors.Device(indices, sa_dtype.SA_DTYPE_I32);
        var native = options.ToNative(stream);
        NativeStatus.Check(NativeMethods.sa_pbs_plan(&tq, &tk, &native, &tp, &tc, &ti));
        stream?.Synchronize();
        var mask = BlockMask.FromLists(batch, heads, blocks, blocks, options.Block, options.Block, counts.ToArray(),
            indices.ToArray());
        return new PbsPlan(batch, heads, seq, options, perm.ToArray(), mask);
    }

    private static AttentionOptions CausalOptions(AttentionOptions? options) =>
        (options ?? AttentionOptions.Default) with { Causal = true };

    private static void CheckPlan(PbsPlan plan, ReadOnlySpan<nint> qLengths)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (qLengths.Length == 4 &&
            (qLengths[0] != plan.Batch || qLengths[1] != plan.SequenceLength || qLengths[2] != plan.Heads))
        {
            throw new ArgumentException(
                $"plan was made for [B, S, H_q] = [{plan.Batch}, {plan.SequenceLength}, {plan.Heads}] but q has shape " +
                $"{Shapes.Format(qLengths)}.", nameof(plan));
        }
    }

    /// <summary>Runs a PBS plan on the CPU: causal block-sparse attention over the permuted keys.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="output">Result [B, S, H_q, D], in query order.</param>
    /// <param name="plan">The plan from <see cref="Plan{T}(ReadOnlyTensorSpan{T}, ReadOnlyTensorSpan{T}, PbsOptions?)"/>.</param>
    /// <param name="options">Scale and threads; causal is always on.</param>
    public static void Run<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v, TensorSpan<T> output,
        PbsPlan plan, AttentionOptions? options = null) where T : unmanaged
    {
        CheckPlan(plan, q.Lengths);
        Attention.BlockSparse(q, k, v, output, plan.Mask, CausalOptions(options), plan.KeyPermutation);
    }

    /// <summary>Runs a PBS plan on the CPU, also writing the log-sum-exp.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [B, H_q, S].</param>
    /// <param name="plan">The plan.</param>
    /// <param name="options">Scale and threads; causal is always on.</param>
    public static void Run<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v, TensorSpan<T> output,
        TensorSpan<float> lse, PbsPlan plan, AttentionOptions? options = null) where T : unmanaged
    {
        CheckPlan(plan, q.Lengths);
        Attention.BlockSparse(q, k, v, output, lse, plan.Mask, CausalOptions(options), plan.KeyPermutation);
    }

    /// <summary>
    /// Runs a PBS plan on a CUDA device. The plan's lists are uploaded for the call and freed after it,
    /// so this waits for the stream.
    /// </summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="plan">The plan.</param>
    /// <param name="options">Scale, stream, kernel choice; causal is always on.</param>
    public static void Run<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output, PbsPlan plan,
        AttentionOptions? options = null) where T : unmanaged
    {
        Validation.NotNull(q, nameof(q));
        CheckPlan(plan, q.Lengths);
        using var mask = plan.Mask.ToDevice(q.Device);
        using var permutation = CudaTensor<int>.FromHost(plan.KeyPermutation,
            [plan.Batch, plan.Heads, plan.SequenceLength], q.Device);
        Attention.BlockSparse(q, k, v, output, mask, CausalOptions(options), permutation);
        // The lists are freed on return: wait until the call no longer reads them.
        (options?.Stream ?? CudaStream.Default).Synchronize();
    }

    /// <summary>Runs a PBS plan on a CUDA device, also writing the log-sum-exp.</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="output">Result [B, S, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [B, H_q, S].</param>
    /// <param name="plan">The plan.</param>
    /// <param name="options">Scale, stream, kernel choice; causal is always on.</param>
    public static void Run<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        ICudaTensor<float> lse, PbsPlan plan, AttentionOptions? options = null) where T : unmanaged
    {
        Validation.NotNull(q, nameof(q));
        CheckPlan(plan, q.Lengths);
        using var mask = plan.Mask.ToDevice(q.Device);
        using var permutation = CudaTensor<int>.FromHost(plan.KeyPermutation,
            [plan.Batch, plan.Heads, plan.SequenceLength], q.Device);
        Attention.BlockSparse(q, k, v, output, lse, mask, CausalOptions(options), permutation);
        // The lists are freed on return: wait until the call no longer reads them.
        (options?.Stream ?? CudaStream.Default).Synchronize();
    }
}
