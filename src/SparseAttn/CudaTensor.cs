using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>
/// A tensor in CUDA device memory: a device pointer, the CUDA ordinal, lengths and strides in
/// elements (the same conventions as <see cref="TensorSpan{T}"/>).
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public interface ICudaTensor<T> where T : unmanaged
{
    /// <summary>Device address of element [0, 0, ...].</summary>
    nint DataPointer { get; }

    /// <summary>CUDA ordinal of the memory.</summary>
    int Device { get; }

    /// <summary>Length of each dimension.</summary>
    ReadOnlySpan<nint> Lengths { get; }

    /// <summary>Stride of each dimension, in elements.</summary>
    ReadOnlySpan<nint> Strides { get; }
}

/// <summary>Shape helpers shared by the device tensor types.</summary>
internal static class Shapes
{
    public static nint[] RowMajorStrides(ReadOnlySpan<nint> lengths)
    {
        var strides = new nint[lengths.Length];
        nint stride = 1;
        for (var i = lengths.Length - 1; i >= 0; i--)
        {
            strides[i] = stride;
            stride *= lengths[i];
        }
        return strides;
    }

    public static long ElementCount(ReadOnlySpan<nint> lengths)
    {
        long count = 1;
        foreach (var length in lengths)
        {
            count = checked(count * length);
        }
        return count;
    }

    public static void CheckLengths(ReadOnlySpan<nint> lengths, string parameterName)
    {
        if (lengths.Length > SaConstants.SA_MAX_RANK)
        {
            throw new ArgumentException(
                $"{parameterName} has rank {lengths.Length}; at most {SaConstants.SA_MAX_RANK} dimensions are supported.",
                parameterName);
        }
        for (var i = 0; i < lengths.Length; i++)
        {
            if (lengths[i] < 0)
            {
                throw new ArgumentOutOfRangeException(parameterName, lengths[i],
                    $"{parameterName}[{i}] = {lengths[i]} must not be negative.");
            }
        }
    }

    public static string Format(ReadOnlySpan<nint> values) => "[" + string.Join(", ", values.ToArray()) + "]";
}

/// <summary>
/// A dense, row-major tensor that owns CUDA device memory (freed on dispose or finalization).
/// </summary>
/// <typeparam name="T">Element type (Half, BFloat16, int, float, ...).</typeparam>
public sealed unsafe class CudaTensor<T> : ICudaTensor<T>, IDisposable where T : unmanaged
{
    private readonly CudaMemoryHandle memory;
    private readonly nint[] lengths;
    private readonly nint[] strides;

    private CudaTensor(CudaMemoryHandle memory, nint[] lengths)
    {
        this.memory = memory;
        this.lengths = lengths;
        strides = Shapes.RowMajorStrides(lengths);
        ElementCount = Shapes.ElementCount(lengths);
    }

    /// <inheritdoc />
    public nint DataPointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(memory.IsClosed, this);
            return memory.DangerousGetHandle();
        }
    }

    /// <inheritdoc />
    public int Device => memory.Device;

    /// <inheritdoc />
    public ReadOnlySpan<nint> Lengths => lengths;

    /// <inheritdoc />
    public ReadOnlySpan<nint> Strides => strides;

    /// <summary>Number of dimensions.</summary>
    public int Rank => lengths.Length;

    /// <summary>Number of elements.</summary>
    public long ElementCount { get; }

    /// <summary>Size in bytes.</summary>
    public long ByteLength => ElementCount * Unsafe.SizeOf<T>();

    /// <summary>Allocates an uninitialized tensor on <paramref name="device"/>.</summary>
    /// <param name="device">CUDA ordinal.</param>
    /// <param name="lengths">Length of each dimension (at most 6).</param>
    /// <exception cref="NotSupportedException">The CUDA backend is not built or there is no such device.</exception>
    /// <exception cref="OutOfMemoryException">The device allocation failed.</exception>
    public static CudaTensor<T> Allocate(int device, params nint[] lengths)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        Shapes.CheckLengths(lengths, nameof(lengths));
        var copy = (nint[])lengths.Clone();
        var bytes = checked((nuint)(Shapes.ElementCount(copy) * Unsafe.SizeOf<T>()));
        // A zero-byte tensor still gets a distinct, freeable allocation.
        NativeStatus.Check(CudaMemoryHandle.Allocate(device, bytes == 0 ? 1 : bytes, out var handle));
        return new CudaTensor<T>(handle, copy);
    }

    /// <summary>Copies a host span into a new 1-D device tensor.</summary>
    /// <param name="data">Host data.</param>
    /// <param name="device">CUDA ordinal.</param>
    public static CudaTensor<T> FromHost(ReadOnlySpan<T> data, int device = 0) =>
        FromHost(data, [data.Length], device);

    /// <summary>Copies a host span into a new device tensor of the given lengths.</summary>
    /// <param name="data">Host data, row-major, exactly the product of <paramref name="lengths"/> elements.</param>
    /// <param name="lengths">Length of each dimension.</param>
    /// <param name="device">CUDA ordinal.</param>
    public static CudaTensor<T> FromHost(ReadOnlySpan<T> data, ReadOnlySpan<nint> lengths, int device = 0)
    {
        Shapes.CheckLengths(lengths, nameof(lengths));
        if (Shapes.ElementCount(lengths) != data.Length)
        {
            throw new ArgumentException(
                $"data has {data.Length} elements but lengths {Shapes.Format(lengths)} need {Shapes.ElementCount(lengths)}.",
                nameof(data));
        }
        var tensor = Allocate(device, lengths.ToArray());
        try
        {
            tensor.CopyFrom(data);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
    }

    /// <summary>Copies a host tensor span (any strides) into a new dense device tensor of the same lengths.</summary>
    /// <param name="data">Host tensor.</param>
    /// <param name="device">CUDA ordinal.</param>
    public static CudaTensor<T> FromHost(ReadOnlyTensorSpan<T> data, int device = 0)
    {
        var flat = new T[data.FlattenedLength];
        data.FlattenTo(flat);
        return FromHost(flat, data.Lengths, device);
    }

    /// <summary>Copies <paramref name="source"/> (exactly <see cref="ElementCount"/> elements) to the device; returns when done.</summary>
    /// <param name="source">Host data, row-major.</param>
    public void CopyFrom(ReadOnlySpan<T> source)
    {
        if (source.Length != ElementCount)
        {
            throw new ArgumentException(
                $"source has {source.Length} elements but the tensor has {ElementCount}.", nameof(source));
        }
        if (source.IsEmpty)
        {
            return;
        }
        fixed (T* host = source)
        {
            NativeStatus.Check(NativeMethods.sa_cuda_memcpy((void*)DataPointer, host, (nuint)ByteLength,
                sa_copy_kind.SA_COPY_HOST_TO_DEVICE, null));
        }
    }

    /// <summary>Copies the tensor to <paramref name="destination"/> (exactly <see cref="ElementCount"/> elements); returns when done.</summary>
    /// <param name="destination">Host buffer, row-major.</param>
    public void CopyTo(Span<T> destination)
    {
        if (destination.Length != ElementCount)
        {
            throw new ArgumentException(
                $"destination has {destination.Length} elements but the tensor has {ElementCount}.", nameof(destination));
        }
        if (destination.IsEmpty)
        {
            return;
        }
        fixed (T* host = destination)
        {
            NativeStatus.Check(NativeMethods.sa_cuda_memcpy(host, (void*)DataPointer, (nuint)ByteLength,
                sa_copy_kind.SA_COPY_DEVICE_TO_HOST, null));
        }
    }

    /// <summary>Copies the tensor to a new host array (row-major).</summary>
    public T[] ToArray()
    {
        var result = new T[ElementCount];
        CopyTo(result);
        return result;
    }

    /// <summary>
    /// Sets every byte of the tensor to <paramref name="value"/> (a memset: 0 clears, 0xFF writes NaN
    /// into float, Half and BFloat16 tensors).
    /// </summary>
    /// <param name="value">The byte value.</param>
    /// <param name="stream">Stream to run on (null: the default stream).</param>
    public void Fill(byte value, CudaStream? stream = null)
    {
        NativeStatus.Check(NativeMethods.sa_cuda_memset((void*)DataPointer, value, (nuint)ByteLength,
            (void*)(stream?.Handle ?? 0)));
    }

    /// <summary>A non-owning view of this tensor (valid while the tensor is alive).</summary>
    public CudaTensorView<T> AsView() => new(DataPointer, Device, lengths, strides);

    /// <summary>Frees the device memory.</summary>
    public void Dispose() => memory.Dispose();

    /// <inheritdoc />
    public override string ToString() => $"CudaTensor<{typeof(T).Name}>{Shapes.Format(lengths)} on cuda:{Device}";
}

/// <summary>
/// A non-owning view of CUDA memory owned elsewhere (another <see cref="CudaTensor{T}"/>, TorchSharp,
/// ILGPU, ...): a pointer, lengths and strides in elements. Nothing is copied.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public readonly struct CudaTensorView<T> : ICudaTensor<T> where T : unmanaged
{
    private readonly nint[] lengths;
    private readonly nint[] strides;

    /// <summary>Wraps device memory.</summary>
    /// <param name="dataPointer">Device address of element [0, 0, ...].</param>
    /// <param name="device">CUDA ordinal of the memory.</param>
    /// <param name="lengths">Length of each dimension.</param>
    /// <param name="strides">Stride of each dimension in elements; empty means dense row-major.</param>
    public CudaTensorView(nint dataPointer, int device, ReadOnlySpan<nint> lengths, ReadOnlySpan<nint> strides = default)
    {
        Shapes.CheckLengths(lengths, nameof(lengths));
        if (!strides.IsEmpty && strides.Length != lengths.Length)
        {
            throw new ArgumentException(
                $"strides has {strides.Length} entries but lengths has {lengths.Length}.", nameof(strides));
        }
        for (var i = 0; i < strides.Length; i++)
        {
            if (strides[i] < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(strides), strides[i],
                    $"strides[{i}] = {strides[i]} must not be negative.");
            }
        }
        if (device < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device, $"device = {device} must not be negative.");
        }
        DataPointer = dataPointer;
        Device = device;
        this.lengths = lengths.ToArray();
        this.strides = strides.IsEmpty ? Shapes.RowMajorStrides(lengths) : strides.ToArray();
    }

    /// <inheritdoc />
    public nint DataPointer { get; }

    /// <inheritdoc />
    public int Device { get; }

    /// <inheritdoc />
    public ReadOnlySpan<nint> Lengths => lengths;

    /// <inheritdoc />
    public ReadOnlySpan<nint> Strides => strides;

    /// <summary>Number of dimensions.</summary>
    public int Rank => lengths?.Length ?? 0;

    /// <summary>
    /// The same memory with dimensions reordered: dimension i of the result is dimension
    /// <c>order[i]</c> of this view. For example <c>Permute(0, 2, 1, 3)</c> shows [B, H, S, D] memory as
    /// [B, S, H, D].
    /// </summary>
    /// <param name="order">A permutation of 0..Rank-1.</param>
    public CudaTensorView<T> Permute(params int[] order)
    {
        ArgumentNullException.ThrowIfNull(order);
        if (order.Length != Rank)
        {
            throw new ArgumentException($"order has {order.Length} entries but the view has rank {Rank}.", nameof(order));
        }
        var seen = new bool[Rank];
        var newLengths = new nint[Rank];
        var newStrides = new nint[Rank];
        for (var i = 0; i < order.Length; i++)
        {
            var d = order[i];
            if (d < 0 || d >= Rank || seen[d])
            {
                throw new ArgumentException(
                    $"order [{string.Join(", ", order)}] is not a permutation of 0..{Rank - 1}.", nameof(order));
            }
            seen[d] = true;
            newLengths[i] = lengths[d];
            newStrides[i] = strides[d];
        }
        return new CudaTensorView<T>(DataPointer, Device, newLengths, newStrides);
    }

    /// <summary>The sub-range [start, start + length) of dimension <paramref name="dimension"/>.</summary>
    /// <param name="dimension">The dimension to slice.</param>
    /// <param name="start">First index kept.</param>
    /// <param name="length">Number of indices kept.</param>
    public CudaTensorView<T> Slice(int dimension, nint start, nint length)
    {
        if (dimension < 0 || dimension >= Rank)
        {
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension,
                $"dimension = {dimension} is outside 0..{Rank - 1}.");
        }
        // Compared without adding: start + length may overflow nint.
        if (start < 0 || length < 0 || start > lengths[dimension] || length > lengths[dimension] - start)
        {
            throw new ArgumentOutOfRangeException(nameof(start), start,
                $"range of {length} entries from {start} is outside dimension {dimension} of length {lengths[dimension]}.");
        }
        var newLengths = (nint[])lengths.Clone();
        newLengths[dimension] = length;
        nint pointer;
        try
        {
            pointer = checked(DataPointer + start * strides[dimension] * Unsafe.SizeOf<T>());
        }
        catch (OverflowException)
        {
            throw new ArgumentOutOfRangeException(nameof(start), start,
                $"start {start} at stride {strides[dimension]} is past the address space.");
        }
        return new CudaTensorView<T>(pointer, Device, newLengths, strides);
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"CudaTensorView<{typeof(T).Name}>{Shapes.Format(lengths)} strides {Shapes.Format(strides)} on cuda:{Device}";
}
