using System.Runtime.CompilerServices;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Gpu;

/// <summary>
/// A device copy of a host tensor's whole storage (guards and padding included, NaN-poisoned where
/// unused) and a view over the same logical elements, so the host-side checks (every element
/// written, nothing outside the view touched) apply to device results after Download().
/// </summary>
public sealed class DeviceMirror<T> : IDisposable where T : unmanaged
{
    private readonly CudaTensor<T> storage;

    public DeviceMirror(HostTensor<T> host, int device = 0)
    {
        Host = host;
        storage = CudaTensor<T>.FromHost(host.Storage, device);
        var strides = (nint[])host.Strides.Clone();
        // Device views need no BCL stride quirk: give a length-1 innermost dim the contiguous stride.
        if (host.Lengths[^1] == 1) strides[^1] = 1;
        View = new CudaTensorView<T>(storage.DataPointer + host.Offset * Unsafe.SizeOf<T>(), device, host.Lengths, strides);
    }

    public HostTensor<T> Host { get; }
    public CudaTensorView<T> View { get; }

    public HostTensor<T> Download()
    {
        LibrarySync();
        storage.CopyTo(Host.Storage);
        return Host;
    }

    private static void LibrarySync() => SparseAttnLibrary.SynchronizeDevice(0);

    public void Dispose() => storage.Dispose();
}

/// <summary>Skips the fixture with the reason when no CUDA device can run it.</summary>
public abstract class GpuFixture
{
    [SetUp]
    public void RequireDevice()
    {
        if (!SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cuda))
            Assert.Ignore("no CUDA device: the native library was built without the CUDA backend");
        int count = SparseAttnLibrary.CudaDeviceCount;
        if (count == 0) Assert.Ignore("no CUDA device: the CUDA backend is built but no device is visible");
    }
}
