using System.Runtime.InteropServices;

namespace SparseAttn.Interop;

/// <summary>Reads the native library's thread-local error message.</summary>
internal static unsafe class NativeMessages
{
    /// <summary>The message of the last failed call on this thread ("" if none).</summary>
    public static string LastError()
    {
        var message = NativeMethods.sa_last_error();
        return message is null ? string.Empty : Marshal.PtrToStringUTF8((nint)message) ?? string.Empty;
    }
}
