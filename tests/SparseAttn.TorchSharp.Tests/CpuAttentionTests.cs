using SparseAttn.TorchSharp.Tests.Support;
using TorchSharp;
using static SparseAttn.TorchSharp.Tests.Support.TorchReference;
using static TorchSharp.torch;

namespace SparseAttn.TorchSharp.Tests;

/// <summary>CPU calls on torch tensors against torch's own scaled_dot_product_attention and explicit masks.</summary>
[TestFixture]
public class CpuAttentionTests
{
    private const double Float32Tolerance = 1e-4;
    private DisposeScope? scope;

    [SetUp]
    public void SetUp()
    {
        scope = torch.NewDisposeScope();
        SeedFor(TestContext.CurrentContext.Test.FullName);
    }

    [TearDown]
    public void TearDown() => scope?.Dispose();

    private static string Context => $"seed {Seed} (set SPARSEATTN_TEST_SEED to replay)";

    private static void AssertClose(Tensor actual, Tensor expected, double tolerance, string what)
    {
        Assert.That(actual.isnan().any().item<bool>(), Is.False, $"{what}: NaN in the result; {Context}");
        var error = MaxError(actual, expected);
        Assert.That(error, Is.LessThanOrEqualTo(tolerance), $"{what}: max error {error:E3}; {Context}");
    }

    [TestCase(2, 37, 53, 4, 4, 32, false, TestName = "Dense, S_q < S_k, not causal")]
    [TestCase(1, 61, 29, 2, 2, 64, false, TestName = "Dense, S_q > S_k, not causal")]
    [TestCase(1, 45, 45, 4, 4, 64, true, TestName = "Dense, causal, S_q == S_k")]
    [TestCase(2, 33, 33, 8, 2, 16, true, TestName = "Dense, GQA 8:2, causal")]
    [TestCase(1, 20, 70, 6, 1, 24, false, TestName = "Dense, MQA 6:1")]
    public void DenseMatchesTorchSdpaInTorchLayout(int b, int sq, int sk, int hq, int hkv, int d, bool causal)
    {
        var q = Random(ScalarType.Float32, b, hq, sq, d);
        var k = Random(ScalarType.Float32, b, hkv, sk, d);
        var v = Random(ScalarType.Float32, b, hkv, sk, d);
        var expected = Sdpa(q, k, v, causal: causal);

        var actual = TorchAttention.Dense(q, k, v, new AttentionOptions { Causal = causal }, TensorLayout.BHSD);

        Assert.That(actual.shape, Is.EqualTo(q.shape));
        AssertClose(actual, expected, Float32Tolerance, "dense [B, H, S, D]");
    }

    [TestCase(2, 37, 37, 4, 2, 32, false, TestName = "Default layout is torch's, S_q == S_k")]
    [TestCase(1, 45, 45, 3, 3, 64, true, TestName = "Default layout is torch's, S_q == S_k, causal")]
    [TestCase(2, 19, 53, 4, 4, 32, false, TestName = "Default layout is torch's, S_q < S_k")]
    [TestCase(1, 61, 29, 2, 1, 16, false, TestName = "Default layout is torch's, S_q > S_k")]
    public void DefaultLayoutIsTorchsAndMatchesSdpa(int b, int sq, int sk, int hq, int hkv, int d, bool causal)
    {
        var q = Random(ScalarType.Float32, b, hq, sq, d);
        var k = Random(ScalarType.Float32, b, hkv, sk, d);
        var v = Random(ScalarType.Float32, b, hkv, sk, d);
        var output = torch.full_like(q, float.NaN);

        TorchAttention.Dense(q, k, v, output, options: new AttentionOptions { Causal = causal });

        AssertClose(output, Sdpa(q, k, v, causal: causal), Float32Tolerance, "dense, no layout given");
    }

    [TestCase(1, 13, 41, 3, 3, 32, TestName = "Top-left causal equals torch is_causal, S_q < S_k")]
    [TestCase(2, 50, 21, 4, 2, 16, TestName = "Top-left causal equals torch is_causal, S_q > S_k")]
    [TestCase(1, 33, 33, 2, 1, 64, TestName = "Top-left causal equals torch is_causal, S_q == S_k")]
    public void TopLeftCausalMatchesTorchIsCausal(int b, int sq, int sk, int hq, int hkv, int d)
    {
        var q = Random(ScalarType.Float32, b, hq, sq, d);
        var k = Random(ScalarType.Float32, b, hkv, sk, d);
        var v = Random(ScalarType.Float32, b, hkv, sk, d);
        var options = new AttentionOptions { Causal = true, CausalAlignment = CausalAlignment.TopLeft };

        var (actual, lse) = TorchAttention.DenseWithLse(q, k, v, options);

        AssertClose(actual, Sdpa(q, k, v, causal: true), Float32Tolerance, "top-left causal against torch's is_causal");
        var topLeft = torch.ones(new long[] { sq, sk }, ScalarType.Bool).tril();
        AssertClose(lse, Lse(q, k, topLeft), Float32Tolerance, "top-left causal LSE");
    }

    [Test]
    public void DenseOnBshdTensorsMatchesTorchSdpa()
    {
        var q = Random(ScalarType.Float32, 2, 31, 3, 40);
        var k = Random(ScalarType.Float32, 2, 47, 3, 40);
        var v = Random(ScalarType.Float32, 2, 47, 3, 40);
        var expected = Sdpa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2);

        var actual = TorchAttention.Dense(q, k, v, layout: TensorLayout.BSHD);

        AssertClose(actual, expected, Float32Tolerance, "dense [B, S, H, D]");
    }

    [Test]
    public void TransposedTorchLayoutViewIsReadThroughStrides()
    {
        var q = Random(ScalarType.Float32, 2, 4, 29, 32);
        var k = Random(ScalarType.Float32, 2, 4, 29, 32);
        var v = Random(ScalarType.Float32, 2, 4, 29, 32);
        var expected = Sdpa(q, k, v, causal: true);
        var qView = q.transpose(1, 2);
        Assert.That(qView.is_contiguous(), Is.False, "the view must be strided for this test to mean anything");

        var actual = TorchAttention.Dense(qView, k.transpose(1, 2), v.transpose(1, 2), new AttentionOptions { Causal = true },
            TensorLayout.BSHD);

        AssertClose(actual.transpose(1, 2), expected, Float32Tolerance, "dense through transpose(1, 2)");
    }

    [Test]
    public void StorageOffsetsAreRespectedAndNothingOutsideTheOutputIsWritten()
    {
        var qAll = Random(ScalarType.Float32, 3, 2, 17, 16);
        var kAll = Random(ScalarType.Float32, 4, 2, 23, 16);
        var vAll = Random(ScalarType.Float32, 4, 2, 23, 16);
        var q = qAll.narrow(0, 1, 2);
        var k = kAll.narrow(0, 2, 2);
        var v = vAll.narrow(0, 1, 2);
        var outAll = torch.full(new long[] { 4, 2, 17, 16 }, float.NaN);
        var output = outAll.narrow(0, 1, 2);
        Assert.That(output.storage_offset(), Is.GreaterThan(0));

        TorchAttention.Dense(q, k, v, output, layout: TensorLayout.BHSD);

        AssertClose(output, Sdpa(q, k, v), Float32Tolerance, "dense over storage offsets");
        Assert.That(outAll[0].isnan().all().item<bool>() && outAll[3].isnan().all().item<bool>(), Is.True,
            "the batches outside the output view were written");
    }

    [Test]
    public void ScaleOptionMatchesTorch()
    {
        var q = Random(ScalarType.Float32, 1, 2, 19, 32);
        var k = Random(ScalarType.Float32, 1, 2, 25, 32);
        var v = Random(ScalarType.Float32, 1, 2, 25, 32);

        var actual = TorchAttention.Dense(q, k, v, new AttentionOptions { Scale = 0.7f }, TensorLayout.BHSD);

        AssertClose(actual, Sdpa(q, k, v, scale: 0.7), Float32Tolerance, "dense with scale 0.7");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void CausalWithFewerQueriesIsBottomRightAligned(bool withLse)
    {
        var q = Random(ScalarType.Float32, 1, 3, 13, 32);
        var k = Random(ScalarType.Float32, 1, 3, 41, 32);
        var v = Random(ScalarType.Float32, 1, 3, 41, 32);
        var mask = CausalMask(13, 41);
        var options = new AttentionOptions { Causal = true };

        if (withLse)
        {
            var (output, lse) = TorchAttention.DenseWithLse(q, k, v, options, TensorLayout.BHSD);
            AssertClose(output, Sdpa(q, k, v, mask), Float32Tolerance, "causal output");
            Assert.That(lse.shape, Is.EqualTo(new long[] { 1, 3, 13 }));
            AssertClose(lse, Lse(q, k, mask), Float32Tolerance, "causal LSE");
        }
        else
        {
            AssertClose(TorchAttention.Dense(q, k, v, options, TensorLayout.BHSD), Sdpa(q, k, v, mask), Float32Tolerance,
                "causal output");
        }
    }

    [Test]
    public void LseMatchesLogSumExpOfExplicitScores()
    {
        var q = Random(ScalarType.Float32, 2, 4, 27, 48);
        var k = Random(ScalarType.Float32, 2, 2, 35, 48);
        var v = Random(ScalarType.Float32, 2, 2, 35, 48);
        var output = torch.empty_like(q);
        var lse = torch.full(new long[] { 2, 4, 27 }, float.NaN);

        TorchAttention.Dense(q, k, v, output, lse, layout: TensorLayout.BHSD);

        AssertClose(lse, Lse(q, k), Float32Tolerance, "LSE");
        AssertClose(output, Sdpa(q, k, v), Float32Tolerance, "output");
    }

    [TestCase(ScalarType.Float16, 2e-3)]
    [TestCase(ScalarType.BFloat16, 1.6e-2)]
    public void HalfPrecisionOnCpuMatchesFloat32Torch(ScalarType dtype, double tolerance)
    {
        var q = Random(dtype, 1, 4, 33, 64);
        var k = Random(dtype, 1, 4, 40, 64);
        var v = Random(dtype, 1, 4, 40, 64);

        var actual = TorchAttention.Dense(q, k, v, new AttentionOptions { Causal = true }, TensorLayout.BHSD);

        Assert.That(actual.dtype, Is.EqualTo(dtype));
        AssertClose(actual, Sdpa(q, k, v, CausalMask(33, 40)), tolerance, $"dense {dtype}");
    }

    [Test]
    public void VarlenMatchesTorchPerSequence()
    {
        int[] lengthsQ = [13, 29, 1];
        int[] lengthsK = [21, 17, 9];
        int totalQ = lengthsQ.Sum(), totalK = lengthsK.Sum();
        var q = Random(ScalarType.Float32, totalQ, 4, 32);
        var k = Random(ScalarType.Float32, totalK, 2, 32);
        var v = Random(ScalarType.Float32, totalK, 2, 32);
        var cuQ = torch.tensor(new[] { 0, 13, 42, 43 });
        var cuK = torch.tensor(new[] { 0, 21, 38, 47 });

        var actual = TorchAttention.DenseVarlen(q, k, v, cuQ, cuK, 29, 21, new AttentionOptions { Causal = true });

        for (int b = 0, startQ = 0, startK = 0; b < lengthsQ.Length; startQ += lengthsQ[b], startK += lengthsK[b], b++)
        {
            Tensor Sequence(Tensor t, int start, int length) => t.narrow(0, start, length).unsqueeze(0).transpose(1, 2);
            var expected = Sdpa(Sequence(q, startQ, lengthsQ[b]), Sequence(k, startK, lengthsK[b]),
                Sequence(v, startK, lengthsK[b]), CausalMask(lengthsQ[b], lengthsK[b]));
            AssertClose(Sequence(actual, startQ, lengthsQ[b]), expected, Float32Tolerance, $"sequence {b}");
        }
    }

    [Test]
    public void MergeOfTwoKeyHalvesEqualsAttentionOverAllKeys()
    {
        var q = Random(ScalarType.Float32, 2, 19, 4, 32);
        var k = Random(ScalarType.Float32, 2, 50, 2, 32);
        var v = Random(ScalarType.Float32, 2, 50, 2, 32);
        var (o1, lse1) = TorchAttention.DenseWithLse(q, k.narrow(1, 0, 21), v.narrow(1, 0, 21), layout: TensorLayout.BSHD);
        var (o2, lse2) = TorchAttention.DenseWithLse(q, k.narrow(1, 21, 29), v.narrow(1, 21, 29), layout: TensorLayout.BSHD);
        var (expected, expectedLse) = TorchAttention.DenseWithLse(q, k, v, layout: TensorLayout.BSHD);
        var merged = torch.empty_like(q);
        var mergedLse = torch.empty_like(lse1);

        TorchAttention.MergeLse(o1, lse1, o2, lse2, merged, mergedLse, TensorLayout.BSHD);

        AssertClose(merged, expected, Float32Tolerance, "merged output");
        AssertClose(mergedLse, expectedLse, Float32Tolerance, "merged LSE");
        AssertClose(merged, Sdpa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2), Float32Tolerance,
            "merged output against torch");
    }

    public static IEnumerable<TestCaseData> NeighborhoodConfigs()
    {
        yield return new TestCaseData(NeighborhoodConfig.Create1D(40, kernel: 7)).SetName("GNA 1-D L=40 k=7");
        yield return new TestCaseData(NeighborhoodConfig.Create1D(40, kernel: 6, dilation: 2, stride: 3))
            .SetName("GNA 1-D L=40 k=6 d=2 s=3");
        yield return new TestCaseData(NeighborhoodConfig.Create1D(30, kernel: 5, stride: 2, causal: true))
            .SetName("GNA 1-D causal L=30 k=5 s=2");
        yield return new TestCaseData(NeighborhoodConfig.Create2D((6, 7), (3, 5), stride: (1, 2)))
            .SetName("GNA 2-D 6x7 k=3x5 s=1x2");
        yield return new TestCaseData(NeighborhoodConfig.Create2D((8, 5), (3, 3), dilation: (2, 1), causal: (true, false)))
            .SetName("GNA 2-D 8x5 k=3x3 d=2x1 causal rows");
        yield return new TestCaseData(NeighborhoodConfig.Create3D((3, 4, 5), (2, 3, 3))).SetName("GNA 3-D 3x4x5 k=2x3x3");
    }

    [TestCaseSource(nameof(NeighborhoodConfigs))]
    public void NeighborhoodMatchesTorchWithExplicitMask(NeighborhoodConfig config)
    {
        var s = config.SequenceLength;
        var q = Random(ScalarType.Float32, 2, 4, s, 32);
        var k = Random(ScalarType.Float32, 2, 2, s, 32);
        var v = Random(ScalarType.Float32, 2, 2, s, 32);
        var mask = NeighborhoodMask(config);
        var output = torch.empty_like(q);
        var lse = torch.empty(2, 4, s);

        TorchAttention.Neighborhood(q, k, v, output, config, lse, layout: TensorLayout.BHSD);

        AssertClose(output, Sdpa(q, k, v, mask), Float32Tolerance, "neighborhood output");
        AssertClose(lse, Lse(q, k, mask), Float32Tolerance, "neighborhood LSE");
    }

    [Test]
    public void NeighborhoodWithExtraKeysMatchesTorchOverBothKeySets()
    {
        var config = NeighborhoodConfig.Create2D((6, 7), (3, 5), stride: (1, 2));
        var s = config.SequenceLength;
        const int extra = 5;
        var q = Random(ScalarType.Float32, 2, 4, s, 32);
        var k = Random(ScalarType.Float32, 2, 2, s, 32);
        var v = Random(ScalarType.Float32, 2, 2, s, 32);
        var ek = Random(ScalarType.Float32, 2, 2, extra, 32);
        var ev = Random(ScalarType.Float32, 2, 2, extra, 32);
        var output = torch.empty_like(q);

        TorchAttention.NeighborhoodWithExtraKeys(q, k, v, ek, ev, output, config);

        // Torch over the window keys and the additional keys at once: the window mask, then every extra key allowed.
        var mask = torch.cat(new[] { NeighborhoodMask(config), torch.ones(s, extra, ScalarType.Bool) }, 1);
        var expected = Sdpa(q, torch.cat(new[] { k, ek }, 2), torch.cat(new[] { v, ev }, 2), mask);
        AssertClose(output, expected, Float32Tolerance, "neighborhood with additional keys");
    }

    [TestCase(200, 64, false, TestName = "Block-sparse S=200 blocks of 64")]
    [TestCase(200, 64, true, TestName = "Block-sparse S=200 blocks of 64, causal")]
    [TestCase(300, 128, true, TestName = "Block-sparse S=300 blocks of 128, causal")]
    public void BlockSparseMatchesTorchWithExplicitMask(int seq, int block, bool causal)
    {
        int batch = 2, heads = 2;
        var q = Random(ScalarType.Float32, batch, seq, heads, 32);
        var k = Random(ScalarType.Float32, batch, seq, heads, 32);
        var v = Random(ScalarType.Float32, batch, seq, heads, 32);
        var mask = BlockMask.Random(seq, block, 0.4, Seed, batch, heads, causal);
        var tokens = TokenMask(mask, batch, heads, seq, seq, causal);

        var actual = TorchAttention.BlockSparse(q, k, v, mask, new AttentionOptions { Causal = causal }, layout: TensorLayout.BSHD);

        var expected = Sdpa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), tokens).transpose(1, 2);
        AssertClose(actual, expected, Float32Tolerance, $"block-sparse, density {mask.Density:F2}");
    }

    [Test]
    public void BlockSparseWithKeyPermutationMatchesTorchOverPermutedKeys()
    {
        int seq = 180, heads = 2;
        var q = Random(ScalarType.Float32, 1, heads, seq, 32);
        var k = Random(ScalarType.Float32, 1, heads, seq, 32);
        var v = Random(ScalarType.Float32, 1, heads, seq, 32);
        var permutation = torch.randperm(seq).to(ScalarType.Int32);
        var perm = permutation.data<int>().ToArray();
        var mask = BlockMask.Random(seq, 64, 0.5, Seed, heads: heads);
        var output = torch.empty_like(q);
        var lse = torch.empty(1, heads, seq);

        TorchAttention.BlockSparse(q, k, v, output, mask, lse, keyPermutation: permutation, layout: TensorLayout.BHSD);

        var index = permutation.to(ScalarType.Int64);
        var kp = k.index_select(2, index);
        var vp = v.index_select(2, index);
        var tokens = TokenMask(mask, 1, heads, seq, seq, causal: false, keyPermutation: perm);
        AssertClose(output, Sdpa(q, kp, vp, tokens), Float32Tolerance, "permuted block-sparse output");
        AssertClose(lse, Lse(q, kp, tokens), Float32Tolerance, "permuted block-sparse LSE");
    }

    [Test]
    public void PermutedBlockSparsePlanAndRunMatchTorchWithThePlansMask()
    {
        int seq = 330, heads = 2, block = 64;
        var q = Random(ScalarType.Float32, 1, heads, seq, 32);
        var k = Random(ScalarType.Float32, 1, 1, seq, 32);
        var v = Random(ScalarType.Float32, 1, 1, seq, 32);

        var plan = TorchAttention.PlanPermutedBlockSparse(q, k, new PbsOptions { Block = block, Segment = 128, Tau = 0.8f },
            TensorLayout.BHSD);
        var actual = TorchAttention.RunPermutedBlockSparse(q, k, v, plan, layout: TensorLayout.BHSD);

        Assert.That(plan.Heads, Is.EqualTo(heads));
        Assert.That(plan.SequenceLength, Is.EqualTo(seq));
        // Allowed pairs in original key order: key perm[j] is visible to query p when its permuted block is listed.
        var allowed = new bool[heads * seq * seq];
        for (var h = 0; h < heads; h++)
        {
            for (var p = 0; p < seq; p++)
            {
                for (var j = 0; j < seq; j++)
                {
                    var t = plan.KeyPermutation[h * seq + j];
                    allowed[(h * seq + p) * seq + t] = t <= p && plan.Mask.IsListed(0, h, p / block, j / block);
                }
            }
        }
        var tokens = torch.tensor(allowed, new long[] { 1, heads, seq, seq });
        AssertClose(actual, Sdpa(q, k, v, tokens), Float32Tolerance, $"PBS, density {plan.Density:F2}");
    }

    [Test]
    public void PermutedBlockSparseWithTauOneIsDenseCausal()
    {
        var q = Random(ScalarType.Float32, 1, 300, 2, 32);
        var k = Random(ScalarType.Float32, 1, 300, 2, 32);
        var v = Random(ScalarType.Float32, 1, 300, 2, 32);
        var plan = TorchAttention.PlanPermutedBlockSparse(q, k, new PbsOptions { Block = 64, Segment = 128, Tau = 1f },
            TensorLayout.BSHD);
        var output = torch.empty_like(q);
        var lse = torch.empty(1, 2, 300);

        TorchAttention.RunPermutedBlockSparse(q, k, v, output, plan, lse, layout: TensorLayout.BSHD);

        var (expected, expectedLse) = TorchAttention.DenseWithLse(q, k, v, new AttentionOptions { Causal = true },
            TensorLayout.BSHD);
        AssertClose(output, expected, Float32Tolerance, "PBS with tau 1");
        AssertClose(lse, expectedLse, Float32Tolerance, "PBS LSE with tau 1");
    }
}
