using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>Maps generic element types to native dtypes.</summary>
internal static class ElementTypes
{
    public static DataType Of<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            return DataType.Float32;
        }
        if (typeof(T) == typeof(Half))
        {
            return DataType.Float16;
        }
        if (typeof(T) == typeof(BFloat16))
        {
            return DataType.BFloat16;
        }
        throw new ArgumentException(
            $"T = {typeof(T).Name} is not a supported element type: use float (CPU only), Half or BFloat16.", "T");
    }

    public static sa_dtype Native<T>() where T : unmanaged => (sa_dtype)(int)Of<T>();

    /// <summary>Native dtype of any unmanaged element type the ABI knows (float types, int and bool).</summary>
    public static sa_dtype AnyNative<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(int))
        {
            return sa_dtype.SA_DTYPE_I32;
        }
        if (typeof(T) == typeof(bool) || typeof(T) == typeof(byte))
        {
            return sa_dtype.SA_DTYPE_BOOL;
        }
        return Native<T>();
    }

    /// <summary>Checks that T is usable on the given device (float is CPU only).</summary>
    public static sa_dtype ForDevice<T>(DeviceKind device) where T : unmanaged
    {
        var dtype = Of<T>();
        if (device == DeviceKind.Cuda && dtype == DataType.Float32)
        {
            throw new ArgumentException(
                "T = Single is not supported on CUDA: the CUDA kernels take Half or BFloat16 (float is CPU only).", "T");
        }
        return (sa_dtype)(int)dtype;
    }
}
