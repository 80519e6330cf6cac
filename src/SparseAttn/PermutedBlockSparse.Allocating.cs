using System.Numerics.Tensors;

namespace SparseAttn;

// Host overloads on Tensor<T>: plan, and run into a newly allocated output.
public static partial class PermutedBlockSparse
{
    /// <summary>Plans PBS (causal prefill) on the CPU for q [B, S, H_q, D] and k [B, S, H_kv, D].</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries.</param>
    /// <param name="k">Keys.</param>
    /// <param name="options">Block, segment, tau and scale; null for the defaults (128, 256, 0.9).</param>
    /// <returns>The plan: key permutation and block lists, on the host.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="q"/> or <paramref name="k"/> is null.</exception>
    /// <exception cref="ArgumentException">Shapes that do not fit together, or bad options.</exception>
    /// <example>
    /// <code>
    /// var plan = PermutedBlockSparse.Plan(q, k, new PbsOptions { Tau = 0.9f });
    /// Console.WriteLine($"computes {plan.CausalDensity:P0} of dense causal attention");
    /// Tensor&lt;float&gt; output = PermutedBlockSparse.Run(q, k, v, plan);
    /// </code>
    /// </example>
    public static PbsPlan Plan<T>(Tensor<T> q, Tensor<T> k, PbsOptions? options = null) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        return Plan(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(), options);
    }

    /// <summary>Runs a PBS plan on the CPU into a newly allocated output shaped like <paramref name="q"/>.</summary>
    /// <typeparam name="T">float, Half or BFloat16.</typeparam>
    /// <param name="q">Queries [B, S, H_q, D].</param>
    /// <param name="k">Keys [B, S, H_kv, D].</param>
    /// <param name="v">Values [B, S, H_kv, D].</param>
    /// <param name="plan">The plan from <see cref="Plan{T}(Tensor{T}, Tensor{T}, PbsOptions?)"/>.</param>
    /// <param name="options">Scale and threads; causal is always on.</param>
    /// <returns>The output [B, S, H_q, D], a new contiguous tensor.</returns>
    /// <exception cref="ArgumentNullException">A tensor or <paramref name="plan"/> is null.</exception>
    /// <exception cref="ArgumentException">A plan made for other shapes, or bad options.</exception>
    public static Tensor<T> Run<T>(Tensor<T> q, Tensor<T> k, Tensor<T> v, PbsPlan plan, AttentionOptions? options = null)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
        var output = Tensor.CreateFromShapeUninitialized<T>(q.Lengths);
        Run(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), output.AsTensorSpan(), plan, options);
        return output;
    }
}
