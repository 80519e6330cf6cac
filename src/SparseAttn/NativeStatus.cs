using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>
/// Maps native status codes to the public exceptions, with the thread-local native message. The
/// interop layer only returns statuses; this assembly owns the exception types.
/// </summary>
internal static class NativeStatus
{

    /// <summary>Throws the exception that matches <paramref name="status"/> unless it is SA_OK.</summary>
    /// <param name="status">The status a native call returned.</param>
    public static void Check(sa_status status)
    {
        if (status != sa_status.SA_OK)
        {
            throw ToException(status, NativeMessages.LastError());
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
