using System.Numerics.Tensors;

namespace SparseAttn;

// Host overloads that allocate their output: Tensor<T> in, a new contiguous Tensor<T> (or array) out.
public static partial class Attention
{
    /// <summary>Dense attention on the CPU into a newly allocated output shaped like <paramref name="q"/>.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D]; H_q is a multiple of H_kv (GQA/MQA).</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="options">Scale, causal flag and alignment, threads; null for the defaults.</param>
    /// <returns>The output [B, S_q, H_q, D], a new contiguous tensor.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="q"/>, <paramref name="k"/> or <paramref name="v"/> is null.</exception>
    /// <exception cref="ArgumentException">T is not float, Half or BFloat16, shapes that do not fit together, an unsupported head dim or bad options; the message names the parameter.</exception>
    /// <example>
    /// Causal attention of 128 queries over 512 keys, the diagonal aligned as torch's is_causal:
    /// <code>
    /// var q = Tensor.Create(new float[1 * 128 * 8 * 64], [1, 128, 8, 64]);
    /// var k = Tensor.Create(new float[1 * 512 * 2 * 64], [1, 512, 2, 64]);
    /// var v = Tensor.Create(new float[1 * 512 * 2 * 64], [1, 512, 2, 64]);
    /// Tensor&lt;float&gt; output = Attention.Dense(q, k, v,
    ///     new AttentionOptions { Causal = true, CausalAlignment = CausalAlignment.TopLeft });
    /// </code>
    /// </example>
    public static Tensor<T> Dense<T>(Tensor<T> q, Tensor<T> k, Tensor<T> v, AttentionOptions? options = null)
        where T : unmanaged
    {
        CheckInputs(q, k, v);
        var output = Tensor.CreateFromShapeUninitialized<T>(q.Lengths);
        Dense(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), output.AsTensorSpan(), options);
        return output;
    }

    /// <summary>Dense attention on the CPU, returning a new output and its log-sum-exp.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="options">Scale, causal flag and alignment, threads; null for the defaults.</param>
    /// <returns>The output [B, S_q, H_q, D] and the fp32 log-sum-exp [B, H_q, S_q] (-inf for rows with no allowed key).</returns>
    /// <exception cref="ArgumentNullException">A tensor is null.</exception>
    /// <exception cref="ArgumentException">Shapes that do not fit together, an unsupported head dim or bad options.</exception>
    public static (Tensor<T> Output, Tensor<float> Lse) DenseWithLse<T>(Tensor<T> q, Tensor<T> k, Tensor<T> v,
        AttentionOptions? options = null) where T : unmanaged
    {
        CheckInputs(q, k, v);
        var output = Tensor.CreateFromShapeUninitialized<T>(q.Lengths);
        var lse = Tensor.CreateFromShapeUninitialized<float>(LseLengths(q.Lengths, nameof(q)));
        Dense(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), output.AsTensorSpan(),
            lse.AsTensorSpan(), options);
        return (output, lse);
    }

    /// <summary>Dense attention on the CPU over contiguous row-major arrays, returning a new output array.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries, row-major <paramref name="queryShape"/>.</param>
    /// <param name="k">Keys, row-major <paramref name="keyShape"/>.</param>
    /// <param name="v">Values, row-major <paramref name="keyShape"/>.</param>
    /// <param name="queryShape">[B, S_q, H_q, D]; the output has this shape too.</param>
    /// <param name="keyShape">[B, S_k, H_kv, D].</param>
    /// <param name="options">Scale, causal flag and alignment, threads; null for the defaults.</param>
    /// <returns>The output, row-major [B, S_q, H_q, D].</returns>
    /// <exception cref="ArgumentNullException">An array is null.</exception>
    /// <exception cref="ArgumentException">An array whose length is not the product of its shape, shapes that do not fit together, bad options.</exception>
    /// <example>
    /// <code>
    /// float[] output = Attention.Dense(q, k, v, queryShape: [1, 256, 4, 64], keyShape: [1, 256, 4, 64],
    ///     new AttentionOptions { Causal = true });
    /// </code>
    /// </example>
    public static T[] Dense<T>(T[] q, T[] k, T[] v, ReadOnlySpan<nint> queryShape, ReadOnlySpan<nint> keyShape,
        AttentionOptions? options = null) where T : unmanaged
    {
        var tq = ArrayTensor(q, queryShape, nameof(q), nameof(queryShape));
        var tk = ArrayTensor(k, keyShape, nameof(k), nameof(keyShape));
        var tv = ArrayTensor(v, keyShape, nameof(v), nameof(keyShape));
        var output = new T[q.Length];
        Dense(tq, tk, tv, new TensorSpan<T>(output, queryShape, default), options);
        return output;
    }

    /// <summary>Generalized neighborhood attention on the CPU into a newly allocated output shaped like <paramref name="q"/>.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D], S = the product of the grid of <paramref name="config"/>.</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="config">Grid, window, dilation, stride and causal flags.</param>
    /// <param name="options">Scale, threads; null for the defaults (Causal must be false).</param>
    /// <returns>The output [B, S, H_q, D], a new contiguous tensor.</returns>
    /// <exception cref="ArgumentNullException">A tensor or <paramref name="config"/> is null.</exception>
    /// <exception cref="ArgumentException">S is not the grid's token count, other shape errors, bad options.</exception>
    /// <example>
    /// A 7 x 7 window over a 32 x 32 token grid:
    /// <code>
    /// var config = NeighborhoodConfig.Create2D(grid: (32, 32), kernel: (7, 7));
    /// Tensor&lt;float&gt; output = Attention.Neighborhood(q, k, v, config);
    /// </code>
    /// </example>
    public static Tensor<T> Neighborhood<T>(Tensor<T> q, Tensor<T> k, Tensor<T> v, NeighborhoodConfig config,
        AttentionOptions? options = null) where T : unmanaged
    {
        CheckInputs(q, k, v);
        var output = Tensor.CreateFromShapeUninitialized<T>(q.Lengths);
        Neighborhood(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), output.AsTensorSpan(), config,
            options);
        return output;
    }

    /// <summary>Block-sparse attention on the CPU into a newly allocated output shaped like <paramref name="q"/>.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S_q, H_q, D].</param>
    /// <param name="k">Keys [B, S_k, H_kv, D].</param>
    /// <param name="v">Values [B, S_k, H_kv, D].</param>
    /// <param name="mask">Block lists (blocks of 64 or 128).</param>
    /// <param name="options">Scale, causal flag and alignment, threads; null for the defaults.</param>
    /// <param name="keyPermutation">Optional [S_k] or [B, H_q, S_k]: permuted key j is original key keyPermutation[j].</param>
    /// <param name="queryPermutation">Optional [S_q] or [B, H_q, S_q].</param>
    /// <returns>The output [B, S_q, H_q, D] in original query order, a new contiguous tensor.</returns>
    /// <exception cref="ArgumentNullException">A tensor or <paramref name="mask"/> is null.</exception>
    /// <exception cref="ArgumentException">A mask or permutation that does not fit the shapes, other shape errors, bad options.</exception>
    /// <example>
    /// <code>
    /// var mask = BlockMask.Random(seq: 1024, block: 128, density: 0.25, seed: 1);
    /// Tensor&lt;float&gt; output = Attention.BlockSparse(q, k, v, mask);
    /// </code>
    /// </example>
    public static Tensor<T> BlockSparse<T>(Tensor<T> q, Tensor<T> k, Tensor<T> v, BlockMask mask, AttentionOptions? options = null,
        ReadOnlySpan<int> keyPermutation = default, ReadOnlySpan<int> queryPermutation = default) where T : unmanaged
    {
        CheckInputs(q, k, v);
        var output = Tensor.CreateFromShapeUninitialized<T>(q.Lengths);
        BlockSparse(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), output.AsTensorSpan(), mask,
            options, keyPermutation, queryPermutation);
        return output;
    }

    private static void CheckInputs<T>(Tensor<T> q, Tensor<T> k, Tensor<T> v)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
    }

    /// <summary>[B, H, S] of a [B, S, H, D] query shape.</summary>
    internal static nint[] LseLengths(ReadOnlySpan<nint> queryLengths, string name)
    {
        if (queryLengths.Length != 4)
        {
            throw new ArgumentException($"{name} must have rank 4 ([B, S, H, D]) but has rank {queryLengths.Length}.", name);
        }
        return [queryLengths[0], queryLengths[2], queryLengths[1]];
    }

    private static ReadOnlyTensorSpan<T> ArrayTensor<T>(T[] data, ReadOnlySpan<nint> shape, string name, string shapeName)
    {
        ArgumentNullException.ThrowIfNull(data, name);
        long count = 1;
        foreach (var length in shape)
        {
            if (length < 1)
            {
                throw new ArgumentException($"{shapeName} [{string.Join(", ", shape.ToArray())}] has a length below 1.", shapeName);
            }
            count = checked(count * length);
        }
        if (shape.Length != 4 || count != data.Length)
        {
            throw new ArgumentException(
                $"{name} has {data.Length} elements but {shapeName} is [{string.Join(", ", shape.ToArray())}]; it must be " +
                "[B, S, H, D] with exactly one element per entry.", name);
        }
        return new ReadOnlyTensorSpan<T>(data, shape, default);
    }
}
