namespace SparseAttn.Reports.Tests;

/// <summary>Parsing of the recorded bench JSON and anchor logs, and the choice of the run each plot reads.</summary>
[TestFixture]
public class RecordedResultsTests
{
    // The form of 2026-12-03-h200-na-v2.anchors.txt (anchors_sparse.py na).
    private const string NaAnchors = """
        2.11.0+cu130 NVIDIA H200
        cudnn dense B1 H16 S32768 D128 causal=False                   14.574 ms    603.5 TFLOP/s
        cudnn dense B1 H24 S65536 D128 causal=False                   87.770 ms    601.3 TFLOP/s
        flex NA2D 256x256 k80 H24 D128 (row-major tokens)             57.527 ms     89.6 TFLOP/s
        cudnn dense B1 H24 S115200 D128 causal=False                 263.347 ms    619.2 TFLOP/s
        """;

    // The form of 2026-12-03-h200-na-v2.json (sparseattn_bench_sparse --suite na --json), plus the spread
    // fields and a row whose JSON has no pair bound.
    private const string NaJson = """
        {"device": "NVIDIA H200", "kernel": "auto", "results": [
          {"name": "NA 1-D 32768 w2048", "ms": 1.4971, "tflops": 367.21, "dense_ms": 19.9471, "speedup": 13.324, "pair_bound": 16.000, "tile_bound": 15.114, "checked": false},
          {"name": "NA 2-D 256x256 w80x80 s16x16", "ms": 14.5789, "ms_min": 14.0, "ms_max": 15.0, "tflops": 353.52, "pair_bound": 10.240, "tile_bound": 10.240},
          {"name": "NA 3-D 30x48x80 w18x24x24", "ms": 105.0153, "tflops": 139.76, "pair_bound": 0.000, "tile_bound": 6.258},
          {"name": "NA 2-D 128x128 w13x13", "ms": 1.0, "tflops": 1.0, "pair_bound": 96.9, "tile_bound": 50.0},
          {"name": "block-sparse S32768 H32 density 0.054", "ms": 2.0860, "tflops": 452.13}
        ]}
        """;

    private static IReadOnlyList<string> Lines(string text) => text.Split('\n');

    [Test]
    public void AnchorLogReadsNameTimeAndRateAndSkipsOtherLines()
    {
        var rows = AnchorLog.Parse(Lines(NaAnchors));

        Assert.That(rows, Has.Count.EqualTo(4));
        Assert.That(rows[0], Is.EqualTo(new AnchorLine("cudnn dense B1 H16 S32768 D128 causal=False", 14.574, 603.5)));
        Assert.That(rows[2].Name, Is.EqualTo("flex NA2D 256x256 k80 H24 D128 (row-major tokens)"));
        Assert.That(rows[2].Ms, Is.EqualTo(57.527));
    }

    [Test]
    public void NeighborhoodSpeedupIsCudnnOnTheSameTokensOverOurTime()
    {
        var (ours, flex) = NeighborhoodPlot.Build(SparseBenchRow.Parse(NaJson), AnchorLog.Parse(Lines(NaAnchors)));

        // The 128x128 case has no cuDNN line on 16384 tokens and the block-sparse row is not a neighborhood case.
        Assert.That(ours.Select(p => p.Case), Is.EqualTo(new[] { "1-D 32768 w2048", "2-D 256x256 w80x80 s16x16", "3-D 30x48x80 w18x24x24" }));
        var oneD = ours[0];
        Assert.That(oneD.Rank, Is.EqualTo(1));
        Assert.That(oneD.Tokens, Is.EqualTo(32768));
        Assert.That(oneD.Speedup, Is.EqualTo(14.574 / 1.4971).Within(1e-12));
        Assert.That(oneD.PairBound, Is.EqualTo(16.0));
        Assert.That(oneD.PairBoundDerived, Is.False);
        Assert.That(oneD.SpeedupLow, Is.Null);
        Assert.That(oneD.SpeedupHigh, Is.Null);

        var twoD = ours[1];
        Assert.That(twoD.Variant, Is.EqualTo("s16x16"));
        Assert.That(twoD.Speedup, Is.EqualTo(87.770 / 14.5789).Within(1e-12));
        Assert.That(twoD.SpeedupHigh, Is.EqualTo(87.770 / 14.0).Within(1e-12));
        Assert.That(twoD.SpeedupLow, Is.EqualTo(87.770 / 15.0).Within(1e-12));

        // No pair bound in the JSON: tokens / window volume.
        var threeD = ours[2];
        Assert.That(threeD.PairBoundDerived, Is.True);
        Assert.That(threeD.PairBound, Is.EqualTo(30.0 * 48 * 80 / (18 * 24 * 24)).Within(1e-12));
        Assert.That(threeD.Speedup, Is.EqualTo(263.347 / 105.0153).Within(1e-12));

        Assert.That(flex, Has.Count.EqualTo(1));
        Assert.That(flex[0].Case, Is.EqualTo("2-D 256x256 w80"));
        Assert.That(flex[0].PairBound, Is.EqualTo(65536.0 / 6400).Within(1e-12));
        Assert.That(flex[0].Speedup, Is.EqualTo(87.770 / 57.527).Within(1e-12));
    }

    [Test]
    public void BlockSparseReadsBothAnchorSpellingsAndLeavesOutOtherPermutations()
    {
        const string json = """
            {"device": "NVIDIA H200", "kernel": "auto", "results": [
              {"name": "block-sparse S32768 H32 density 0.054", "ms": 2.0860, "tflops": 452.13},
              {"name": "block-sparse S32768 H32 density 0.054 key-perm", "ms": 3.0458, "tflops": 309.66, "ms_min": 3.0, "ms_max": 3.1},
              {"name": "block-sparse S32768 H32 density 0.103 key-perm identity", "ms": 5.4609, "tflops": 333.13}
            ]}
            """;
        // 2026-12-03-h200-bs-v3.anchors.txt (anchors_bench.py bs).
        const string v3 = """
            2.11.0+cu130 NVIDIA H200
            flex blocksparse S32768 H32 density=0.054                      2.392 ms    395.5 TFLOP/s
              dense cudnn S32768 D128                                     28.119 ms    625.6 TFLOP/s
              dense flash S32768 D128                                     49.841 ms    353.0 TFLOP/s
            """;
        // anchors_sparse.py bs: the causal line comes second and is not the baseline.
        const string sparseScript = """
            2.11.0+cu130 NVIDIA H200
            cudnn dense B1 H32 S32768 D128 causal=False                   28.500 ms    617.0 TFLOP/s
            cudnn dense B1 H32 S32768 D128 causal=True                    15.000 ms    586.0 TFLOP/s
            """;

        var (ours, flex, cudnn) = BlockSparsePlot.Build(SparseBenchRow.Parse(json), AnchorLog.Parse(Lines(v3)));
        Assert.That(ours, Has.Count.EqualTo(2));
        Assert.That(ours[0], Is.EqualTo(new BlockSparsePlot.OursPoint(0.054, false, 2.0860, null, null)));
        Assert.That(ours[1], Is.EqualTo(new BlockSparsePlot.OursPoint(0.054, true, 3.0458, 3.0, 3.1)));
        Assert.That(flex, Is.EqualTo(new[] { (0.054, 2.392) }));
        Assert.That(cudnn, Is.EqualTo(28.119));

        var (_, flex2, cudnn2) = BlockSparsePlot.Build(SparseBenchRow.Parse(json), AnchorLog.Parse(Lines(sparseScript)));
        Assert.That(flex2, Is.Empty);
        Assert.That(cudnn2, Is.EqualTo(28.5));
    }

    [Test]
    public void DenseAnchorsAndBenchRowsMatchOnTheShape()
    {
        const string anchors = """
            sdpa FLASH_ATTENTION B2 H16 S8192 D128 causal=False            3.087 ms    356.2 TFLOP/s
            sdpa CUDNN_ATTENTION B2 H16 S8192 D128 causal=False            1.783 ms    616.8 TFLOP/s
            flex B2 H16 S8192 D128 causal=True                             1.393 ms    394.8 TFLOP/s
            """;
        const string json = """
            {"device": "NVIDIA H100 80GB HBM3", "copy_gbps": 0.0, "kernel": "portable", "results": [
              {"name": "bf16 B2 H16/16 Sq8192 Sk8192 D128 full", "dtype": "bf16", "batch": 2, "heads": 16, "heads_kv": 16, "seqlen_q": 8192, "seqlen_k": 8192, "dim": 128, "causal": 0, "splits": 0, "ms": 3.26534, "ms_min": 3.17878, "tflops": 336.72, "ok": true}
            ]}
            """;

        var byImpl = DenseKernelsPlot.Anchors(AnchorLog.Parse(Lines(anchors)));
        var (kernel, device, rows) = DenseBenchRow.Parse(json);

        Assert.That(kernel, Is.EqualTo("portable"));
        Assert.That(device, Is.EqualTo("NVIDIA H100 80GB HBM3"));
        Assert.That(rows, Has.Count.EqualTo(1));
        Assert.That(rows[0].MsMin, Is.EqualTo(3.17878));
        Assert.That(rows[0].MsMax, Is.Null);
        Assert.That(rows[0].Label, Is.EqualTo("B2 H16 S8K D128 full"));
        Assert.That(byImpl["sdpa-cudnn"][rows[0].Key], Is.EqualTo(616.8));
        Assert.That(byImpl["sdpa-flash"][rows[0].Key], Is.EqualTo(356.2));
        Assert.That(byImpl["flex"].ContainsKey(rows[0].Key), Is.False);
        Assert.That(byImpl["flex"].ContainsKey((2, 16, 8192L, 128, true)), Is.True);
    }

    [Test]
    public void NewestRunIsTheHighestVersionThatHasItsAnchors()
    {
        var dir = Directory.CreateTempSubdirectory("sparseattn-reports-").FullName;
        try
        {
            foreach (var v in new[] { 2, 9, 10, 11 })
            {
                File.WriteAllText(Path.Combine(dir, $"2026-12-03-h200-bs-v{v}.json"), "{}");
            }
            foreach (var v in new[] { 2, 9, 10 })
            {
                File.WriteAllText(Path.Combine(dir, $"2026-12-03-h200-bs-v{v}.anchors.txt"), "");
            }
            File.WriteAllText(Path.Combine(dir, "2026-12-04-h200-pbs-v1.json"), "{}");
            File.WriteAllText(Path.Combine(dir, "2026-12-04-h200-pbs-v1.anchors.txt"), "");

            Assert.That(Path.GetFileName(RecordedRuns.NewestWithAnchors(dir, "bs")), Is.EqualTo("2026-12-03-h200-bs-v10.json"));
            Assert.That(Path.GetFileName(RecordedRuns.NewestWithAnchors(dir, "pbs")), Is.EqualTo("2026-12-04-h200-pbs-v1.json"));
            Assert.That(RecordedRuns.NewestWithAnchors(dir, "na"), Is.Null);
            Assert.That(RecordedRuns.NewestWithAnchors(Path.Combine(dir, "missing"), "na"), Is.Null);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void MissingFilesSkipThePlotsWithoutThrowing()
    {
        var dir = Directory.CreateTempSubdirectory("sparseattn-reports-").FullName;
        try
        {
            var results = Path.Combine(dir, "results");
            var plots = Path.Combine(dir, "plots");
            Assert.DoesNotThrow(() => NeighborhoodPlot.Render(results, plots));
            Assert.DoesNotThrow(() => BlockSparsePlot.Render(results, plots));
            Assert.DoesNotThrow(() => DenseKernelsPlot.Render(results, plots));

            // A run whose anchors have no cuDNN line on its token counts: skipped, no file.
            Directory.CreateDirectory(results);
            File.WriteAllText(Path.Combine(results, "2026-12-03-h200-na-v1.json"), NaJson);
            File.WriteAllText(Path.Combine(results, "2026-12-03-h200-na-v1.anchors.txt"), "2.11.0 NVIDIA H200\n");
            Assert.DoesNotThrow(() => NeighborhoodPlot.Render(results, plots));
            Assert.That(File.Exists(Path.Combine(plots, NeighborhoodPlot.FileName)), Is.False);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void UnreadableBenchJsonIsReportedAsInvalidData()
    {
        Assert.Throws<InvalidDataException>(() => SparseBenchRow.Parse("""{"device": "x"}"""));
        Assert.Throws<InvalidDataException>(() => DenseBenchRow.Parse("[]"));
        // Rows of another form are left out rather than failing the file.
        Assert.That(SparseBenchRow.Parse("""{"results": [1, {"name": 3, "ms": 1}, {"name": "a", "ms": "1"}]}"""), Is.Empty);
    }

    [Test]
    public void NeighborhoodPlotIsWrittenFromARunWithItsAnchors()
    {
        var dir = Directory.CreateTempSubdirectory("sparseattn-reports-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "2026-12-03-h200-na-v2.json"), NaJson);
            File.WriteAllText(Path.Combine(dir, "2026-12-03-h200-na-v2.anchors.txt"), NaAnchors);

            NeighborhoodPlot.Render(dir, Path.Combine(dir, "plots"));

            var png = new FileInfo(Path.Combine(dir, "plots", NeighborhoodPlot.FileName));
            Assert.That(png.Exists, Is.True);
            Assert.That(png.Length, Is.GreaterThan(1000));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
