using System.Runtime.InteropServices;
using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>Properties of a CUDA device as reported by the native library.</summary>
/// <param name="Name">Device name.</param>
/// <param name="ComputeCapability">Compute capability (major, minor), e.g. (9, 0) for H100.</param>
/// <param name="MultiprocessorCount">Number of streaming multiprocessors.</param>
/// <param name="TotalMemoryBytes">Global memory in bytes.</param>
/// <param name="L2CacheBytes">L2 cache size in bytes.</param>
/// <param name="MaxSharedMemoryPerBlock">Opt-in maximum of shared memory per block in bytes.</param>
public sealed record CudaDeviceInfo(
    string Name,
    (int Major, int Minor) ComputeCapability,
    int MultiprocessorCount,
    long TotalMemoryBytes,
    long L2CacheBytes,
    long MaxSharedMemoryPerBlock);

/// <summary>Version and capabilities of the loaded native library.</summary>
public static unsafe class SparseAttnLibrary
{
    /// <summary>Version string of the native library, e.g. "0.1.0".</summary>
    public static string Version =>
        Marshal.PtrToStringUTF8((nint)NativeMethods.sa_version_string()) ?? string.Empty;

    /// <summary>Version of the native library as (major, minor, patch).</summary>
    public static (int Major, int Minor, int Patch) VersionNumbers
    {
        get
        {
            int major, minor, patch;
            NativeMethods.sa_version(&major, &minor, &patch);
            return (major, minor, patch);
        }
    }

    /// <summary>Path of the native library file that was loaded (null before the first call).</summary>
    public static string? NativeLibraryPath => NativeLibraryResolver.LoadedPath;

    /// <summary>True when the backend for <paramref name="device"/> was compiled into the native library.</summary>
    /// <param name="device">The device kind.</param>
    public static bool IsBackendBuilt(DeviceKind device) =>
        NativeMethods.sa_backend_built(device == DeviceKind.Cuda ? sa_backend.SA_BACKEND_CUDA : sa_backend.SA_BACKEND_CPU) != 0;

    /// <summary>
    /// Instruction set the CPU kernels run at: "baseline" (x86-64 SSE2, or the target's default),
    /// "avx2" (AVX2 + FMA) or "avx512" (AVX-512F). Chosen once per process from the CPU's features;
    /// the environment variable <c>SPARSEATTN_CPU_ISA</c> (baseline, avx2, avx512) caps it.
    /// </summary>
    public static string CpuInstructionSet =>
        Marshal.PtrToStringUTF8((nint)NativeMethods.sa_cpu_isa()) ?? string.Empty;

    /// <summary>Number of usable CUDA devices (0 when the CUDA backend is not built or there is no device).</summary>
    public static int CudaDeviceCount
    {
        get
        {
            int count = 0;
            NativeStatus.Check(NativeMethods.sa_cuda_device_count(&count));
            return count;
        }
    }

    /// <summary>Properties of CUDA device <paramref name="device"/>.</summary>
    /// <param name="device">CUDA ordinal.</param>
    /// <exception cref="NotSupportedException">The CUDA backend is not built or there is no such device.</exception>
    public static CudaDeviceInfo GetCudaDeviceInfo(int device)
    {
        sa_device_info info;
        NativeStatus.Check(NativeMethods.sa_cuda_device_info(device, &info));
        var name = Marshal.PtrToStringUTF8((nint)info.name) ?? string.Empty;
        return new CudaDeviceInfo(name, (info.compute_major, info.compute_minor), info.multiprocessor_count,
            info.total_memory_bytes, info.l2_cache_bytes, info.max_shared_memory_per_block);
    }

    /// <summary>
    /// True when a call of <paramref name="operation"/> with this element type and head dim on CUDA
    /// device <paramref name="device"/> runs a fast (tiled tensor-core) kernel; false when it falls back
    /// to the reference kernel.
    /// </summary>
    /// <param name="operation">The attention family.</param>
    /// <param name="device">CUDA ordinal.</param>
    /// <param name="dataType">Element type of Q, K and V.</param>
    /// <param name="headDim">Head dimension D.</param>
    public static bool IsFastPathCovered(AttentionOperation operation, int device, DataType dataType, int headDim)
    {
        int covered = 0;
        NativeStatus.Check(NativeMethods.sa_fast_path_covered((sa_operation)(int)operation, device,
            (sa_dtype)(int)dataType, headDim, &covered));
        return covered != 0;
    }

    /// <summary>Blocks until all work queued on CUDA device <paramref name="device"/> has finished.</summary>
    /// <param name="device">CUDA ordinal.</param>
    public static void SynchronizeDevice(int device) =>
        NativeStatus.Check(NativeMethods.sa_cuda_device_synchronize(device));

    /// <summary>The element type that a generic argument maps to.</summary>
    /// <typeparam name="T">float, <see cref="Half"/> or <see cref="BFloat16"/>.</typeparam>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> is another type.</exception>
    public static DataType DataTypeOf<T>() where T : unmanaged => ElementTypes.Of<T>();
}
