using System.Text;
using Spectre.Console;

namespace SparseAttn.Cli.Tests;

/// <summary>The command handlers run in process, with their console output captured.</summary>
[TestFixture]
public class CliTests
{
    private static (int ExitCode, string Output) Run(params string[] args)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 200;
        var code = CliApp.Run(args, console, writer);
        return (code, writer.ToString());
    }

    [Test]
    public void BlockedOneDimensionalWindowEstimate()
    {
        // L = 13, k = 4, s = 4: every query sees exactly 4 keys, so 52 of 169 pairs.
        var estimate = EstimateCommand.ForNeighborhood(NeighborhoodConfig.Create1D(13, 4, stride: 4));
        Assert.That(estimate.AllowedPairs, Is.EqualTo(52));
        Assert.That(estimate.DensePairs, Is.EqualTo(169));
        Assert.That(estimate.Speedup, Is.EqualTo(3.25).Within(1e-12));

        var (code, output) = Run("estimate", "neighborhood", "--grid", "13", "--kernel", "4", "--stride", "4");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        Assert.That(output, Does.Contain("52").And.Contain("3.25x over dense"));
    }

    [Test]
    public void CausalOneDimensionalWindowUsesTheCausalBaseline()
    {
        // L = 10, k = 4, s = 1, causal: query u sees max(u - 3, 0)..u, so 1 + 2 + 3 + 4 * 7 = 34 pairs of 55.
        var estimate = EstimateCommand.ForNeighborhood(NeighborhoodConfig.Create1D(10, 4, causal: true));
        Assert.That(estimate.AllowedPairs, Is.EqualTo(34));
        Assert.That(estimate.DensePairs, Is.EqualTo(55));
        Assert.That(estimate.CausalBaseline, Is.True);
    }

    [Test]
    public void CausalBlockMaskEstimateIsOneTimesCausalDense()
    {
        var estimate = EstimateCommand.ForBlockMask(1000, 128, "causal", 0, 0, causal: true, seed: 1);
        Assert.That(estimate.AllowedPairs, Is.EqualTo(1000L * 1001 / 2));
        Assert.That(estimate.Speedup, Is.EqualTo(1.0).Within(1e-12));
    }

    [Test]
    public void InfoReportsTheCpuKernelsInstructionSet()
    {
        var (code, output) = Run("info");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        Assert.That(output, Does.Contain($"CPU kernels: {SparseAttnLibrary.CpuInstructionSet}"));
    }

    [Test]
    public void RunDenseOnTheCpuPassesItsCheck()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sparseattn-cli-{Guid.NewGuid():N}.npy");
        try
        {
            var (code, output) = Run("run", "dense", "--seq", "70", "--heads", "4", "--kv-heads", "2", "--head-dim", "32",
                "--causal", "--reps", "2", "-o", path);
            Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
            Assert.That(output, Does.Contain("passed"));
            var written = Npy.Read(path);
            Assert.That(written.Shape, Is.EqualTo(new long[] { 1, 70, 4, 32 }));
            Assert.That(written.Data.All(float.IsFinite), Is.True);
        }
        finally
        {
            File.Delete(path);
        }
    }

    // ----- malformed inputs, memory, outputs -----

    private string directory = null!;

    [SetUp]
    public void CreateDirectory()
    {
        directory = Path.Combine(Path.GetTempPath(), $"sparseattn-cli-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
    }

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(directory, recursive: true);

    private string Valid(string name)
    {
        var path = Path.Combine(directory, name);
        Npy.Write(path, new NpyArray([1, 4, 1, 8], Enumerable.Range(0, 32).Select(i => i * 0.01f).ToArray(), NpyType.Float32));
        return path;
    }

    // An .npy file with a raw version byte, declared header length and header text.
    private string Raw(string name, byte major, uint headerLength, string header, int dataBytes = 0, byte[]? extra = null)
    {
        var path = Path.Combine(directory, name);
        using var stream = File.Create(path);
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, 0]);
        if (major == 1)
        {
            stream.Write(BitConverter.GetBytes((ushort)headerLength));
        }
        else
        {
            stream.Write(BitConverter.GetBytes(headerLength));
        }
        stream.Write(Encoding.ASCII.GetBytes(header));
        stream.Write(new byte[dataBytes]);
        stream.Write(extra ?? []);
        return path;
    }

    private (int ExitCode, string Output) RunWithQuery(string query) =>
        Run("run", "dense", "--q", query, "--k", Valid("k.npy"), "--v", Valid("v.npy"), "--reps", "1");

    private static void AssertBadInput((int ExitCode, string Output) result, params string[] fragments)
    {
        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.BadArguments), result.Output);
        // Long messages wrap on the console: compare with the line breaks folded into spaces.
        var text = System.Text.RegularExpressions.Regex.Replace(result.Output, @"\s+", " ");
        foreach (var fragment in fragments)
        {
            Assert.That(text, Does.Contain(fragment), result.Output);
        }
    }

    [Test]
    public void ShapeProductOverflowNamesTheFile()
    {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296, 1), }\n";
        var path = Raw("overflow.npy", 1, (uint)header.Length, header);
        AssertBadInput(RunWithQuery(path), "overflow.npy", "more than");
    }

    [Test]
    public void HugeHeaderLengthNamesTheFile()
    {
        var path = Raw("header.npy", 2, 0xFFFFFFF0u, "{'descr'");
        AssertBadInput(RunWithQuery(path), "header.npy", "header of 4294967280 bytes");
        var truncated = Raw("short.npy", 2, 1 << 19, "{'descr'");
        AssertBadInput(RunWithQuery(truncated), "short.npy", "ends early");
    }

    [Test]
    public void DirectoryGivenAsFileNamesIt()
    {
        var folder = Directory.CreateDirectory(Path.Combine(directory, "folder.npy")).FullName;
        AssertBadInput(RunWithQuery(folder), "folder.npy", "is a directory");
    }

    [Test]
    public void TrailingDataIsRejected()
    {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 1, 8), }".PadRight(117) + "\n";
        var path = Raw("trailing.npy", 1, (uint)header.Length, header, 32 * 4, [1, 2, 3]);
        AssertBadInput(RunWithQuery(path), "trailing.npy", "data after");
        var exact = Raw("exact.npy", 1, (uint)header.Length, header, 32 * 4);
        var (code, output) = RunWithQuery(exact);
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
    }

    [Test]
    public void RunChecksMemoryBeforeAllocating()
    {
        var saved = RunCommand.HostMemoryBytes;
        RunCommand.HostMemoryBytes = () => 1L << 30;
        try
        {
            // Q alone is 1.2 G floats (4.6 GiB): refused before any array is allocated.
            var before = GC.GetTotalAllocatedBytes();
            AssertBadInput(Run("run", "dense", "-s", "300000", "-d", "512"), "--seq", "GiB of host memory");
            Assert.That(GC.GetTotalAllocatedBytes() - before, Is.LessThan(64L << 20));
        }
        finally
        {
            RunCommand.HostMemoryBytes = saved;
        }
    }

    [Test]
    public void FailedWriteLeavesNoPartialFile()
    {
        var path = Path.Combine(directory, "out.npy");
        var ex = Assert.Throws<IOException>(() => Npy.WriteAtomically(path, stream =>
        {
            Npy.Write(stream, new NpyArray([2], [1f, 2f], NpyType.Float32));
            throw new IOException("No space left on device");
        }))!;
        Assert.That(ex.Message, Does.Contain("out.npy").And.Contain("No space left on device"));
        Assert.That(Directory.GetFiles(directory), Is.Empty, "neither the output nor a temporary file is left");
        // An existing output is replaced only by a complete one.
        Npy.Write(path, new NpyArray([1], [7f], NpyType.Float32));
        Assert.Throws<IOException>(() => Npy.WriteAtomically(path, _ => throw new IOException("disk full")));
        Assert.That(Npy.Read(path).Data, Is.EqualTo(new[] { 7f }));
        Assert.That(Directory.GetFiles(directory), Has.Length.EqualTo(1));
    }

    [Test]
    public void OutputToADirectoryIsRejected()
    {
        var folder = Directory.CreateDirectory(Path.Combine(directory, "o.npy")).FullName;
        AssertBadInput(Run("run", "dense", "--seq", "8", "--heads", "1", "--head-dim", "8", "--reps", "1", "-o", folder), "o.npy");
    }

    [Test]
    public void NeighborhoodCausalFlagIsRejected() =>
        AssertBadInput(Run("run", "neighborhood", "--seq", "16", "--kernel", "3", "--causal"), "--causal-dims");

    [Test]
    public void EstimateExtremeSizesExitWithTwo()
    {
        AssertBadInput(Run("estimate", "block-mask", "--seq", "2147483647"), "--seq 2147483647");
        AssertBadInput(Run("estimate", "block-mask", "--seq", "2147483647", "--pattern", "window"), "--seq 2147483647");
        AssertBadInput(Run("estimate", "neighborhood", "--grid", "2097152x2097152x2097152", "--kernel", "1"), "grid");
        AssertBadInput(Run("estimate", "block-mask", "--seq", "4096", "--block", "100"), "--block 100 must be 64 or 128");
        Assert.That(CliApp.DensePairs(int.MaxValue, int.MaxValue, causal: true), Is.EqualTo(2147483647L * 2147483648 / 2));
    }

    [TestCase(10, 10)]
    [TestCase(7, 12)]
    [TestCase(12, 7)]
    [TestCase(1, 1)]
    public void CausalDensePairsMatchTheRowSum(int seqQ, int seqK)
    {
        long expected = 0;
        for (var i = 0; i < seqQ; i++)
        {
            expected += Math.Clamp(i + seqK - seqQ + 1, 0, seqK);
        }
        Assert.That(CliApp.DensePairs(seqQ, seqK, causal: true), Is.EqualTo(expected));
    }

    [TestCase("run", "dense", "--bogus")]
    [TestCase("run", "sparse")]
    [TestCase("run", "dense", "--seq", "0")]
    [TestCase("run", "dense", "--device", "tpu")]
    [TestCase("run", "dense", "--device", "cpu", "--dtype", "float64")]
    [TestCase("run", "neighborhood", "--seq", "64", "--kernel", "100")]
    [TestCase("run", "block-sparse", "--seq", "256", "--block", "32")]
    [TestCase("estimate", "block-mask", "--seq", "100", "--density", "2")]
    public void BadArgumentsExitWithTwo(params string[] args)
    {
        var (code, output) = Run(args);
        Assert.That(code, Is.EqualTo(ExitCodes.BadArguments), output);
        Assert.That(output, Does.Contain("error"));
    }
}
