using Microsoft.Win32.SafeHandles;

namespace SparseAttn.Interop;

/// <summary>Device memory from <c>sa_cuda_malloc</c>, freed with <c>sa_cuda_free</c> on its device.</summary>
internal sealed unsafe class CudaMemoryHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    /// <summary>Creates an invalid handle (for the marshaller).</summary>
    public CudaMemoryHandle() : base(ownsHandle: true)
    {
    }

    private CudaMemoryHandle(nint pointer, int device, nuint bytes) : base(ownsHandle: true)
    {
        SetHandle(pointer);
        Device = device;
        ByteLength = bytes;
    }

    /// <summary>CUDA ordinal the memory lives on.</summary>
    public int Device { get; }

    /// <summary>Size of the allocation in bytes.</summary>
    public nuint ByteLength { get; }

    /// <summary>Allocates <paramref name="bytes"/> bytes on <paramref name="device"/>.</summary>
    /// <param name="device">CUDA ordinal.</param>
    /// <param name="bytes">Size in bytes.</param>
    /// <param name="handle">The allocation; an invalid handle unless the status is SA_OK.</param>
    /// <returns>The native status.</returns>
    public static sa_status Allocate(int device, nuint bytes, out CudaMemoryHandle handle)
    {
        void* pointer = null;
        var status = NativeMethods.sa_cuda_malloc(device, bytes, &pointer);
        handle = status == sa_status.SA_OK ? new CudaMemoryHandle((nint)pointer, device, bytes) : new CudaMemoryHandle();
        return status;
    }

    /// <inheritdoc />
    protected override bool ReleaseHandle() =>
        NativeMethods.sa_cuda_free(Device, (void*)handle) == sa_status.SA_OK;
}

/// <summary>A stream from <c>sa_cuda_stream_create</c>, destroyed with <c>sa_cuda_stream_destroy</c>.</summary>
internal sealed unsafe class CudaStreamHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    /// <summary>Creates an invalid handle (for the marshaller).</summary>
    public CudaStreamHandle() : base(ownsHandle: true)
    {
    }

    private CudaStreamHandle(nint stream, int device) : base(ownsHandle: true)
    {
        SetHandle(stream);
        Device = device;
    }

    /// <summary>CUDA ordinal the stream belongs to.</summary>
    public int Device { get; }

    /// <summary>Creates a stream on <paramref name="device"/>.</summary>
    /// <param name="device">CUDA ordinal.</param>
    /// <param name="handle">The stream; an invalid handle unless the status is SA_OK.</param>
    /// <returns>The native status.</returns>
    public static sa_status Create(int device, out CudaStreamHandle handle)
    {
        void* stream = null;
        var status = NativeMethods.sa_cuda_stream_create(device, &stream);
        handle = status == sa_status.SA_OK ? new CudaStreamHandle((nint)stream, device) : new CudaStreamHandle();
        return status;
    }

    /// <inheritdoc />
    protected override bool ReleaseHandle() =>
        NativeMethods.sa_cuda_stream_destroy((void*)handle) == sa_status.SA_OK;
}
