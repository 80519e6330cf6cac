using System.Numerics.Tensors;
using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>Lengths and strides of one tensor argument, with its parameter name for messages.</summary>
internal readonly ref struct TensorArg
{
    public TensorArg(string name, ReadOnlySpan<nint> lengths, ReadOnlySpan<nint> strides)
    {
        Name = name;
        Lengths = lengths;
        Strides = strides;
    }

    public string Name { get; }

    public bool IsPresent => Name is not null;

    public ReadOnlySpan<nint> Lengths { get; }

    public ReadOnlySpan<nint> Strides { get; }

    public int Rank => Lengths.Length;

    public string Shape => Shapes.Format(Lengths);
}

/// <summary>The sizes of an attention call, read from validated Q and K.</summary>
internal readonly record struct AttentionDims(int Batch, int SeqQ, int SeqK, int HeadsQ, int HeadsKv, int HeadDim);

/// <summary>Argument checks done in C# before the native call, with messages naming the parameter.</summary>
internal static class Validation
{
    public const int CpuMaxHeadDim = 512;
    public const int CudaMaxHeadDim = 256;

    public static void Rank(in TensorArg t, int rank, string layout)
    {
        if (t.Rank != rank)
        {
            throw new ArgumentException(
                $"{t.Name} must have rank {rank} ({layout}) but has rank {t.Rank} (shape {t.Shape}).", t.Name);
        }
    }

    /// <summary>Every length at least 1, innermost stride 1, no zero stride on a dimension longer than 1.</summary>
    public static void Layout(in TensorArg t, bool allowBroadcast = false)
    {
        for (var i = 0; i < t.Rank; i++)
        {
            if (t.Lengths[i] < 1)
            {
                throw new ArgumentException(
                    $"{t.Name} has length {t.Lengths[i]} in dimension {i} (shape {t.Shape}); every dimension must be at least 1.",
                    t.Name);
            }
            if (t.Lengths[i] > int.MaxValue)
            {
                throw new ArgumentException(
                    $"{t.Name} has length {t.Lengths[i]} in dimension {i}, more than {int.MaxValue}.", t.Name);
            }
            if (t.Strides[i] < 0 || (!allowBroadcast && t.Strides[i] == 0 && t.Lengths[i] > 1))
            {
                throw new ArgumentException(
                    $"{t.Name} has stride {t.Strides[i]} in dimension {i} (strides {Shapes.Format(t.Strides)}); " +
                    "strides must be positive (no broadcasting).", t.Name);
            }
        }
        if (t.Rank > 0 && t.Strides[t.Rank - 1] != 1 && t.Lengths[t.Rank - 1] > 1)
        {
            throw new ArgumentException(
                $"{t.Name} must be contiguous in its innermost dimension (stride 1) but has strides {Shapes.Format(t.Strides)}.",
                t.Name);
        }
    }

    public static void SameLengths(in TensorArg expected, in TensorArg actual)
    {
        if (!expected.Lengths.SequenceEqual(actual.Lengths))
        {
            throw new ArgumentException(
                $"{actual.Name} has shape {actual.Shape} but must have the shape of {expected.Name}, {expected.Shape}.",
                actual.Name);
        }
    }

    public static void HeadDim(int headDim, DeviceKind device, string name)
    {
        if (device == DeviceKind.Cpu && (headDim < 1 || headDim > CpuMaxHeadDim))
        {
            throw new ArgumentOutOfRangeException(name, headDim,
                $"{name} head dim D = {headDim} is not supported on the CPU: it must be in 1..{CpuMaxHeadDim}.");
        }
        if (device == DeviceKind.Cuda && (headDim < 8 || headDim > CudaMaxHeadDim || headDim % 8 != 0))
        {
            throw new ArgumentOutOfRangeException(name, headDim,
                $"{name} head dim D = {headDim} is not supported on CUDA: it must be a multiple of 8 up to {CudaMaxHeadDim}.");
        }
    }

    /// <summary>Checks q [B, S_q, H_q, D], k/v [B, S_k, H_kv, D], output like q.</summary>
    public static AttentionDims Qkvo(in TensorArg q, in TensorArg k, in TensorArg v, in TensorArg output, DeviceKind device)
    {
        const string layout = "[B, S, H, D]";
        Rank(q, 4, layout);
        Rank(k, 4, layout);
        Rank(v, 4, layout);
        Rank(output, 4, layout);
        Layout(q);
        Layout(k);
        Layout(v);
        Layout(output);
        if (k.Lengths[0] != q.Lengths[0])
        {
            throw new ArgumentException(
                $"k has batch {k.Lengths[0]} (shape {k.Shape}) but q has batch {q.Lengths[0]} (shape {q.Shape}).", k.Name);
        }
        if (k.Lengths[3] != q.Lengths[3])
        {
            throw new ArgumentException(
                $"k has head dim {k.Lengths[3]} (shape {k.Shape}) but q has head dim {q.Lengths[3]} (shape {q.Shape}).", k.Name);
        }
        SameLengths(k, v);
        if (q.Lengths[2] % k.Lengths[2] != 0)
        {
            throw new ArgumentException(
                $"q has {q.Lengths[2]} heads, not a multiple of the {k.Lengths[2]} heads of k (GQA needs H_q % H_kv == 0).",
                k.Name);
        }
        SameLengths(q, output);
        HeadDim((int)q.Lengths[3], device, q.Name);
        return new AttentionDims((int)q.Lengths[0], (int)q.Lengths[1], (int)k.Lengths[1], (int)q.Lengths[2],
            (int)k.Lengths[2], (int)q.Lengths[3]);
    }

    /// <summary>Checks lse fp32 [B, H_q, S_q].</summary>
    public static void Lse(in TensorArg lse, AttentionDims dims)
    {
        Rank(lse, 3, "[B, H, S_q]");
        Layout(lse);
        if (lse.Lengths[0] != dims.Batch || lse.Lengths[1] != dims.HeadsQ || lse.Lengths[2] != dims.SeqQ)
        {
            throw new ArgumentException(
                $"{lse.Name} has shape {lse.Shape} but must be [B, H_q, S_q] = [{dims.Batch}, {dims.HeadsQ}, {dims.SeqQ}].",
                lse.Name);
        }
    }

    public static void SameDevice(int expected, string expectedName, int actual, string actualName)
    {
        if (expected != actual)
        {
            throw new ArgumentException(
                $"{actualName} is on cuda:{actual} but {expectedName} is on cuda:{expected}; all tensors of a call must share one device.",
                actualName);
        }
    }

    public static void NotNull(object? value, string name)
    {
        if (value is null)
        {
            throw new ArgumentNullException(name);
        }
    }
}

/// <summary>Builds native tensor descriptors.</summary>
internal static unsafe class Descriptors
{
    public static sa_tensor Make(void* data, sa_dtype dtype, DeviceKind device, int deviceId, ReadOnlySpan<nint> lengths,
        ReadOnlySpan<nint> strides)
    {
        var tensor = new sa_tensor
        {
            data = data,
            dtype = (int)dtype,
            device_type = device == DeviceKind.Cuda ? (int)sa_device_type.SA_DEVICE_CUDA : (int)sa_device_type.SA_DEVICE_CPU,
            device_id = device == DeviceKind.Cuda ? deviceId : 0,
            rank = lengths.Length,
        };
        // TensorSpan gives length-1 dimensions stride 0; any stride addresses the one element there, so
        // write the row-major one the native checks expect.
        long rowMajor = 1;
        for (var i = lengths.Length - 1; i >= 0; i--)
        {
            tensor.shape[i] = lengths[i];
            tensor.strides[i] = lengths[i] == 1 ? rowMajor : strides[i];
            rowMajor = tensor.strides[i] * Math.Max((long)lengths[i], 1);
        }
        return tensor;
    }

    public static sa_tensor Host(void* data, sa_dtype dtype, ReadOnlySpan<nint> lengths, ReadOnlySpan<nint> strides) =>
        Make(data, dtype, DeviceKind.Cpu, 0, lengths, strides);

    public static sa_tensor Device<T>(ICudaTensor<T> tensor, sa_dtype dtype) where T : unmanaged =>
        Make((void*)tensor.DataPointer, dtype, DeviceKind.Cuda, tensor.Device, tensor.Lengths, tensor.Strides);

    /// <summary>The q, k, v, output and optional LSE descriptors of a host attention call (pointers already pinned).</summary>
    public static AttentionDescriptors HostAttention<T>(sa_dtype dtype, T* pq, ReadOnlyTensorSpan<T> q, T* pk,
        ReadOnlyTensorSpan<T> k, T* pv, ReadOnlyTensorSpan<T> v, T* po, TensorSpan<T> output, float* pl,
        TensorSpan<float> lse, bool hasLse) where T : unmanaged => new()
    {
        Q = Host(pq, dtype, q.Lengths, q.Strides),
        K = Host(pk, dtype, k.Lengths, k.Strides),
        V = Host(pv, dtype, v.Lengths, v.Strides),
        Output = Host(po, dtype, output.Lengths, output.Strides),
        Lse = hasLse ? Host(pl, sa_dtype.SA_DTYPE_F32, lse.Lengths, lse.Strides) : default,
        HasLse = hasLse,
    };

    /// <summary>The q, k, v, output and optional LSE descriptors of a device attention call.</summary>
    public static AttentionDescriptors DeviceAttention<T>(sa_dtype dtype, ICudaTensor<T> q, ICudaTensor<T> k,
        ICudaTensor<T> v, ICudaTensor<T> output, ICudaTensor<float>? lse) where T : unmanaged => new()
    {
        Q = Device(q, dtype),
        K = Device(k, dtype),
        V = Device(v, dtype),
        Output = Device(output, dtype),
        Lse = lse is null ? default : Device(lse, sa_dtype.SA_DTYPE_F32),
        HasLse = lse is not null,
    };

    /// <summary>A host int32 tensor of the given lengths, row-major, or broadcast where <paramref name="strides"/> says so.</summary>
    public static sa_tensor HostInt(int* data, ReadOnlySpan<nint> lengths, ReadOnlySpan<nint> strides) =>
        Make(data, sa_dtype.SA_DTYPE_I32, DeviceKind.Cpu, 0, lengths, strides);
}

/// <summary>Descriptors of one attention call; take addresses of the fields of a local.</summary>
internal struct AttentionDescriptors
{
    public sa_tensor Q, K, V, Output, Lse;
    public bool HasLse;
}
