using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using TorchSharp;
using ScalarType = TorchSharp.torch.ScalarType;
using Tensor = TorchSharp.torch.Tensor;

namespace SparseAttn.TorchSharp;

/// <summary>
/// Views of TorchSharp tensors as SparseAttn tensors, over the same memory: host
/// <see cref="TensorSpan{T}"/> for CPU tensors and <see cref="CudaTensorView{T}"/> for CUDA tensors.
/// Shape, strides (in elements), storage offset, dtype and device are read from the tensor; nothing
/// is copied, so the tensor must stay alive (and unchanged in shape) while a view is used.
/// </summary>
public static unsafe class TorchTensors
{
    private static readonly Lazy<nint> TensorDataFunction = new(FindTensorDataFunction);

    /// <summary>
    /// Address of element [0, 0, ...] of <paramref name="tensor"/> (host or device memory; the storage offset
    /// is included). Zero for a tensor without storage.
    /// </summary>
    /// <param name="tensor">A TorchSharp tensor.</param>
    public static nint DataPointer(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var data = (delegate* unmanaged<nint, nint>)TensorDataFunction.Value;
        var pointer = data(tensor.Handle);
        GC.KeepAlive(tensor);
        return pointer;
    }

    /// <summary>The SparseAttn element type of a torch dtype, or null when SparseAttn has none.</summary>
    /// <param name="dtype">A torch dtype.</param>
    public static DataType? ToDataType(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => DataType.Float32,
        ScalarType.Float16 => DataType.Float16,
        ScalarType.BFloat16 => DataType.BFloat16,
        _ => null,
    };

    /// <summary>The torch dtype of a SparseAttn element type.</summary>
    /// <param name="dataType">A SparseAttn element type.</param>
    public static ScalarType ToScalarType(DataType dataType) => dataType switch
    {
        DataType.Float32 => ScalarType.Float32,
        DataType.Float16 => ScalarType.Float16,
        DataType.BFloat16 => ScalarType.BFloat16,
        _ => throw new ArgumentOutOfRangeException(nameof(dataType), dataType, $"dataType = {dataType} has no torch dtype."),
    };

    /// <summary>
    /// A writable host view of a CPU tensor. <typeparamref name="T"/> must match the dtype: float for
    /// float32, <see cref="Half"/> for float16, <see cref="BFloat16"/> for bfloat16, int for int32.
    /// </summary>
    /// <typeparam name="T">Element type matching the tensor's dtype.</typeparam>
    /// <param name="tensor">A CPU tensor.</param>
    public static TensorSpan<T> AsTensorSpan<T>(this Tensor tensor) where T : unmanaged =>
        TensorBinding.Bind(tensor, nameof(tensor), ElementKinds.Any).Writable<T>();

    /// <summary>A read-only host view of a CPU tensor (see <see cref="AsTensorSpan{T}(Tensor)"/>).</summary>
    /// <typeparam name="T">Element type matching the tensor's dtype.</typeparam>
    /// <param name="tensor">A CPU tensor.</param>
    public static ReadOnlyTensorSpan<T> AsReadOnlyTensorSpan<T>(this Tensor tensor) where T : unmanaged =>
        TensorBinding.Bind(tensor, nameof(tensor), ElementKinds.Any).ReadOnly<T>();

    /// <summary>
    /// A non-owning device view of a CUDA tensor, with its strides and the CUDA ordinal of its device.
    /// <typeparamref name="T"/> must match the dtype (see <see cref="AsTensorSpan{T}(Tensor)"/>).
    /// </summary>
    /// <typeparam name="T">Element type matching the tensor's dtype.</typeparam>
    /// <param name="tensor">A CUDA tensor.</param>
    public static CudaTensorView<T> AsCudaView<T>(this Tensor tensor) where T : unmanaged =>
        TensorBinding.Bind(tensor, nameof(tensor), ElementKinds.Any).DeviceView<T>();

    /// <summary>Finds libtorch-sharp's data-pointer export in the library TorchSharp has loaded.</summary>
    private static nint FindTensorDataFunction()
    {
        // Loading a tensor type first makes TorchSharp load its native library, which is then found by name.
        _ = torch.ScalarType.Float32;
        string[] names = OperatingSystem.IsWindows()
            ? ["LibTorchSharp.dll", "LibTorchSharp"]
            : OperatingSystem.IsMacOS() ? ["libLibTorchSharp.dylib", "LibTorchSharp"] : ["libLibTorchSharp.so", "LibTorchSharp"];
        foreach (var name in names)
        {
            if ((NativeLibrary.TryLoad(name, typeof(torch).Assembly, null, out var handle) ||
                 NativeLibrary.TryLoad(name, out handle)) &&
                NativeLibrary.TryGetExport(handle, "THSTensor_data", out var function))
            {
                return function;
            }
        }
        throw new NotSupportedException(
            "SparseAttn.TorchSharp could not find THSTensor_data in TorchSharp's native library (LibTorchSharp); " +
            "create a torch tensor before calling it, and check that the TorchSharp backend package is installed.");
    }
}

/// <summary>Which element types a bound tensor may have.</summary>
internal enum ElementKinds
{
    /// <summary>float32, float16 or bfloat16 (attention tensors).</summary>
    Attention,

    /// <summary>float32 only (log-sum-exp tensors).</summary>
    Float32,

    /// <summary>int32 only (index tensors).</summary>
    Int32,

    /// <summary>Any dtype with a .NET element type.</summary>
    Any,
}

/// <summary>
/// One tensor argument read from torch: name (for messages), dtype, device, lengths, strides and the
/// address of its first element.
/// </summary>
internal sealed unsafe class TensorBinding
{
    private TensorBinding(Tensor tensor, string name, ScalarType dtype, DeviceKind device, int deviceIndex, nint[] lengths,
        nint[] strides, nint pointer)
    {
        Tensor = tensor;
        Name = name;
        ScalarType = dtype;
        Device = device;
        DeviceIndex = deviceIndex;
        Lengths = lengths;
        Strides = strides;
        Pointer = pointer;
    }

    public Tensor Tensor { get; }

    public string Name { get; }

    public ScalarType ScalarType { get; }

    public DeviceKind Device { get; }

    /// <summary>CUDA ordinal; 0 on the CPU.</summary>
    public int DeviceIndex { get; }

    public nint[] Lengths { get; }

    public nint[] Strides { get; }

    public nint Pointer { get; }

    public string DeviceName => Device == DeviceKind.Cuda ? $"cuda:{DeviceIndex}" : "cpu";

    public string Shape => "[" + string.Join(", ", Lengths) + "]";

    /// <summary>Elements from the first to one past the last addressed one.</summary>
    public nint Extent
    {
        get
        {
            nint extent = 1;
            for (var i = 0; i < Lengths.Length; i++)
            {
                extent += (Lengths[i] - 1) * Strides[i];
            }
            return extent;
        }
    }

    public static TensorBinding Bind(Tensor? tensor, string name, ElementKinds kinds)
    {
        if (tensor is null)
        {
            throw new ArgumentNullException(name);
        }
        if (tensor.IsInvalid)
        {
            throw new ObjectDisposedException(name, $"{name} is a disposed tensor.");
        }
        var dtype = tensor.dtype;
        switch (kinds)
        {
            case ElementKinds.Attention when dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16):
                throw new ArgumentException(
                    $"{name} has dtype {dtype}; SparseAttn takes float32 (CPU only), float16 or bfloat16.", name);
            case ElementKinds.Float32 when dtype != ScalarType.Float32:
                throw new ArgumentException($"{name} has dtype {dtype}; it must be float32.", name);
            case ElementKinds.Int32 when dtype != ScalarType.Int32:
                throw new ArgumentException($"{name} has dtype {dtype}; it must be int32.", name);
        }
        DeviceKind device;
        int deviceIndex;
        switch (tensor.device_type)
        {
            case DeviceType.CPU:
                device = DeviceKind.Cpu;
                deviceIndex = 0;
                break;
            case DeviceType.CUDA:
                device = DeviceKind.Cuda;
                deviceIndex = Math.Max(tensor.device_index, 0);
                break;
            default:
                throw new ArgumentException(
                    $"{name} is on device {tensor.device}; SparseAttn runs on cpu and cuda tensors.", name);
        }
        var shape = tensor.shape;
        var torchStrides = tensor.stride();
        var lengths = new nint[shape.Length];
        var strides = new nint[shape.Length];
        for (var i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 1)
            {
                throw new ArgumentException(
                    $"{name} has length {shape[i]} in dimension {i} (shape [{string.Join(", ", shape)}]); every dimension must be at least 1.",
                    name);
            }
            if (torchStrides[i] < 0)
            {
                throw new ArgumentException(
                    $"{name} has a negative stride {torchStrides[i]} in dimension {i}; SparseAttn needs non-negative strides.", name);
            }
            lengths[i] = checked((nint)shape[i]);
            strides[i] = checked((nint)torchStrides[i]);
        }
        if (shape.Length > 0 && shape[^1] > 1 && torchStrides[^1] != 1)
        {
            throw new ArgumentException(
                $"{name} is not contiguous in its last dimension (strides [{string.Join(", ", torchStrides)}]); " +
                "the head dim must have stride 1 (call .contiguous() first).", name);
        }
        var pointer = TorchTensors.DataPointer(tensor);
        if (pointer == 0)
        {
            throw new ArgumentException($"{name} has no storage (a null data pointer).", name);
        }
        return new TensorBinding(tensor, name, dtype, device, deviceIndex, lengths, strides, pointer);
    }

    /// <summary>The same memory with dimensions 1 and 2 swapped: [B, H, S, D] seen as [B, S, H, D].</summary>
    public TensorBinding WithLayout(TensorLayout layout)
    {
        if (layout == TensorLayout.BSHD || Lengths.Length != 4)
        {
            return this;
        }
        nint[] lengths = [Lengths[0], Lengths[2], Lengths[1], Lengths[3]];
        nint[] strides = [Strides[0], Strides[2], Strides[1], Strides[3]];
        return new TensorBinding(Tensor, Name, ScalarType, Device, DeviceIndex, lengths, strides, Pointer);
    }

    public void RequireContiguous()
    {
        nint expected = 1;
        for (var i = Lengths.Length - 1; i >= 0; i--)
        {
            if (Lengths[i] > 1 && Strides[i] != expected)
            {
                throw new ArgumentException(
                    $"{Name} must be contiguous (row-major) but has strides [{string.Join(", ", Strides)}] for shape {Shape}.",
                    Name);
            }
            expected *= Lengths[i];
        }
    }

    /// <summary>
    /// Distinct indices must map to distinct elements (SparseAttn takes no broadcast views): sorted by stride, each
    /// stride steps past everything the smaller dims span, so an expanded view (stride 0) is refused.
    /// </summary>
    public void RequireDistinctElements()
    {
        var dims = Enumerable.Range(0, Lengths.Length).Where(i => Lengths[i] > 1).OrderBy(i => Strides[i]).ToArray();
        nint reach = 0;
        foreach (var d in dims)
        {
            if (Strides[d] <= reach)
            {
                throw new ArgumentException(
                    $"{Name} addresses some elements twice (shape [{string.Join(", ", Tensor.shape)}], strides " +
                    $"[{string.Join(", ", Tensor.stride())}], e.g. an expanded view); SparseAttn needs one element per index " +
                    "(call .contiguous() first, or torch.empty_like for an output).", Name);
            }
            reach += (Lengths[d] - 1) * Strides[d];
        }
    }

    public void SameDtype(TensorBinding reference)
    {
        if (ScalarType != reference.ScalarType)
        {
            throw new ArgumentException(
                $"{Name} has dtype {ScalarType} but {reference.Name} has dtype {reference.ScalarType}; they must match.", Name);
        }
    }

    public void SameDevice(TensorBinding reference)
    {
        if (Device != reference.Device || DeviceIndex != reference.DeviceIndex)
        {
            throw new ArgumentException(
                $"{Name} is on {DeviceName} but {reference.Name} is on {reference.DeviceName}; all tensors of a call must share one device.",
                Name);
        }
    }

    private void CheckElementType<T>() where T : unmanaged
    {
        var expected = ScalarType switch
        {
            ScalarType.Float32 => typeof(float),
            ScalarType.Float16 => typeof(Half),
            ScalarType.BFloat16 => typeof(BFloat16),
            ScalarType.Int32 => typeof(int),
            ScalarType.Float64 => typeof(double),
            ScalarType.Int64 => typeof(long),
            ScalarType.Int16 => typeof(short),
            ScalarType.Int8 => typeof(sbyte),
            ScalarType.Byte => typeof(byte),
            ScalarType.Bool => typeof(bool),
            _ => null,
        };
        if (expected != typeof(T))
        {
            throw new ArgumentException(
                $"{Name} has dtype {ScalarType}, which is not the element type {typeof(T).Name}" +
                (expected is null ? "." : $" (use {expected.Name})."), Name);
        }
    }

    private void RequireDevice(DeviceKind device)
    {
        if (Device != device)
        {
            throw new ArgumentException(
                $"{Name} is on {DeviceName}; this needs a {(device == DeviceKind.Cuda ? "cuda" : "cpu")} tensor.", Name);
        }
    }

    /// <summary>TensorSpan strides: length-1 dimensions get stride 0, TensorSpan's own convention.</summary>
    private nint[] SpanStrides()
    {
        var strides = (nint[])Strides.Clone();
        for (var i = 0; i < strides.Length; i++)
        {
            if (Lengths[i] == 1)
            {
                strides[i] = 0;
            }
        }
        return strides;
    }

    public ReadOnlyTensorSpan<T> ReadOnly<T>() where T : unmanaged
    {
        CheckElementType<T>();
        RequireDevice(DeviceKind.Cpu);
        return new ReadOnlyTensorSpan<T>((T*)Pointer, Extent, Lengths, SpanStrides());
    }

    public TensorSpan<T> Writable<T>() where T : unmanaged
    {
        CheckElementType<T>();
        RequireDevice(DeviceKind.Cpu);
        return new TensorSpan<T>((T*)Pointer, Extent, Lengths, SpanStrides());
    }

    /// <summary>The elements of a contiguous CPU tensor as a flat span.</summary>
    public ReadOnlySpan<T> Flat<T>() where T : unmanaged
    {
        CheckElementType<T>();
        RequireDevice(DeviceKind.Cpu);
        RequireContiguous();
        nint count = 1;
        foreach (var length in Lengths)
        {
            count *= length;
        }
        return new ReadOnlySpan<T>((void*)Pointer, checked((int)count));
    }

    public CudaTensorView<T> DeviceView<T>() where T : unmanaged
    {
        CheckElementType<T>();
        RequireDevice(DeviceKind.Cuda);
        return new CudaTensorView<T>(Pointer, DeviceIndex, Lengths, Strides);
    }
}
