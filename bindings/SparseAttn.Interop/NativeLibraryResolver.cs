using System.Reflection;
using System.Runtime.InteropServices;

namespace SparseAttn.Interop;

/// <summary>
/// Finds the native library: <c>SPARSEATTN_NATIVE_PATH</c> (a file or a folder), then the NuGet
/// layout <c>runtimes/{rid}/native</c> beside the assembly and the application, then the folder of
/// the assembly and the application, then a CMake build tree (<c>build/native</c>) in a parent folder.
/// </summary>
internal static class NativeLibraryResolver
{
    /// <summary>Environment variable naming the native library file or its folder.</summary>
    public const string PathVariable = "SPARSEATTN_NATIVE_PATH";

    private static readonly Lock Gate = new();
    private static bool registered;
    private static nint loadedHandle;

    /// <summary>Path of the native library once it was loaded, else null.</summary>
    public static string? LoadedPath { get; private set; }

    /// <summary>Registers the resolver for the interop assembly (idempotent).</summary>
    public static void Register()
    {
        lock (Gate)
        {
            if (registered)
            {
                return;
            }
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);
            registered = true;
        }
    }

    /// <summary>Platform file names of the library, most specific first.</summary>
    public static IReadOnlyList<string> FileNames()
    {
        if (OperatingSystem.IsWindows())
        {
            return ["sparseattn.dll", "libsparseattn.dll"];
        }
        if (OperatingSystem.IsMacOS())
        {
            return ["libsparseattn.dylib"];
        }
        return ["libsparseattn.so"];
    }

    /// <summary>Every file path the resolver tries, in order.</summary>
    public static IReadOnlyList<string> CandidatePaths()
    {
        var names = FileNames();
        var paths = new List<string>();

        void AddFolder(string folder)
        {
            foreach (var name in names)
            {
                paths.Add(Path.Combine(folder, name));
            }
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            if (Directory.Exists(fromEnvironment))
            {
                AddFolder(fromEnvironment);
            }
            else
            {
                paths.Add(fromEnvironment);
            }
        }

        var baseFolders = new List<string>();
        var assemblyFolder = Path.GetDirectoryName(typeof(NativeLibraryResolver).Assembly.Location);
        if (!string.IsNullOrEmpty(assemblyFolder))
        {
            baseFolders.Add(assemblyFolder);
        }
        if (!baseFolders.Contains(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)) &&
            !baseFolders.Contains(AppContext.BaseDirectory))
        {
            baseFolders.Add(AppContext.BaseDirectory);
        }

        foreach (var folder in baseFolders)
        {
            foreach (var rid in RuntimeIdentifiers())
            {
                AddFolder(Path.Combine(folder, "runtimes", rid, "native"));
            }
        }
        foreach (var folder in baseFolders)
        {
            AddFolder(folder);
        }

        // Build tree: <repo>/build/native holds the CMake build, the library lands in its native/ folder.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var buildNative = Path.Combine(dir.FullName, "build", "native");
            if (Directory.Exists(buildNative))
            {
                AddFolder(Path.Combine(buildNative, "native"));
                AddFolder(buildNative);
            }
        }
        return paths.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The runtimes that have a SparseAttn.Runtime.&lt;rid&gt; package.</summary>
    internal static readonly string[] PackagedRuntimes = ["linux-x64", "win-x64"];

    /// <summary>What to do when no native library was found for <paramref name="rid"/>: the package to add, or how to build one.</summary>
    internal static string MissingLibraryMessage(string rid, IEnumerable<string> tried)
    {
        var remedy = PackagedRuntimes.Contains(rid, StringComparer.Ordinal)
            ? $"Add the package SparseAttn.Runtime.{rid} (the same version as SparseAttn) to the application: the SparseAttn " +
              "package depends only on the runtime packages it was packed with (its description lists them)"
            : $"No SparseAttn.Runtime.{rid} package is published (there are packages for {string.Join(" and ", PackagedRuntimes)}): " +
              "build the native library from the sources (./build.sh native)";
        return $"The SparseAttn native library for runtime {rid} ({NativeMethods.LibraryName}) was not found. {remedy}, " +
               $"or set {PathVariable} to the library file or its folder. Looked in:" + Environment.NewLine + "  " +
               string.Join(Environment.NewLine + "  ", tried);
    }

    private static IEnumerable<string> RuntimeIdentifiers()
    {
        var arch = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "x86",
            Architecture.Arm => "arm",
            var other => other.ToString().ToLowerInvariant(),
        };
        var os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        var portable = $"{os}-{arch}";
        yield return portable;
        if (!string.Equals(RuntimeInformation.RuntimeIdentifier, portable, StringComparison.Ordinal))
        {
            yield return RuntimeInformation.RuntimeIdentifier;
        }
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!string.Equals(libraryName, NativeMethods.LibraryName, StringComparison.Ordinal))
        {
            return 0;
        }
        lock (Gate)
        {
            if (loadedHandle != 0)
            {
                return loadedHandle;
            }
            var tried = new List<string>();
            foreach (var path in CandidatePaths())
            {
                if (!File.Exists(path))
                {
                    tried.Add(path);
                    continue;
                }
                try
                {
                    loadedHandle = NativeLibrary.Load(path);
                    LoadedPath = path;
                    return loadedHandle;
                }
                catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
                {
                    tried.Add($"{path} (exists but failed to load: {e.Message})");
                }
            }
            // Last resort: the operating system's own search (LD_LIBRARY_PATH, PATH, system folders).
            if (NativeLibrary.TryLoad(libraryName, assembly, searchPath, out var systemHandle))
            {
                loadedHandle = systemHandle;
                LoadedPath = libraryName;
                return systemHandle;
            }
            tried.Add($"{libraryName} (system search path)");
            throw new DllNotFoundException(MissingLibraryMessage(RuntimeIdentifiers().First(), tried));
        }
    }
}
