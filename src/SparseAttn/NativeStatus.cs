using System.Runtime.InteropServices;

namespace SparseAttn.Interop;

/// <summary>Maps native status codes to exceptions, with the thread-local native message.</summary>
internal static unsafe class NativeStatus
{
    /// <summary>The message of the last failed call on this thread ("" if none).</summary>
    public static string LastError()
    {
        var message = NativeMethods.sa_last_error();
        return message is null ? string.Empty : Marshal.PtrToStringUTF8((nint)message) ?? string.Empty;
    }

    /// <summary>Throws the exception that matches <paramref name="status"/> unless it is SA_OK.</summary>
    /// <param name="status">The status a native call returned.</param>
    public static void Check(sa_status status)
    {
        if (status != sa_status.SA_OK)
        {
            throw ToException(status, LastError());
        }
    }

    /// <summary>The exception for a failed status and its message.</summary>
    /// <param name="status">The failed status.</param>
    /// <param name="message">The native message.</param>
    public static Exception ToException(sa_status status, string message)
    {
        if (string.IsNullOrEmpty(message))
        {
            message = $"native call failed with status {(int)status}";
        }
        return status switch
        {
            sa_status.SA_ERROR_INVALID_ARGUMENT => new ArgumentException(message, ParameterNameOf(message)),
            sa_status.SA_ERROR_UNSUPPORTED => new NotSupportedException(message),
            sa_status.SA_ERROR_OUT_OF_MEMORY => new OutOfMemoryException(message),
            sa_status.SA_ERROR_CUDA => new SparseAttnException(SparseAttnStatus.Cuda, message),
            sa_status.SA_ERROR_INTERNAL => new SparseAttnException(SparseAttnStatus.Internal, message),
            _ => new SparseAttnException(SparseAttnStatus.Internal, $"unknown status {(int)status}: {message}"),
        };
    }

    // Native messages start with the argument name ("q: ..." or "q.shape[3] ..."); keep that as ParamName.
    private static string? ParameterNameOf(string message)
    {
        var end = 0;
        while (end < message.Length && (char.IsLetterOrDigit(message[end]) || message[end] == '_'))
        {
            end++;
        }
        return end > 0 && end < message.Length && (message[end] is ':' or '.' or '[' or ' ')
            ? message[..end]
            : null;
    }
}
