using System.Numerics.Tensors;
using SparseAttn.Tests.Oracle;

namespace SparseAttn.Tests.Support;

/// <summary>Conversions between the element types the library takes and the oracle's doubles.</summary>
public static class Elements
{
    public static Precision PrecisionOf<T>() =>
        typeof(T) == typeof(float) ? Precision.Float32
        : typeof(T) == typeof(Half) ? Precision.Float16
        : typeof(T) == typeof(BFloat16) ? Precision.BFloat16
        : throw new NotSupportedException(typeof(T).Name);

    public static T From<T>(double x)
    {
        if (typeof(T) == typeof(float)) return (T)(object)(float)x;
        if (typeof(T) == typeof(Half)) return (T)(object)(Half)x;
        if (typeof(T) == typeof(BFloat16)) return (T)(object)(BFloat16)x;
        if (typeof(T) == typeof(double)) return (T)(object)x;
        throw new NotSupportedException(typeof(T).Name);
    }

    public static double To<T>(T x) => x switch
    {
        float f => f,
        Half h => (double)h,
        BFloat16 b => (double)b,
        double d => d,
        _ => throw new NotSupportedException(typeof(T).Name),
    };

    public static T NaN<T>() => From<T>(double.NaN);

    public static bool IsNaN<T>(T x) => double.IsNaN(To(x));
}

/// <summary>
/// A host tensor in a chosen memory layout (dimension order and row padding), with guard elements
/// around it, so tests can pass strided views and check that nothing outside the view is written.
/// </summary>
public sealed class HostTensor<T> where T : unmanaged
{
    public const int Guard = 5;

    public T[] Storage { get; }
    public nint[] Lengths { get; }
    public nint[] Strides { get; }
    public int Offset => Guard;

    private HostTensor(T[] storage, nint[] lengths, nint[] strides)
    {
        Storage = storage;
        Lengths = lengths;
        Strides = strides;
    }

    /// <summary>
    /// New tensor of the given logical lengths; physicalOrder lists logical dims outermost first
    /// (null = row-major, the innermost dim must stay last); rowPadding adds unused elements after
    /// each innermost row. Every storage element starts as NaN.
    /// </summary>
    public static HostTensor<T> Create(nint[] lengths, int[]? physicalOrder = null, int rowPadding = 0)
    {
        int rank = lengths.Length;
        physicalOrder ??= Enumerable.Range(0, rank).ToArray();
        if (physicalOrder[^1] != rank - 1) throw new ArgumentException("the innermost dim must stay contiguous");
        var strides = new nint[rank];
        nint running = 1;
        for (int p = rank - 1; p >= 0; p--)
        {
            int dim = physicalOrder[p];
            strides[dim] = running;
            running *= lengths[dim];
            if (p == rank - 1) running += rowPadding;
        }
        // System.Numerics.Tensors requires stride 0 on length-1 dims (it normalizes them so itself).
        for (int a = 0; a < rank; a++) if (lengths[a] == 1) strides[a] = 0;
        var storage = new T[running + 2 * Guard];
        Array.Fill(storage, Elements.NaN<T>());
        return new HostTensor<T>(storage, lengths, strides);
    }

    public static HostTensor<T> FromLogical(double[] values, nint[] lengths, int[]? physicalOrder = null, int rowPadding = 0)
    {
        var t = Create(lengths, physicalOrder, rowPadding);
        t.SetLogical(values);
        return t;
    }

    public int Count => (int)Lengths.Aggregate((nint)1, (a, b) => a * b);

    public TensorSpan<T> Span => new(Storage, Offset, Lengths, Strides);
    public ReadOnlyTensorSpan<T> ReadOnly => new(Storage, Offset, Lengths, Strides);

    /// <summary>Storage index of each logical element, row-major.</summary>
    public int[] StorageIndices()
    {
        var idx = new int[Count];
        var coord = new nint[Lengths.Length];
        for (int n = 0; n < idx.Length; n++)
        {
            nint off = Offset;
            for (int a = 0; a < coord.Length; a++) off += coord[a] * Strides[a];
            idx[n] = (int)off;
            for (int a = coord.Length - 1; a >= 0; a--)
            {
                if (++coord[a] < Lengths[a]) break;
                coord[a] = 0;
            }
        }
        return idx;
    }

    public void SetLogical(double[] values)
    {
        var idx = StorageIndices();
        for (int n = 0; n < idx.Length; n++) Storage[idx[n]] = Elements.From<T>(values[n]);
    }

    public double[] ToLogical()
    {
        var idx = StorageIndices();
        var r = new double[idx.Length];
        for (int n = 0; n < idx.Length; n++) r[n] = Elements.To(Storage[idx[n]]);
        return r;
    }

    public void Poison() => Array.Fill(Storage, Elements.NaN<T>());

    /// <summary>Every logical element was written (not NaN) and every other storage element still holds NaN.</summary>
    public void AssertWrittenExactlyInside(string what, string context)
    {
        var inside = new bool[Storage.Length];
        foreach (int i in StorageIndices()) inside[i] = true;
        for (int i = 0; i < Storage.Length; i++)
        {
            bool nan = Elements.IsNaN(Storage[i]);
            if (inside[i] && nan) Assert.Fail($"{what}: element at storage index {i} was not written (still NaN); {context}");
            if (!inside[i] && !nan) Assert.Fail($"{what}: storage index {i} outside the view was written; {context}");
        }
    }
}

/// <summary>Memory layouts used to exercise strides.</summary>
public enum Layout
{
    /// <summary>[B, S, H, D] row-major.</summary>
    Contiguous,
    /// <summary>[B, H, S, D] memory seen as [B, S, H, D], rows padded.</summary>
    HeadsFirstPadded,
}

public static class Layouts
{
    public static HostTensor<T> Attention<T>(double[] values, nint[] lengths, Layout layout) where T : unmanaged =>
        layout == Layout.Contiguous
            ? HostTensor<T>.FromLogical(values, lengths)
            : HostTensor<T>.FromLogical(values, lengths, new[] { 0, 2, 1, 3 }, rowPadding: 3);

    public static HostTensor<T> AttentionOutput<T>(nint[] lengths, Layout layout) where T : unmanaged =>
        layout == Layout.Contiguous
            ? HostTensor<T>.Create(lengths)
            : HostTensor<T>.Create(lengths, new[] { 0, 2, 1, 3 }, rowPadding: 3);

    /// <summary>LSE [B, H, S]; the strided variant stores it as [H, B, S] with padded rows.</summary>
    public static HostTensor<float> Lse(nint[] lengths, Layout layout) =>
        layout == Layout.Contiguous
            ? HostTensor<float>.Create(lengths)
            : HostTensor<float>.Create(lengths, new[] { 1, 0, 2 }, rowPadding: 2);
}
