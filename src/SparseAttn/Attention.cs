using System.Numerics.Tensors;
using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>
/// Attention entry points. Tensors use the [B, S, H, D] layout by default; strides (in elements,
/// as in <see cref="TensorSpan{T}"/>) describe any other view, e.g. [B, H, S, D] memory seen as
/// [B, S, H, D]. The innermost dimension must be contiguous. Host overloads run on the CPU backend
/// (T = float, <see cref="Half"/> or <see cref="BFloat16"/>; host memory is pinned only during the
/// call); device overloads take <see cref="ICudaTensor{T}"/> and run asynchronously on
/// <see cref="AttentionOptions.Stream"/> (T = Half or BFloat16). Host overloads take
/// <see cref="ReadOnlyTensorSpan{T}"/> inputs, so pass T explicitly when giving
/// <see cref="TensorSpan{T}"/> or arrays, e.g. <c>Attention.Dense&lt;float&gt;(q, k, v, o)</c>.
/// </summary>
/// <remarks>
/// Errors: <see cref="ArgumentException"/> (and subtypes) for bad shapes, strides, dtypes, devices,
/// head dims or options, with a message naming the parameter; <see cref="NotSupportedException"/>
/// when a backend or device is missing; <see cref="OutOfMemoryException"/> when an allocation fails;
/// <see cref="SparseAttnException"/> for CUDA and internal failures.
/// </remarks>
public static unsafe partial class Attention
{
    // ---------------------------------------------------------------------------------------------
    // Dense
    // ---------------------------------------------------------------------------------------------

    /// <summary>Dense attention on the CPU: output = softmax(q k^T * scale) v.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D]; H_q is a multiple of H_kv (GQA/MQA).</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="output">Result [B, S_q, H_q, D]; must not overlap the inputs.</param>
    /// <param name="options">Scale, causal flag and alignment, threads; null for the defaults.</param>
    /// <exception cref="ArgumentException">T is not float, Half or BFloat16; shapes that do not fit together
    /// (batch, heads, head dim, output like q); a head dim that is not contiguous or out of range; an output that
    /// overlaps an input; bad options. The message names the parameter and its value.</exception>
    /// <exception cref="NotSupportedException">The native library was built without the CPU backend.</exception>
    /// <example>
    /// Causal attention over host arrays in the [B, S, H, D] layout:
    /// <code>
    /// nint[] shape = [1, 1024, 8, 64];
    /// float[] q = new float[1 * 1024 * 8 * 64], k = new float[q.Length], v = new float[q.Length], o = new float[q.Length];
    /// Attention.Dense&lt;float&gt;(new ReadOnlyTensorSpan&lt;float&gt;(q, shape, default), new ReadOnlyTensorSpan&lt;float&gt;(k, shape, default),
    ///     new ReadOnlyTensorSpan&lt;float&gt;(v, shape, default), new TensorSpan&lt;float&gt;(o, shape, default),
    ///     new AttentionOptions { Causal = true });
    /// </code>
    /// </example>
    public static void Dense<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, AttentionOptions? options = null) where T : unmanaged =>
        DenseHost(q, k, v, output, default, false, options);

    /// <summary>Dense attention on the CPU, also writing the log-sum-exp of each query row.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="output">Result [B, S_q, H_q, D].</param>
    /// <param name="lse">Log-sum-exp [B, H_q, S_q] (-inf for rows with no allowed key).</param>
    /// <param name="options">Scale, causal flag and alignment, threads; null for the defaults.</param>
    public static void Dense<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, TensorSpan<float> lse, AttentionOptions? options = null) where T : unmanaged =>
        DenseHost(q, k, v, output, lse, true, options);

    /// <summary>Dense attention on a CUDA device (asynchronous on <see cref="AttentionOptions.Stream"/>).</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="output">Result [B, S_q, H_q, D].</param>
    /// <param name="options">Scale, causal flag and alignment, stream, kernel choice, splits; null for the defaults.</param>
    /// <exception cref="ArgumentNullException">A tensor is null.</exception>
    /// <exception cref="ArgumentException">T is not Half or BFloat16; shapes that do not fit together; tensors on
    /// different devices; an unsupported head dim; bad options. The message names the parameter.</exception>
    /// <exception cref="NotSupportedException">No CUDA backend or device; top-left causal alignment on a call the
    /// CUDA kernels do not cover (see <see cref="CausalAlignment.TopLeft"/>).</exception>
    /// <exception cref="SparseAttnException">A CUDA failure, with the CUDA error string.</exception>
    /// <example>
    /// <code>
    /// nint[] shape = [2, 4096, 16, 128];
    /// using var q = CudaTensor&lt;BFloat16&gt;.FromHost(hostQ, shape, device: 0);
    /// using var k = CudaTensor&lt;BFloat16&gt;.FromHost(hostK, shape, device: 0);
    /// using var v = CudaTensor&lt;BFloat16&gt;.FromHost(hostV, shape, device: 0);
    /// using var output = CudaTensor&lt;BFloat16&gt;.Allocate(0, shape);
    /// Attention.Dense(q, k, v, output, new AttentionOptions { Causal = true });
    /// </code>
    /// </example>
    public static void Dense<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        AttentionOptions? options = null) where T : unmanaged =>
        DenseDevice(q, k, v, output, null, options);

    /// <summary>Dense attention on a CUDA device, also writing the log-sum-exp of each query row.</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="output">Result [B, S_q, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [B, H_q, S_q].</param>
    /// <param name="options">Scale, causal flag and alignment, stream, kernel choice, splits; null for the defaults.</param>
    public static void Dense<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        ICudaTensor<float> lse, AttentionOptions? options = null) where T : unmanaged
    {
        Validation.NotNull(lse, nameof(lse));
        DenseDevice(q, k, v, output, lse, options);
    }

    private static void DenseHost<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, TensorSpan<float> lse, bool hasLse, AttentionOptions? options) where T : unmanaged
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
        fixed (T* pq = q)
        fixed (T* pk = k)
        fixed (T* pv = v)
        fixed (T* po = output)
        fixed (float* pl = lse)
        {
            var t = Descriptors.HostAttention(dtype, pq, q, pk, k, pv, v, po, output, pl, lse, hasLse);
            var native = options.ToNative();
            NativeStatus.Check(NativeMethods.sa_dense_forward(&t.Q, &t.K, &t.V, &t.Output, t.HasLse ? &t.Lse : null, &native),
                NativeNames.Attention);
        }
    }

    private static void DenseDevice<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        ICudaTensor<float>? lse, AttentionOptions? options) where T : unmanaged
    {
        var dims = ValidateDevice(q, k, v, output, lse, options);
        var dtype = ElementTypes.Native<T>();
        var t = Descriptors.DeviceAttention(dtype, q, k, v, output, lse);
        var native = (options ?? AttentionOptions.Default).ToNative();
        _ = dims;
        NativeStatus.Check(NativeMethods.sa_dense_forward(&t.Q, &t.K, &t.V, &t.Output, t.HasLse ? &t.Lse : null, &native),
            NativeNames.Attention);
    }

    /// <summary>Common checks of a device call: non-null tensors, dtype, one device, shapes, options.</summary>
    private static AttentionDims ValidateDevice<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v,
        ICudaTensor<T> output, ICudaTensor<float>? lse, AttentionOptions? options) where T : unmanaged
    {
        Validation.NotNull(q, nameof(q));
        Validation.NotNull(k, nameof(k));
        Validation.NotNull(v, nameof(v));
        Validation.NotNull(output, nameof(output));
        ElementTypes.ForDevice<T>(DeviceKind.Cuda);
        (options ?? AttentionOptions.Default).Validate(nameof(options));
        var dims = Validation.Qkvo(new TensorArg(nameof(q), q.Lengths, q.Strides), new TensorArg(nameof(k), k.Lengths, k.Strides),
            new TensorArg(nameof(v), v.Lengths, v.Strides), new TensorArg(nameof(output), output.Lengths, output.Strides),
            DeviceKind.Cuda);
        Validation.SameDevice(q.Device, nameof(q), k.Device, nameof(k));
        Validation.SameDevice(q.Device, nameof(q), v.Device, nameof(v));
        Validation.SameDevice(q.Device, nameof(q), output.Device, nameof(output));
        if (lse is not null)
        {
            Validation.Lse(new TensorArg(nameof(lse), lse.Lengths, lse.Strides), dims);
            Validation.SameDevice(q.Device, nameof(q), lse.Device, nameof(lse));
        }
        return dims;
    }

    // ---------------------------------------------------------------------------------------------
    // Dense, packed variable-length batches
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Dense attention over packed variable-length sequences on the CPU: sequence b holds query rows
    /// [cuSeqlensQ[b], cuSeqlensQ[b+1]) and key rows [cuSeqlensK[b], cuSeqlensK[b+1]). Causal is
    /// bottom-right aligned per sequence.
    /// </summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [T_q, H_q, D].</param>
    /// <param name="k">Keys [T_k, H_kv, D].</param>
    /// <param name="v">Values [T_k, H_kv, D].</param>
    /// <param name="output">Result [T_q, H_q, D].</param>
    /// <param name="cuSeqlensQ">Cumulative query lengths [B + 1]: starts at 0, non-decreasing, ends at T_q.</param>
    /// <param name="cuSeqlensK">Cumulative key lengths [B + 1]: starts at 0, non-decreasing, ends at T_k.</param>
    /// <param name="maxSeqlenQ">An upper bound of every query sequence length.</param>
    /// <param name="maxSeqlenK">An upper bound of every key sequence length.</param>
    /// <param name="options">Scale, causal flag and alignment, threads; null for the defaults.</param>
    public static void DenseVarlen<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, ReadOnlySpan<int> cuSeqlensQ, ReadOnlySpan<int> cuSeqlensK, int maxSeqlenQ,
        int maxSeqlenK, AttentionOptions? options = null) where T : unmanaged =>
        DenseVarlenHost(q, k, v, output, default, false, cuSeqlensQ, cuSeqlensK, maxSeqlenQ, maxSeqlenK, options);

    /// <summary>Packed variable-length dense attention on the CPU, also writing the log-sum-exp.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [T_q, H_q, D].</param>
    /// <param name="k">Keys [T_k, H_kv, D].</param>
    /// <param name="v">Values [T_k, H_kv, D].</param>
    /// <param name="output">Result [T_q, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [H_q, T_q].</param>
    /// <param name="cuSeqlensQ">Cumulative query lengths [B + 1].</param>
    /// <param name="cuSeqlensK">Cumulative key lengths [B + 1].</param>
    /// <param name="maxSeqlenQ">An upper bound of every query sequence length.</param>
    /// <param name="maxSeqlenK">An upper bound of every key sequence length.</param>
    /// <param name="options">Scale, causal flag and alignment, threads; null for the defaults.</param>
    public static void DenseVarlen<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, TensorSpan<float> lse, ReadOnlySpan<int> cuSeqlensQ, ReadOnlySpan<int> cuSeqlensK,
        int maxSeqlenQ, int maxSeqlenK, AttentionOptions? options = null) where T : unmanaged =>
        DenseVarlenHost(q, k, v, output, lse, true, cuSeqlensQ, cuSeqlensK, maxSeqlenQ, maxSeqlenK, options);

    /// <summary>Packed variable-length dense attention on a CUDA device.</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="q">Queries [T_q, H_q, D].</param>
    /// <param name="k">Keys [T_k, H_kv, D].</param>
    /// <param name="v">Values [T_k, H_kv, D].</param>
    /// <param name="output">Result [T_q, H_q, D].</param>
    /// <param name="lse">Log-sum-exp, fp32 [H_q, T_q], or null.</param>
    /// <param name="cuSeqlensQ">Cumulative query lengths, int32 [B + 1] on the same device.</param>
    /// <param name="cuSeqlensK">Cumulative key lengths, int32 [B + 1] on the same device.</param>
    /// <param name="maxSeqlenQ">An upper bound of every query sequence length (no host round-trip is made).</param>
    /// <param name="maxSeqlenK">An upper bound of every key sequence length.</param>
    /// <param name="options">Scale, causal flag, stream, kernel choice; null for the defaults.</param>
    public static void DenseVarlen<T>(ICudaTensor<T> q, ICudaTensor<T> k, ICudaTensor<T> v, ICudaTensor<T> output,
        ICudaTensor<float>? lse, ICudaTensor<int> cuSeqlensQ, ICudaTensor<int> cuSeqlensK, int maxSeqlenQ,
        int maxSeqlenK, AttentionOptions? options = null) where T : unmanaged
    {
        Validation.NotNull(q, nameof(q));
        Validation.NotNull(k, nameof(k));
        Validation.NotNull(v, nameof(v));
        Validation.NotNull(output, nameof(output));
        Validation.NotNull(cuSeqlensQ, nameof(cuSeqlensQ));
        Validation.NotNull(cuSeqlensK, nameof(cuSeqlensK));
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cuda);
        options ??= AttentionOptions.Default;
        options.Validate(nameof(options));
        var batch = ValidateVarlen(new TensorArg(nameof(q), q.Lengths, q.Strides), new TensorArg(nameof(k), k.Lengths, k.Strides),
            new TensorArg(nameof(v), v.Lengths, v.Strides), new TensorArg(nameof(output), output.Lengths, output.Strides),
            lse is null ? default : new TensorArg(nameof(lse), lse.Lengths, lse.Strides), DeviceKind.Cuda);
        ValidateCuSeqlensShape(new TensorArg(nameof(cuSeqlensQ), cuSeqlensQ.Lengths, cuSeqlensQ.Strides), null);
        ValidateCuSeqlensShape(new TensorArg(nameof(cuSeqlensK), cuSeqlensK.Lengths, cuSeqlensK.Strides),
            (int)cuSeqlensQ.Lengths[0]);
        _ = batch;
        foreach (var (device, name) in new[] { (k.Device, nameof(k)), (v.Device, nameof(v)), (output.Device, nameof(output)),
                     (cuSeqlensQ.Device, nameof(cuSeqlensQ)), (cuSeqlensK.Device, nameof(cuSeqlensK)),
                     (lse?.Device ?? q.Device, nameof(lse)) })
        {
            Validation.SameDevice(q.Device, nameof(q), device, name);
        }
        var t = Descriptors.DeviceAttention(dtype, q, k, v, output, lse);
        var tcq = Descriptors.Device(cuSeqlensQ, sa_dtype.SA_DTYPE_I32);
        var tck = Descriptors.Device(cuSeqlensK, sa_dtype.SA_DTYPE_I32);
        var native = options.ToNative();
        NativeStatus.Check(NativeMethods.sa_dense_forward_varlen(&t.Q, &t.K, &t.V, &t.Output, t.HasLse ? &t.Lse : null, &tcq, &tck,
            maxSeqlenQ, maxSeqlenK, &native), NativeNames.Varlen);
    }

    private static void DenseVarlenHost<T>(ReadOnlyTensorSpan<T> q, ReadOnlyTensorSpan<T> k, ReadOnlyTensorSpan<T> v,
        TensorSpan<T> output, TensorSpan<float> lse, bool hasLse, ReadOnlySpan<int> cuSeqlensQ,
        ReadOnlySpan<int> cuSeqlensK, int maxSeqlenQ, int maxSeqlenK, AttentionOptions? options) where T : unmanaged
    {
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cpu);
        options ??= AttentionOptions.Default;
        options.Validate(nameof(options));
        ValidateVarlen(new TensorArg(nameof(q), q.Lengths, q.Strides), new TensorArg(nameof(k), k.Lengths, k.Strides),
            new TensorArg(nameof(v), v.Lengths, v.Strides), new TensorArg(nameof(output), output.Lengths, output.Strides),
            hasLse ? new TensorArg(nameof(lse), lse.Lengths, lse.Strides) : default, DeviceKind.Cpu);
        ValidateCuSeqlens(cuSeqlensQ, nameof(cuSeqlensQ), q.Lengths[0], maxSeqlenQ, nameof(maxSeqlenQ), -1);
        ValidateCuSeqlens(cuSeqlensK, nameof(cuSeqlensK), k.Lengths[0], maxSeqlenK, nameof(maxSeqlenK), cuSeqlensQ.Length);
        nint[] cuLengths = [cuSeqlensQ.Length];
        nint[] cuStrides = [1];
        fixed (T* pq = q)
        fixed (T* pk = k)
        fixed (T* pv = v)
        fixed (T* po = output)
        fixed (float* pl = lse)
        fixed (int* pcq = cuSeqlensQ)
        fixed (int* pck = cuSeqlensK)
        {
            var t = Descriptors.HostAttention(dtype, pq, q, pk, k, pv, v, po, output, pl, lse, hasLse);
            var tcq = Descriptors.HostInt(pcq, cuLengths, cuStrides);
            var tck = Descriptors.HostInt(pck, cuLengths, cuStrides);
            var native = options.ToNative();
            NativeStatus.Check(NativeMethods.sa_dense_forward_varlen(&t.Q, &t.K, &t.V, &t.Output, t.HasLse ? &t.Lse : null, &tcq, &tck,
                maxSeqlenQ, maxSeqlenK, &native), NativeNames.Varlen);
        }
    }

    private static int ValidateVarlen(in TensorArg q, in TensorArg k, in TensorArg v, in TensorArg output, in TensorArg lse,
        DeviceKind device)
    {
        const string layout = "[T, H, D]";
        Validation.Rank(q, 3, layout);
        Validation.Rank(k, 3, layout);
        Validation.Rank(v, 3, layout);
        Validation.Rank(output, 3, layout);
        Validation.Layout(q);
        Validation.Layout(k);
        Validation.Layout(v);
        Validation.Layout(output);
        if (k.Lengths[2] != q.Lengths[2])
        {
            throw new ArgumentException(
                $"k has head dim {k.Lengths[2]} (shape {k.Shape}) but q has head dim {q.Lengths[2]} (shape {q.Shape}).", k.Name);
        }
        Validation.SameLengths(k, v);
        if (q.Lengths[1] % k.Lengths[1] != 0)
        {
            throw new ArgumentException(
                $"q has {q.Lengths[1]} heads, not a multiple of the {k.Lengths[1]} heads of k (GQA needs H_q % H_kv == 0).",
                k.Name);
        }
        Validation.SameLengths(q, output);
        Validation.HeadDim((int)q.Lengths[2], device, q.Name);
        if (lse.IsPresent)
        {
            var l = lse;
            Validation.Rank(l, 2, "[H_q, T_q]");
            Validation.Layout(l);
            if (l.Lengths[0] != q.Lengths[1] || l.Lengths[1] != q.Lengths[0])
            {
                throw new ArgumentException(
                    $"{l.Name} has shape {l.Shape} but must be [H_q, T_q] = [{q.Lengths[1]}, {q.Lengths[0]}].", l.Name);
            }
        }
        return 0;
    }

    private static void ValidateCuSeqlensShape(in TensorArg cu, int? expectedLength)
    {
        Validation.Rank(cu, 1, "[B + 1]");
        Validation.Layout(cu);
        if (cu.Lengths[0] < 2)
        {
            throw new ArgumentException($"{cu.Name} has {cu.Lengths[0]} entries; it needs B + 1 >= 2.", cu.Name);
        }
        if (expectedLength is { } n && cu.Lengths[0] != n)
        {
            throw new ArgumentException(
                $"{cu.Name} has {cu.Lengths[0]} entries but cuSeqlensQ has {n}; both are [B + 1].", cu.Name);
        }
    }

    private static void ValidateCuSeqlens(ReadOnlySpan<int> cu, string name, nint total, int maxSeqlen, string maxName,
        int expectedLength)
    {
        if (cu.Length < 2)
        {
            throw new ArgumentException($"{name} has {cu.Length} entries; it needs B + 1 >= 2.", name);
        }
        if (expectedLength >= 0 && cu.Length != expectedLength)
        {
            throw new ArgumentException(
                $"{name} has {cu.Length} entries but cuSeqlensQ has {expectedLength}; both are [B + 1].", name);
        }
        if (cu[0] != 0)
        {
            throw new ArgumentException($"{name}[0] = {cu[0]} must be 0.", name);
        }
        if (cu[^1] != total)
        {
            throw new ArgumentException($"{name}[{cu.Length - 1}] = {cu[^1]} must equal the packed length {total}.", name);
        }
        for (var b = 0; b + 1 < cu.Length; b++)
        {
            var length = cu[b + 1] - cu[b];
            if (length < 0)
            {
                throw new ArgumentException(
                    $"{name} decreases at index {b + 1} ({cu[b]} then {cu[b + 1]}); it must be non-decreasing.", name);
            }
            if (length > maxSeqlen)
            {
                throw new ArgumentOutOfRangeException(maxName, maxSeqlen,
                    $"{maxName} = {maxSeqlen} is less than the length {length} of sequence {b} in {name}.");
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // LSE merge
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Merges two partial results over disjoint key sets into the result over their union (CPU):
    /// lse = log(exp(lse1) + exp(lse2)), output = o1 exp(lse1 - lse) + o2 exp(lse2 - lse).
    /// <paramref name="output"/> may be the same memory as <paramref name="o1"/>.
    /// </summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="o1">First partial output [B, S, H, D].</param>
    /// <param name="lse1">First partial log-sum-exp, fp32 [B, H, S].</param>
    /// <param name="o2">Second partial output [B, S, H, D].</param>
    /// <param name="lse2">Second partial log-sum-exp, fp32 [B, H, S].</param>
    /// <param name="output">Merged output [B, S, H, D].</param>
    public static void MergeLse<T>(ReadOnlyTensorSpan<T> o1, ReadOnlyTensorSpan<float> lse1, ReadOnlyTensorSpan<T> o2,
        ReadOnlyTensorSpan<float> lse2, TensorSpan<T> output) where T : unmanaged =>
        MergeLseHost(o1, lse1, o2, lse2, output, default, false);

    /// <summary>Merges two partial results (CPU) and writes the merged log-sum-exp.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="o1">First partial output [B, S, H, D].</param>
    /// <param name="lse1">First partial log-sum-exp, fp32 [B, H, S].</param>
    /// <param name="o2">Second partial output [B, S, H, D].</param>
    /// <param name="lse2">Second partial log-sum-exp, fp32 [B, H, S].</param>
    /// <param name="output">Merged output [B, S, H, D]; may alias o1.</param>
    /// <param name="lseOut">Merged log-sum-exp [B, H, S]; may alias lse1.</param>
    public static void MergeLse<T>(ReadOnlyTensorSpan<T> o1, ReadOnlyTensorSpan<float> lse1, ReadOnlyTensorSpan<T> o2,
        ReadOnlyTensorSpan<float> lse2, TensorSpan<T> output, TensorSpan<float> lseOut) where T : unmanaged =>
        MergeLseHost(o1, lse1, o2, lse2, output, lseOut, true);

    /// <summary>Merges two partial results on a CUDA device (asynchronous on <paramref name="stream"/>).</summary>
    /// <typeparam name="T">Half or BFloat16.</typeparam>
    /// <param name="o1">First partial output [B, S, H, D].</param>
    /// <param name="lse1">First partial log-sum-exp, fp32 [B, H, S].</param>
    /// <param name="o2">Second partial output [B, S, H, D].</param>
    /// <param name="lse2">Second partial log-sum-exp, fp32 [B, H, S].</param>
    /// <param name="output">Merged output [B, S, H, D]; may alias o1.</param>
    /// <param name="lseOut">Merged log-sum-exp [B, H, S] or null; may alias lse1.</param>
    /// <param name="stream">Stream to run on (null: the default stream).</param>
    public static void MergeLse<T>(ICudaTensor<T> o1, ICudaTensor<float> lse1, ICudaTensor<T> o2, ICudaTensor<float> lse2,
        ICudaTensor<T> output, ICudaTensor<float>? lseOut = null, CudaStream? stream = null) where T : unmanaged
    {
        Validation.NotNull(o1, nameof(o1));
        Validation.NotNull(lse1, nameof(lse1));
        Validation.NotNull(o2, nameof(o2));
        Validation.NotNull(lse2, nameof(lse2));
        Validation.NotNull(output, nameof(output));
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cuda);
        ValidateMerge(new TensorArg(nameof(o1), o1.Lengths, o1.Strides), new TensorArg(nameof(lse1), lse1.Lengths, lse1.Strides),
            new TensorArg(nameof(o2), o2.Lengths, o2.Strides), new TensorArg(nameof(lse2), lse2.Lengths, lse2.Strides),
            new TensorArg(nameof(output), output.Lengths, output.Strides),
            lseOut is null ? default : new TensorArg(nameof(lseOut), lseOut.Lengths, lseOut.Strides));
        foreach (var (device, name) in new[] { (lse1.Device, nameof(lse1)), (o2.Device, nameof(o2)), (lse2.Device, nameof(lse2)),
                     (output.Device, nameof(output)), (lseOut?.Device ?? o1.Device, nameof(lseOut)) })
        {
            Validation.SameDevice(o1.Device, nameof(o1), device, name);
        }
        var t1 = Descriptors.Device(o1, dtype);
        var tl1 = Descriptors.Device(lse1, sa_dtype.SA_DTYPE_F32);
        var t2 = Descriptors.Device(o2, dtype);
        var tl2 = Descriptors.Device(lse2, sa_dtype.SA_DTYPE_F32);
        var to = Descriptors.Device(output, dtype);
        var tlo = lseOut is null ? default : Descriptors.Device(lseOut, sa_dtype.SA_DTYPE_F32);
        NativeStatus.Check(NativeMethods.sa_lse_merge(&t1, &tl1, &t2, &tl2, &to, lseOut is null ? null : &tlo,
            (void*)(stream?.Handle ?? 0)), NativeNames.Merge);
    }

    private static void MergeLseHost<T>(ReadOnlyTensorSpan<T> o1, ReadOnlyTensorSpan<float> lse1, ReadOnlyTensorSpan<T> o2,
        ReadOnlyTensorSpan<float> lse2, TensorSpan<T> output, TensorSpan<float> lseOut, bool hasLseOut) where T : unmanaged
    {
        var dtype = ElementTypes.ForDevice<T>(DeviceKind.Cpu);
        ValidateMerge(new TensorArg(nameof(o1), o1.Lengths, o1.Strides), new TensorArg(nameof(lse1), lse1.Lengths, lse1.Strides),
            new TensorArg(nameof(o2), o2.Lengths, o2.Strides), new TensorArg(nameof(lse2), lse2.Lengths, lse2.Strides),
            new TensorArg(nameof(output), output.Lengths, output.Strides),
            hasLseOut ? new TensorArg(nameof(lseOut), lseOut.Lengths, lseOut.Strides) : default);
        fixed (T* p1 = o1)
        fixed (float* pl1 = lse1)
        fixed (T* p2 = o2)
        fixed (float* pl2 = lse2)
        fixed (T* po = output)
        fixed (float* plo = lseOut)
        {
            var t1 = Descriptors.Host(p1, dtype, o1.Lengths, o1.Strides);
            var tl1 = Descriptors.Host(pl1, sa_dtype.SA_DTYPE_F32, lse1.Lengths, lse1.Strides);
            var t2 = Descriptors.Host(p2, dtype, o2.Lengths, o2.Strides);
            var tl2 = Descriptors.Host(pl2, sa_dtype.SA_DTYPE_F32, lse2.Lengths, lse2.Strides);
            var to = Descriptors.Host(po, dtype, output.Lengths, output.Strides);
            var tlo = hasLseOut ? Descriptors.Host(plo, sa_dtype.SA_DTYPE_F32, lseOut.Lengths, lseOut.Strides) : default;
            NativeStatus.Check(NativeMethods.sa_lse_merge(&t1, &tl1, &t2, &tl2, &to, hasLseOut ? &tlo : null, null),
                NativeNames.Merge);
        }
    }

    private static void ValidateMerge(in TensorArg o1, in TensorArg lse1, in TensorArg o2, in TensorArg lse2,
        in TensorArg output, in TensorArg lseOut)
    {
        Validation.Rank(o1, 4, "[B, S, H, D]");
        Validation.Layout(o1);
        Validation.SameLengths(o1, o2);
        Validation.Layout(o2);
        Validation.SameLengths(o1, output);
        Validation.Layout(output);
        var dims = new AttentionDims((int)o1.Lengths[0], (int)o1.Lengths[1], (int)o1.Lengths[1], (int)o1.Lengths[2],
            (int)o1.Lengths[2], (int)o1.Lengths[3]);
        Validation.Lse(lse1, dims);
        Validation.Lse(lse2, dims);
        if (lseOut.IsPresent)
        {
            Validation.Lse(lseOut, dims);
        }
    }
}
