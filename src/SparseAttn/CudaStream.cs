using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>
/// A CUDA stream. Streams made by <see cref="Create"/> are owned and destroyed on dispose;
/// <see cref="Default"/> and <see cref="FromHandle"/> wrap a stream owned elsewhere.
/// </summary>
public sealed unsafe class CudaStream : IDisposable
{
    private readonly CudaStreamHandle? owned;

    private CudaStream(CudaStreamHandle? owned, nint handle, int device)
    {
        this.owned = owned;
        Handle = handle;
        Device = device;
    }

    /// <summary>The legacy default stream (a null cudaStream_t).</summary>
    public static CudaStream Default { get; } = new(null, 0, -1);

    /// <summary>The cudaStream_t value.</summary>
    public nint Handle { get; }

    /// <summary>CUDA ordinal the stream belongs to (-1 when unknown, e.g. the default stream).</summary>
    public int Device { get; }

    /// <summary>Creates a new stream on <paramref name="device"/>.</summary>
    /// <param name="device">CUDA ordinal.</param>
    /// <exception cref="NotSupportedException">The CUDA backend is not built or there is no such device.</exception>
    public static CudaStream Create(int device = 0)
    {
        NativeStatus.Check(CudaStreamHandle.Create(device, out var handle));
        return new CudaStream(handle, handle.DangerousGetHandle(), device);
    }

    /// <summary>Wraps a cudaStream_t owned by someone else (TorchSharp, ILGPU, ...); never destroyed here.</summary>
    /// <param name="stream">The cudaStream_t value.</param>
    /// <param name="device">CUDA ordinal the stream belongs to, -1 if unknown.</param>
    public static CudaStream FromHandle(nint stream, int device = -1) => new(null, stream, device);

    /// <summary>Blocks until all work queued on this stream has finished.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(owned is { IsClosed: true }, this);
        NativeStatus.Check(NativeMethods.sa_cuda_stream_synchronize((void*)Handle));
    }

    /// <summary>Destroys the stream if this object owns it.</summary>
    public void Dispose() => owned?.Dispose();
}
