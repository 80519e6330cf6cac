using SparseAttn.Interop;

namespace SparseAttn.Tests.Api;

/// <summary>The message when no native library is found names the runtime and how to get one.</summary>
[TestFixture]
public class NativeResolverTests
{
    [Test]
    public void PackagedRuntimeNamesItsPackage()
    {
        var message = NativeLibraryResolver.MissingLibraryMessage("win-x64", ["C:/app/runtimes/win-x64/native/sparseattn.dll"]);
        Assert.That(message, Does.Contain("runtime win-x64").And.Contain("Add the package SparseAttn.Runtime.win-x64")
            .And.Contain("SPARSEATTN_NATIVE_PATH").And.Contain("C:/app/runtimes/win-x64/native/sparseattn.dll"));
    }

    [Test]
    public void UnpackagedRuntimeSaysToBuildTheLibrary()
    {
        var message = NativeLibraryResolver.MissingLibraryMessage("linux-arm64", []);
        Assert.That(message, Does.Contain("runtime linux-arm64").And.Contain("No SparseAttn.Runtime.linux-arm64 package is published")
            .And.Contain("./build.sh native").And.Contain("SPARSEATTN_NATIVE_PATH"));
    }
}
