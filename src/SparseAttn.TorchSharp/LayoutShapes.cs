namespace SparseAttn.TorchSharp;

/// <summary>
/// Shape checks of torch arguments in the caller's layout, before any native call: the messages show the
/// shapes as torch reports them and name the dimensions in the order of <see cref="TensorLayout"/>.
/// Bindings arrive already seen as [B, S, H, D] (<see cref="TensorBinding.WithLayout"/>).
/// </summary>
internal static class LayoutShapes
{
    private const int Batch = 0, Seq = 1, Heads = 2, HeadDim = 3;

    public static string Order(TensorLayout layout) => layout == TensorLayout.BHSD ? "[B, H, S, D]" : "[B, S, H, D]";

    /// <summary>Torch's shape of a binding with the layout's dimension names, e.g. "[2, 8, 128, 64] ([B, H, S, D])".</summary>
    private static string Describe(TensorBinding t, TensorLayout layout) =>
        "[" + string.Join(", ", t.Tensor.shape) + "] (" + Order(layout) + ")";

    public static void RequireRank4(TensorBinding t, TensorLayout layout)
    {
        if (t.Lengths.Length != 4)
        {
            throw new ArgumentException(
                $"{t.Name} has rank {t.Lengths.Length} (shape [{string.Join(", ", t.Tensor.shape)}]) but layout {layout} " +
                $"takes 4-D tensors {Order(layout)}.", t.Name);
        }
    }

    /// <summary>q, k, v, output (and lse) of a 4-D call: k and v alike, output like q, lse [B, H_q, S_q].</summary>
    public static void Check(TensorBinding q, TensorBinding k, TensorBinding v, TensorBinding output, TensorBinding? lse,
        TensorLayout layout)
    {
        foreach (var t in new[] { q, k, v, output })
        {
            RequireRank4(t, layout);
        }
        var (qs, ks) = (q.Lengths, k.Lengths);
        if (ks[Batch] != qs[Batch] || ks[HeadDim] != qs[HeadDim])
        {
            throw new ArgumentException(
                $"k has shape {Describe(k, layout)} but q has {Describe(q, layout)}: B and D must match " +
                $"(layout {layout}; pass layout: TensorLayout.{Other(layout)} if the tensors are {Order(Other(layout))}).",
                k.Name);
        }
        if (qs[Heads] % ks[Heads] != 0)
        {
            throw new ArgumentException(
                $"k has {ks[Heads]} heads and q has {qs[Heads]} (shapes {Describe(k, layout)} and {Describe(q, layout)}): " +
                $"the query heads must be a multiple of the key heads (layout {layout}; pass layout: " +
                $"TensorLayout.{Other(layout)} if the tensors are {Order(Other(layout))}).", k.Name);
        }
        RequireSameShape(v, k, layout);
        RequireSameShape(output, q, layout);
        if (lse is not null)
        {
            RequireLseShape(lse, qs[Batch], qs[Heads], qs[Seq]);
        }
    }

    /// <summary>q, k, v, output (and lse) of a packed variable-length call: [T, H, D] tensors, lse [H_q, T_q].</summary>
    public static void CheckPacked(TensorBinding q, TensorBinding k, TensorBinding v, TensorBinding output, TensorBinding? lse)
    {
        foreach (var t in new[] { q, k, v, output })
        {
            if (t.Lengths.Length != 3)
            {
                throw new ArgumentException(
                    $"{t.Name} has rank {t.Lengths.Length} (shape {t.Shape}); packed variable-length calls take 3-D tensors [T, H, D].",
                    t.Name);
            }
        }
        RequireSameShape(v, k, TensorLayout.BSHD);
        RequireSameShape(output, q, TensorLayout.BSHD);
        if (lse is not null && (lse.Lengths.Length != 2 || lse.Lengths[0] != q.Lengths[1] || lse.Lengths[1] != q.Lengths[0]))
        {
            throw new ArgumentException(
                $"lse has shape {lse.Shape} but must be [H_q, T_q] = [{q.Lengths[1]}, {q.Lengths[0]}] for q {q.Shape}.", lse.Name);
        }
    }

    /// <summary>o1, o2 and output of an LSE merge alike; the LSEs [B, H, S].</summary>
    public static void CheckMerge(TensorBinding o1, TensorBinding o2, TensorBinding output, TensorBinding lse1, TensorBinding lse2,
        TensorBinding? lseOut, TensorLayout layout)
    {
        foreach (var t in new[] { o1, o2, output })
        {
            RequireRank4(t, layout);
        }
        RequireSameShape(o2, o1, layout);
        RequireSameShape(output, o1, layout);
        var s = o1.Lengths;
        foreach (var l in new[] { lse1, lse2, lseOut })
        {
            if (l is not null)
            {
                RequireLseShape(l, s[Batch], s[Heads], s[Seq]);
            }
        }
    }

    /// <summary>q and k of a PBS plan: rank 4, same B, S and D, query heads a multiple of key heads.</summary>
    public static void CheckPlan(TensorBinding q, TensorBinding k, TensorLayout layout)
    {
        RequireRank4(q, layout);
        RequireRank4(k, layout);
        var (qs, ks) = (q.Lengths, k.Lengths);
        if (ks[Batch] != qs[Batch] || ks[Seq] != qs[Seq] || ks[HeadDim] != qs[HeadDim] || qs[Heads] % ks[Heads] != 0)
        {
            throw new ArgumentException(
                $"k has shape {Describe(k, layout)} but q has {Describe(q, layout)}: PBS needs the same B, S and D and " +
                $"query heads a multiple of the key heads (layout {layout}).", k.Name);
        }
    }

    private static TensorLayout Other(TensorLayout layout) =>
        layout == TensorLayout.BHSD ? TensorLayout.BSHD : TensorLayout.BHSD;

    private static void RequireSameShape(TensorBinding t, TensorBinding reference, TensorLayout layout)
    {
        if (!t.Lengths.AsSpan().SequenceEqual(reference.Lengths))
        {
            var order = t.Lengths.Length == 4 ? $" {Order(layout)}" : "";
            throw new ArgumentException(
                $"{t.Name} has shape [{string.Join(", ", t.Tensor.shape)}] but must have the shape of {reference.Name}, " +
                $"[{string.Join(", ", reference.Tensor.shape)}]{order}.", t.Name);
        }
    }

    private static void RequireLseShape(TensorBinding lse, nint batch, nint heads, nint seq)
    {
        if (lse.Lengths.Length != 3 || lse.Lengths[0] != batch || lse.Lengths[1] != heads || lse.Lengths[2] != seq)
        {
            throw new ArgumentException(
                $"{lse.Name} has shape {lse.Shape} but must be float32 [B, H_q, S_q] = [{batch}, {heads}, {seq}] in every layout.",
                lse.Name);
        }
    }
}
