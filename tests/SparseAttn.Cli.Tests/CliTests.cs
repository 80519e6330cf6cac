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
