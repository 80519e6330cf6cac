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
    /// <param name="names">The C# names of the call's native arguments (messages and ParamName use them).</param>
    public static void Check(sa_status status, NativeNames? names = null)
    {
        if (status != sa_status.SA_OK)
        {
            var message = NativeMessages.LastError();
            throw ToException(status, names is null ? message : names.Rename(message));
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

/// <summary>
/// The native argument names of one kind of call and the C# parameter names that replace them in
/// messages, so that a native rule (such as an overlap, which only the native layer sees) names the
/// argument as the caller wrote it.
/// </summary>
internal sealed class NativeNames
{
    private readonly (string Native, string Managed)[] pairs;

    private NativeNames(params (string Native, string Managed)[] pairs) => this.pairs = pairs;

    /// <summary>Dense and neighborhood attention.</summary>
    public static NativeNames Attention { get; } = new(("out", "output"));

    /// <summary>Packed variable-length dense attention.</summary>
    public static NativeNames Varlen { get; } = new(("out", "output"), ("cu_seqlens_q", "cuSeqlensQ"),
        ("cu_seqlens_k", "cuSeqlensK"), ("max_seqlen_q", "maxSeqlenQ"), ("max_seqlen_k", "maxSeqlenK"));

    /// <summary>Block-sparse attention: the lists are the mask's, the permutations the C# parameters.</summary>
    public static NativeNames BlockSparse { get; } = new(("out", "output"),
        ("params->full_kv_num_blocks", "mask.FullCounts"), ("params->full_kv_indices", "mask.FullIndices"),
        ("params->kv_num_blocks", "mask.Counts"), ("params->kv_indices", "mask.Indices"),
        ("params->block_q", "mask.BlockQ"), ("params->block_k", "mask.BlockK"),
        ("params->key_perm", "keyPermutation"), ("params->query_perm", "queryPermutation"));

    /// <summary>LSE merge.</summary>
    public static NativeNames Merge { get; } = new(("out", "output"), ("lse_out", "lseOut"));

    /// <summary>The message with every whole native name replaced by its C# name.</summary>
    /// <param name="message">A native message.</param>
    public string Rename(string message)
    {
        var result = new System.Text.StringBuilder(message.Length + 16);
        var i = 0;
        while (i < message.Length)
        {
            var replaced = false;
            if (i == 0 || !IsNameChar(message[i - 1]))
            {
                foreach (var (native, managed) in pairs)
                {
                    var end = i + native.Length;
                    if (string.CompareOrdinal(message, i, native, 0, native.Length) == 0 &&
                        (end == message.Length || !IsNameChar(message[end])))
                    {
                        result.Append(managed);
                        i = end;
                        replaced = true;
                        break;
                    }
                }
            }
            if (!replaced)
            {
                result.Append(message[i++]);
            }
        }
        return result.ToString();
    }

    // '>' continues a native field path ("params->kv_indices"), so "kv_indices" alone never matches inside it.
    private static bool IsNameChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '>';
}
