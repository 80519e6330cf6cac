namespace SparseAttn;

/// <summary>Status codes of the native library (<c>sa_status</c>).</summary>
public enum SparseAttnStatus
{
    /// <summary>Success.</summary>
    Ok = 0,
    /// <summary>A bad shape, dtype, stride, pointer, option or head dim.</summary>
    InvalidArgument = 1,
    /// <summary>Backend not built, no such device, or a feature that is unavailable.</summary>
    Unsupported = 2,
    /// <summary>A CUDA runtime call failed.</summary>
    Cuda = 3,
    /// <summary>A host or device allocation failed.</summary>
    OutOfMemory = 4,
    /// <summary>An internal error of the library.</summary>
    Internal = 5,
}

/// <summary>
/// A failure reported by the native SparseAttn library that is not an argument error: a CUDA
/// runtime failure or an internal error. Carries the native status and message.
/// </summary>
public class SparseAttnException : Exception
{
    /// <summary>Creates an exception with a message.</summary>
    public SparseAttnException() : this(SparseAttnStatus.Internal, "SparseAttn native call failed.")
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">The message.</param>
    public SparseAttnException(string message) : this(SparseAttnStatus.Internal, message)
    {
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public SparseAttnException(string message, Exception innerException) : base(message, innerException)
    {
        Status = SparseAttnStatus.Internal;
        NativeMessage = message;
    }

    /// <summary>Creates an exception for a native status and message.</summary>
    /// <param name="status">The native status.</param>
    /// <param name="nativeMessage">The message from <c>sa_last_error</c>.</param>
    public SparseAttnException(SparseAttnStatus status, string nativeMessage)
        : base($"SparseAttn: {DescribeStatus(status)}: {nativeMessage}")
    {
        Status = status;
        NativeMessage = nativeMessage;
    }

    /// <summary>The native status code.</summary>
    public SparseAttnStatus Status { get; }

    /// <summary>The native message (from <c>sa_last_error</c>), without the status prefix.</summary>
    public string NativeMessage { get; }

    private static string DescribeStatus(SparseAttnStatus status) => status switch
    {
        SparseAttnStatus.Ok => "ok",
        SparseAttnStatus.InvalidArgument => "invalid argument",
        SparseAttnStatus.Unsupported => "unsupported",
        SparseAttnStatus.Cuda => "CUDA error",
        SparseAttnStatus.OutOfMemory => "out of memory",
        _ => "internal error",
    };
}
