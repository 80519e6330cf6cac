using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace SparseAttn.Cli;

/// <summary>Element types an .npy file may hold here.</summary>
public enum NpyType
{
    /// <summary>Little-endian float32, descr '&lt;f4'.</summary>
    Float32,

    /// <summary>Little-endian float16, descr '&lt;f2'.</summary>
    Float16,
}

/// <summary>A C-order array read from or written to an .npy file, held as float32.</summary>
/// <param name="Shape">Dimensions, slowest first.</param>
/// <param name="Data">Elements in C order.</param>
/// <param name="Type">The element type in the file.</param>
public sealed record NpyArray(long[] Shape, float[] Data, NpyType Type);

/// <summary>
/// Reader and writer of NumPy .npy files (format versions 1.0 to 3.0) for little-endian float32 and
/// float16 arrays in C order. Anything else is rejected with an <see cref="InvalidDataException"/> that
/// says what the file holds.
/// </summary>
public static partial class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The largest header accepted: real headers are a few hundred bytes, and the length is read first.</summary>
    public const int MaxHeaderBytes = 1 << 20;

    /// <summary>Reads an .npy file.</summary>
    /// <param name="path">File path.</param>
    public static NpyArray Read(string path)
    {
        if (Directory.Exists(path))
        {
            throw new InvalidDataException($"{path} is a directory, not an .npy file.");
        }
        FileStream stream;
        try
        {
            stream = File.OpenRead(path);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException and not FileNotFoundException
                                       and not DirectoryNotFoundException)
        {
            throw new InvalidDataException($"{path} cannot be read: {ex.Message}");
        }
        using (stream)
        {
            return Read(stream, path);
        }
    }

    /// <summary>Reads an .npy stream; <paramref name="name"/> appears in error messages.</summary>
    /// <param name="stream">The stream, positioned at the magic string.</param>
    /// <param name="name">Name of the source for messages.</param>
    public static NpyArray Read(Stream stream, string name)
    {
        var prefix = new byte[8];
        if (stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8 || !prefix.AsSpan(0, 6).SequenceEqual(Magic))
        {
            throw new InvalidDataException($"{name} is not an .npy file (no \\x93NUMPY magic string).");
        }
        int major = prefix[6];
        int headerLength;
        if (major == 1)
        {
            var length = new byte[2];
            ReadExactly(stream, length, name);
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(length);
        }
        else if (major is 2 or 3)
        {
            var length = new byte[4];
            ReadExactly(stream, length, name);
            var declared = BinaryPrimitives.ReadUInt32LittleEndian(length);
            if (declared > MaxHeaderBytes)
            {
                throw new InvalidDataException(
                    $"{name} declares an .npy header of {declared} bytes, more than the {MaxHeaderBytes} read.");
            }
            headerLength = (int)declared;
        }
        else
        {
            throw new InvalidDataException($"{name} has .npy format version {major}.{prefix[7]}; versions 1.0 to 3.0 are read.");
        }
        RequireRemaining(stream, headerLength, name, $"a header of {headerLength} bytes");
        var headerBytes = new byte[headerLength];
        ReadExactly(stream, headerBytes, name);
        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);
        var (type, shape) = ParseHeader(header, name);
        // Multiplied one dim at a time against the limit, so a huge shape cannot overflow the count.
        long count = 1;
        foreach (var length in shape)
        {
            if (length != 0 && count > Array.MaxLength / length)
            {
                throw new InvalidDataException(
                    $"{name} has shape ({string.Join(", ", shape)}), more than the {Array.MaxLength} elements one array holds.");
            }
            count *= length;
        }
        var elementSize = type == NpyType.Float32 ? 4 : 2;
        var what = $"{count} elements of {elementSize} bytes";
        RequireRemaining(stream, count * elementSize, name, what);
        var raw = new byte[count * elementSize];
        ReadExactly(stream, raw, name, what);
        if (stream.ReadByte() != -1)
        {
            throw new InvalidDataException($"{name} has data after its {what}; an .npy file ends with its array.");
        }
        var data = new float[count];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = type == NpyType.Float32
                ? BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan(i * 4))
                : (float)BinaryPrimitives.ReadHalfLittleEndian(raw.AsSpan(i * 2));
        }
        return new NpyArray(shape, data, type);
    }

    /// <summary>
    /// Writes an .npy file (format 1.0, C order) to a temporary file beside <paramref name="path"/>, renamed
    /// over it only once complete: a failed write (a full disk) leaves no partial file with a valid header.
    /// </summary>
    /// <param name="path">File path.</param>
    /// <param name="array">The array; its <see cref="NpyArray.Type"/> chooses the element type written.</param>
    public static void Write(string path, NpyArray array)
    {
        ArgumentNullException.ThrowIfNull(array);
        WriteAtomically(path, stream => Write(stream, array));
    }

    /// <summary>Runs <paramref name="write"/> on a temporary file beside <paramref name="path"/>, then renames it to <paramref name="path"/>.</summary>
    internal static void WriteAtomically(string path, Action<Stream> write)
    {
        if (Directory.Exists(path))
        {
            throw new InvalidDataException($"{path} is a directory; the output must be a file.");
        }
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"{path}: the directory {directory} does not exist.");
        }
        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception ex)
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
            if (ex is IOException and not DirectoryNotFoundException)
            {
                throw new IOException($"{path}: the write failed, nothing was written ({ex.Message}).", ex);
            }
            throw;
        }
    }

    /// <summary>Writes an .npy stream (format 1.0, C order).</summary>
    /// <param name="stream">Destination.</param>
    /// <param name="array">The array.</param>
    public static void Write(Stream stream, NpyArray array)
    {
        ArgumentNullException.ThrowIfNull(array);
        long count = 1;
        foreach (var length in array.Shape)
        {
            count *= length;
        }
        if (count != array.Data.Length)
        {
            throw new ArgumentException(
                $"array has {array.Data.Length} elements but its shape ({string.Join(", ", array.Shape)}) needs {count}.",
                nameof(array));
        }
        var descr = array.Type == NpyType.Float32 ? "<f4" : "<f2";
        var shape = array.Shape.Length switch
        {
            0 => "()",
            1 => $"({array.Shape[0]},)",
            _ => "(" + string.Join(", ", array.Shape) + ")",
        };
        var dictionary = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        // Magic (6) + version (2) + length (2) + header, padded with spaces so data starts on 64 bytes.
        var total = 10 + dictionary.Length + 1;
        var padding = (64 - total % 64) % 64;
        var header = dictionary + new string(' ', padding) + "\n";
        stream.Write(Magic);
        stream.Write([1, 0]);
        var headerLength = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(headerLength, checked((ushort)header.Length));
        stream.Write(headerLength);
        stream.Write(Encoding.Latin1.GetBytes(header));
        var elementSize = array.Type == NpyType.Float32 ? 4 : 2;
        var raw = new byte[array.Data.Length * elementSize];
        for (var i = 0; i < array.Data.Length; i++)
        {
            if (array.Type == NpyType.Float32)
            {
                BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * 4), array.Data[i]);
            }
            else
            {
                BinaryPrimitives.WriteHalfLittleEndian(raw.AsSpan(i * 2), (Half)array.Data[i]);
            }
        }
        stream.Write(raw);
    }

    private static (NpyType Type, long[] Shape) ParseHeader(string header, string name)
    {
        var descr = DescrPattern().Match(header);
        var fortran = FortranPattern().Match(header);
        var shape = ShapePattern().Match(header);
        if (!descr.Success || !fortran.Success || !shape.Success)
        {
            throw new InvalidDataException($"{name} has an .npy header without descr, fortran_order and shape: {header.Trim()}");
        }
        var type = descr.Groups[1].Value switch
        {
            "<f4" => NpyType.Float32,
            "<f2" => NpyType.Float16,
            var other => throw new InvalidDataException(
                $"{name} holds elements of type '{other}'; only little-endian float32 ('<f4') and float16 ('<f2') are read."),
        };
        if (fortran.Groups[1].Value == "True")
        {
            throw new InvalidDataException($"{name} is in Fortran (column-major) order; only C order is read.");
        }
        var dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var lengths = new long[dims.Length];
        for (var i = 0; i < dims.Length; i++)
        {
            if (!long.TryParse(dims[i].TrimEnd('L'), NumberStyles.None, CultureInfo.InvariantCulture, out lengths[i]))
            {
                throw new InvalidDataException($"{name} has an unreadable shape ({shape.Groups[1].Value}).");
            }
        }
        return (type, lengths);
    }

    // Refuses before allocating: a seekable stream knows how many bytes are left.
    private static void RequireRemaining(Stream stream, long bytes, string name, string what)
    {
        if (stream.CanSeek && bytes > stream.Length - stream.Position)
        {
            throw new InvalidDataException($"{name} ends early; it should hold {what}.");
        }
    }

    private static void ReadExactly(Stream stream, byte[] buffer, string name, string? what = null)
    {
        if (stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) < buffer.Length)
        {
            throw new InvalidDataException($"{name} ends early" + (what is null ? "." : $"; it should hold {what}."));
        }
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
