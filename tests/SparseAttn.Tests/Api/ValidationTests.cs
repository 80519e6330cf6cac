using System.Numerics.Tensors;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Api;

/// <summary>One test per validation rule: the exception type, and that the message names the argument.</summary>
[TestFixture]
public class ValidationTests
{
    private static HostTensor<float> T(params nint[] lengths) => HostTensor<float>.FromLogical(
        Enumerable.Range(0, (int)lengths.Aggregate((nint)1, (a, b) => a * b)).Select(i => Math.Sin(i + 1)).ToArray(), lengths);

    // A valid dense call: q [2, 5, 4, 8], k/v [2, 7, 2, 8].
    private HostTensor<float> q = null!, k = null!, v = null!, o = null!, lse = null!;

    [SetUp]
    public void Valid()
    {
        q = T(2, 5, 4, 8);
        k = T(2, 7, 2, 8);
        v = T(2, 7, 2, 8);
        o = HostTensor<float>.Create(new nint[] { 2, 5, 4, 8 });
        lse = HostTensor<float>.Create(new nint[] { 2, 4, 5 });
    }

    private static TEx Rejects<TEx>(Action call, string argument) where TEx : ArgumentException
    {
        var ex = Assert.Throws<TEx>(call)!;
        Assert.That(ex.ParamName, Is.EqualTo(argument), ex.Message);
        Assert.That(ex.Message, Does.Contain(argument));
        return ex;
    }

    private void Dense(HostTensor<float>? q2 = null, HostTensor<float>? k2 = null, HostTensor<float>? v2 = null,
        HostTensor<float>? o2 = null, HostTensor<float>? lse2 = null, AttentionOptions? options = null) =>
        Attention.Dense<float>((q2 ?? q).ReadOnly, (k2 ?? k).ReadOnly, (v2 ?? v).ReadOnly, (o2 ?? o).Span, (lse2 ?? lse).Span, options);

    [Test]
    public void ValidCallSucceeds() => Assert.DoesNotThrow(() => Dense());

    [Test]
    public void UnsupportedElementType()
    {
        var d = new double[16];
        Rejects<ArgumentException>(() => Attention.Dense<double>(new ReadOnlyTensorSpan<double>(d, new nint[] { 1, 2, 1, 8 }),
            new ReadOnlyTensorSpan<double>(d, new nint[] { 1, 2, 1, 8 }), new ReadOnlyTensorSpan<double>(d, new nint[] { 1, 2, 1, 8 }),
            new TensorSpan<double>(new double[16], new nint[] { 1, 2, 1, 8 })), "T");
    }

    [Test] public void QueryRank() => Rejects<ArgumentException>(() => Dense(q2: T(2, 5, 32)), "q");
    [Test] public void KeyRank() => Rejects<ArgumentException>(() => Dense(k2: T(2, 7, 2, 8, 1)), "k");
    [Test] public void OutputRank() => Rejects<ArgumentException>(() => Dense(o2: T(10, 4, 8)), "output");

    [Test]
    public void InnermostStrideMustBeOne()
    {
        var data = new float[2 * 5 * 4 * 16];
        var strided = new ReadOnlyTensorSpan<float>(data, new nint[] { 2, 5, 4, 8 }, new nint[] { 320, 64, 16, 2 });
        Rejects<ArgumentException>(() => Attention.Dense<float>(
            new ReadOnlyTensorSpan<float>(data, new nint[] { 2, 5, 4, 8 }, new nint[] { 320, 64, 16, 2 }),
            k.ReadOnly, v.ReadOnly, o.Span), "q");
        Assert.That((int)strided.Strides[3], Is.EqualTo(2));
    }

    [Test] public void KeyBatchMustMatch() => Rejects<ArgumentException>(() => Dense(k2: T(1, 7, 2, 8), v2: T(1, 7, 2, 8)), "k");
    [Test] public void KeyHeadDimMustMatch() => Rejects<ArgumentException>(() => Dense(k2: T(2, 7, 2, 4), v2: T(2, 7, 2, 4)), "k");
    [Test] public void ValueShapeMustMatchKey() => Rejects<ArgumentException>(() => Dense(v2: T(2, 6, 2, 8)), "v");
    [Test] public void QueryHeadsMustBeAMultipleOfKvHeads() => Rejects<ArgumentException>(() => Dense(k2: T(2, 7, 3, 8), v2: T(2, 7, 3, 8)), "k");
    [Test] public void OutputShapeMustMatchQuery() => Rejects<ArgumentException>(() => Dense(o2: HostTensor<float>.Create(new nint[] { 2, 5, 4, 7 })), "output");
    [Test] public void LseShape() => Rejects<ArgumentException>(() => Dense(lse2: HostTensor<float>.Create(new nint[] { 2, 5, 4 })), "lse");
    [Test] public void LseRank() => Rejects<ArgumentException>(() => Dense(lse2: HostTensor<float>.Create(new nint[] { 8, 5 })), "lse");

    [Test]
    public void CpuHeadDimLimit()
    {
        var big = T(1, 2, 1, 513);
        Rejects<ArgumentOutOfRangeException>(() => Attention.Dense<float>(big.ReadOnly, big.ReadOnly, big.ReadOnly,
            HostTensor<float>.Create(new nint[] { 1, 2, 1, 513 }).Span), "q");
    }

    [TestCase(0f)]
    [TestCase(-1f)]
    [TestCase(float.NaN)]
    [TestCase(float.PositiveInfinity)]
    public void ScaleMustBeNullOrPositiveFinite(float scale) =>
        Rejects<ArgumentOutOfRangeException>(() => Dense(options: new AttentionOptions { Scale = scale }), "options");

    [Test] public void NumSplitsNotNegative() => Rejects<ArgumentOutOfRangeException>(() => Dense(options: new AttentionOptions { NumSplits = -1 }), "options");
    [Test] public void NumThreadsNotNegative() => Rejects<ArgumentOutOfRangeException>(() => Dense(options: new AttentionOptions { NumThreads = -2 }), "options");
    [Test] public void KernelChoiceDefined() => Rejects<ArgumentOutOfRangeException>(() => Dense(options: new AttentionOptions { Kernel = (KernelChoice)7 }), "options");
    [Test] public void CausalAlignmentDefined() => Rejects<ArgumentOutOfRangeException>(() => Dense(options: new AttentionOptions { Causal = true, CausalAlignment = (CausalAlignment)2 }), "options");

    [TestCase(KernelChoice.Auto)]
    [TestCase(KernelChoice.Reference)]
    [TestCase(KernelChoice.Portable)]
    public void EveryKernelChoiceIsAccepted(KernelChoice kernel) =>
        Assert.DoesNotThrow(() => Dense(options: new AttentionOptions { Kernel = kernel }));

    [Test]
    public void OutputMayNotOverlapAnInput()
    {
        // Native rule: the output aliases q's memory.
        var ex = Assert.Throws<ArgumentException>(() => Attention.Dense<float>(q.ReadOnly, k.ReadOnly, v.ReadOnly, q.Span))!;
        Assert.That(ex.Message, Does.Contain("overlaps").And.Contain("q"));
        Assert.That(ex.ParamName, Is.EqualTo("output"), ex.Message);
        Assert.That(ex.Message, Does.StartWith("output: memory overlaps q"));
    }

    // ----- overlap of index inputs with outputs (native rule, C# names) -----

    // An int view of the last `count` floats of `data`: an index input that lives inside an output.
    private static Span<int> IntsAtEnd(float[] data, int count) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(data.AsSpan(data.Length - count));

    private static void AssertOverlap(Action call, string written, string read)
    {
        var ex = Assert.Throws<ArgumentException>(call)!;
        Assert.That(ex.ParamName, Is.EqualTo(written), ex.Message);
        Assert.That(ex.Message, Does.StartWith($"{written}: memory overlaps {read}"));
        Assert.That(ex.Message, Does.Not.Contain("params->").And.Not.Contain("out:").And.Not.Contain("_"));
    }

    [Test]
    public void KeyPermutationInsideOutputIsRejected()
    {
        var output = new float[1 * 100 * 2 * 8];
        var perm = IntsAtEnd(output, 130);
        for (var i = 0; i < 130; i++) perm[i] = 129 - i;
        AssertOverlap(() => Attention.BlockSparse<float>(Bq.ReadOnly, Bk.ReadOnly, Bk.ReadOnly,
            new TensorSpan<float>(output, new nint[] { 1, 100, 2, 8 }), Full(), null, IntsAtEnd(output, 130)), "output", "keyPermutation");
    }

    [Test]
    public void QueryPermutationInLastRowsOfOutputIsRejected()
    {
        var output = new float[1 * 100 * 2 * 8];
        var perm = IntsAtEnd(output, 100);
        for (var i = 0; i < 100; i++) perm[i] = (i * 7) % 100;
        AssertOverlap(() => Attention.BlockSparse<float>(Bq.ReadOnly, Bk.ReadOnly, Bk.ReadOnly,
            new TensorSpan<float>(output, new nint[] { 1, 100, 2, 8 }), Full(), null, default, IntsAtEnd(output, 100)),
            "output", "queryPermutation");
    }

    [Test]
    public void KeyPermutationInsideLseIsRejected()
    {
        var lseData = new float[2 * 100];
        var perm = IntsAtEnd(lseData, 130);
        for (var i = 0; i < 130; i++) perm[i] = i;
        AssertOverlap(() => Attention.BlockSparse<float>(Bq.ReadOnly, Bk.ReadOnly, Bk.ReadOnly,
            HostTensor<float>.Create(new nint[] { 1, 100, 2, 8 }).Span, new TensorSpan<float>(lseData, new nint[] { 1, 2, 100 }),
            Full(), null, IntsAtEnd(lseData, 130)), "lse", "keyPermutation");
    }

    [Test]
    public void CuSeqlensAtStartOfOutputIsRejected()
    {
        var output = new float[6 * 2 * 8];
        var cu = System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(output.AsSpan(0, 3));
        cu[0] = 0;
        cu[1] = 2;
        cu[2] = 6;
        AssertOverlap(() => Attention.DenseVarlen<float>(T(6, 2, 8).ReadOnly, T(9, 2, 8).ReadOnly, T(9, 2, 8).ReadOnly,
            new TensorSpan<float>(output, new nint[] { 6, 2, 8 }),
            System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(output.AsSpan(0, 3)), new[] { 0, 4, 9 }, 8, 8),
            "output", "cuSeqlensQ");
    }

    [Test]
    public void MergeOutputOverlapNamesCSharpParameters()
    {
        var o1 = T(1, 3, 2, 4);
        var l1 = T(1, 2, 3);
        var o2 = T(1, 3, 2, 4);
        var l2 = T(1, 2, 3);
        AssertOverlap(() => Attention.MergeLse<float>(o1.ReadOnly, l1.ReadOnly, o2.ReadOnly, l2.ReadOnly,
            HostTensor<float>.Create(new nint[] { 1, 3, 2, 4 }).Span, l2.Span), "lseOut", "lse2");
    }

    [Test]
    public void OutputMayNotBroadcast()
    {
        // A stride of 0 over H would write four heads to one place.
        var data = new float[200];
        Rejects<ArgumentException>(() => Attention.Dense<float>(q.ReadOnly, k.ReadOnly, v.ReadOnly,
            new TensorSpan<float>(data, new nint[] { 2, 5, 4, 8 }, new nint[] { 40, 8, 0, 1 })), "output");
    }

    // ----- varlen -----

    private static void Varlen(int[] cuQ, int[] cuK, int maxQ = 8, int maxK = 8, HostTensor<float>? lse = null)
    {
        var vq = T(6, 2, 8);
        var vk = T(9, 2, 8);
        var vo = HostTensor<float>.Create(new nint[] { 6, 2, 8 });
        if (lse is null)
            Attention.DenseVarlen<float>(vq.ReadOnly, vk.ReadOnly, vk.ReadOnly, vo.Span, cuQ, cuK, maxQ, maxK);
        else
            Attention.DenseVarlen<float>(vq.ReadOnly, vk.ReadOnly, vk.ReadOnly, vo.Span, lse.Span, cuQ, cuK, maxQ, maxK);
    }

    [Test] public void VarlenValidCallSucceeds() => Assert.DoesNotThrow(() => Varlen(new[] { 0, 2, 6 }, new[] { 0, 4, 9 }));
    [Test] public void VarlenFirstEntryZero() => Rejects<ArgumentException>(() => Varlen(new[] { 1, 2, 6 }, new[] { 0, 4, 9 }), "cuSeqlensQ");
    [Test] public void VarlenLastEntryIsTheTotal() => Rejects<ArgumentException>(() => Varlen(new[] { 0, 2, 6 }, new[] { 0, 4, 8 }), "cuSeqlensK");
    [Test] public void VarlenNonDecreasing() => Rejects<ArgumentException>(() => Varlen(new[] { 0, 4, 3, 6 }, new[] { 0, 4, 5, 9 }), "cuSeqlensQ");
    [Test] public void VarlenSameBatch() => Rejects<ArgumentException>(() => Varlen(new[] { 0, 2, 6 }, new[] { 0, 9 }), "cuSeqlensK");
    [Test] public void VarlenAtLeastOneSequence() => Rejects<ArgumentException>(() => Varlen(new[] { 0 }, new[] { 0 }), "cuSeqlensQ");
    [Test] public void VarlenMaxBoundsEverySequence() => Rejects<ArgumentOutOfRangeException>(() => Varlen(new[] { 0, 2, 6 }, new[] { 0, 4, 9 }, maxQ: 3), "maxSeqlenQ");
    [Test] public void VarlenLseShape() => Rejects<ArgumentException>(() => Varlen(new[] { 0, 2, 6 }, new[] { 0, 4, 9 }, lse: HostTensor<float>.Create(new nint[] { 6, 2 })), "lse");
    [Test] public void VarlenRank() => Rejects<ArgumentException>(() => Attention.DenseVarlen<float>(T(1, 6, 2, 8).ReadOnly, T(9, 2, 8).ReadOnly,
        T(9, 2, 8).ReadOnly, HostTensor<float>.Create(new nint[] { 6, 2, 8 }).Span, new[] { 0, 6 }, new[] { 0, 9 }, 6, 9), "q");

    // ----- merge -----

    [Test]
    public void MergeShapesMustAgree()
    {
        var o1 = T(1, 3, 2, 4);
        var l1 = T(1, 2, 3);
        Rejects<ArgumentException>(() => Attention.MergeLse<float>(o1.ReadOnly, l1.ReadOnly, T(1, 3, 2, 5).ReadOnly, l1.ReadOnly,
            HostTensor<float>.Create(new nint[] { 1, 3, 2, 4 }).Span), "o2");
        Rejects<ArgumentException>(() => Attention.MergeLse<float>(o1.ReadOnly, T(1, 3, 2).ReadOnly, o1.ReadOnly, l1.ReadOnly,
            HostTensor<float>.Create(new nint[] { 1, 3, 2, 4 }).Span), "lse1");
        Rejects<ArgumentException>(() => Attention.MergeLse<float>(o1.ReadOnly, l1.ReadOnly, o1.ReadOnly, l1.ReadOnly,
            HostTensor<float>.Create(new nint[] { 1, 3, 2, 4 }).Span, HostTensor<float>.Create(new nint[] { 1, 2, 4 }).Span), "lseOut");
    }

    // ----- neighborhood -----

    private void Gna(NeighborhoodConfig config, AttentionOptions? options = null) =>
        Attention.Neighborhood<float>(q.ReadOnly, T(2, 5, 2, 8).ReadOnly, T(2, 5, 2, 8).ReadOnly, o.Span, config, options);

    [Test] public void NeighborhoodValidCallSucceeds() => Assert.DoesNotThrow(() => Gna(NeighborhoodConfig.Create1D(5, 3)));
    [Test] public void NeighborhoodCausalOptionRejected() => Rejects<ArgumentException>(() => Gna(NeighborhoodConfig.Create1D(5, 3), new AttentionOptions { Causal = true }), "options");
    [Test] public void NeighborhoodGridMustMatchSequence() => Rejects<ArgumentException>(() => Gna(NeighborhoodConfig.Create1D(6, 3)), "config");
    [Test] public void NeighborhoodConfigNotNull() => Rejects<ArgumentNullException>(() => Gna(null!), "config");
    [Test] public void NeighborhoodKernelTimesDilationFits() => Rejects<ArgumentOutOfRangeException>(() => NeighborhoodConfig.Create1D(10, 4, dilation: 3), "kernel");
    [Test] public void NeighborhoodKernelAtLeastOne() => Rejects<ArgumentOutOfRangeException>(() => NeighborhoodConfig.Create1D(10, 0), "kernel");
    [Test] public void NeighborhoodStrideAtMostKernel() => Rejects<ArgumentOutOfRangeException>(() => NeighborhoodConfig.Create2D((8, 8), (3, 3), stride: (1, 4)), "stride");
    [Test] public void NeighborhoodStrideAtLeastOne() => Rejects<ArgumentOutOfRangeException>(() => NeighborhoodConfig.Create1D(8, 3, stride: 0), "stride");
    [Test] public void NeighborhoodDilationAtLeastOne() => Rejects<ArgumentOutOfRangeException>(() => NeighborhoodConfig.Create3D((4, 4, 4), (2, 2, 2), dilation: (1, 0, 1)), "dilation");
    [Test] public void NeighborhoodGridAtLeastOne() => Rejects<ArgumentOutOfRangeException>(() => NeighborhoodConfig.Create1D(0, 1), "grid");
    [Test] public void NeighborhoodRankAtMostThree() => Rejects<ArgumentException>(() => NeighborhoodConfig.Create(new[] { 2, 2, 2, 2 }, new[] { 1, 1, 1, 1 }), "grid");
    [Test] public void NeighborhoodEntriesPerDimension() => Rejects<ArgumentException>(() => NeighborhoodConfig.Create(new[] { 4, 4 }, new[] { 2, 2 }, dilation: new[] { 1 }), "dilation");

    [Test]
    public void WindowRuleArgumentsChecked()
    {
        // Native rules of sa_neighborhood_window, reached through the public helper.
        Assert.That(Assert.Throws<ArgumentException>(() => NeighborhoodConfig.WindowRule(5, 5, 3, 1, false))!.Message, Does.Contain("u"));
        Assert.That(Assert.Throws<ArgumentException>(() => NeighborhoodConfig.WindowRule(0, 5, 6, 1, false))!.Message, Does.Contain("kernel"));
        Assert.That(Assert.Throws<ArgumentException>(() => NeighborhoodConfig.WindowRule(0, 5, 3, 4, false))!.Message, Does.Contain("stride"));
        Assert.That(Assert.Throws<ArgumentException>(() => NeighborhoodConfig.WindowRule(0, 0, 1, 1, false))!.Message, Does.Contain("group_length"));
    }

    // ----- block-sparse -----

    private static readonly HostTensor<float> Bq = T(1, 100, 2, 8), Bk = T(1, 130, 1, 8);

    private static void Bsa(BlockMask mask, int[]? keyPerm = null, int[]? queryPerm = null) =>
        Attention.BlockSparse<float>(Bq.ReadOnly, Bk.ReadOnly, Bk.ReadOnly, HostTensor<float>.Create(new nint[] { 1, 100, 2, 8 }).Span,
            mask, null, keyPerm ?? Array.Empty<int>(), queryPerm ?? Array.Empty<int>());

    private static BlockMask Full(int nq = 2, int nk = 3, int bq = 64, int bk = 64, int batch = 1, int heads = 1)
    {
        var dense = new bool[batch, heads, nq, nk];
        for (int b = 0; b < batch; b++) for (int h = 0; h < heads; h++) for (int i = 0; i < nq; i++) for (int j = 0; j < nk; j++) dense[b, h, i, j] = true;
        return BlockMask.FromDense(dense, bq, bk);
    }

    [Test] public void BlockSparseValidCallSucceeds() => Assert.DoesNotThrow(() => Bsa(Full(), Enumerable.Range(0, 130).Reverse().ToArray()));
    [Test] public void BlockSparseBlockSize() => Rejects<ArgumentException>(() => Bsa(Full(4, 5, 32, 32)), "mask");
    [Test] public void BlockSparseBlockCountsFitTheSequences() => Rejects<ArgumentException>(() => Bsa(Full(2, 2)), "mask");
    [Test] public void BlockSparseMaskBatch() => Rejects<ArgumentException>(() => Bsa(Full(batch: 2)), "mask");
    [Test] public void BlockSparseMaskHeads() => Rejects<ArgumentException>(() => Bsa(Full(heads: 3)), "mask");
    [Test] public void BlockSparseMaskNotNull() => Rejects<ArgumentNullException>(() => Bsa(null!), "mask");
    [Test] public void KeyPermutationLength() => Rejects<ArgumentException>(() => Bsa(Full(), Enumerable.Range(0, 129).ToArray()), "keyPermutation");

    [Test]
    public void KeyPermutationMustBeAPermutation()
    {
        var repeated = Enumerable.Range(0, 130).ToArray();
        repeated[7] = 8;
        Rejects<ArgumentException>(() => Bsa(Full(), repeated), "keyPermutation");
        var outOfRange = Enumerable.Range(0, 130).ToArray();
        outOfRange[0] = 130;
        Rejects<ArgumentException>(() => Bsa(Full(), outOfRange), "keyPermutation");
    }

    [Test]
    public void QueryPermutationMustBeAPermutation()
    {
        var perm = Enumerable.Range(0, 100).ToArray();
        perm[99] = -1;
        Rejects<ArgumentException>(() => Bsa(Full(), null, perm), "queryPermutation");
    }

    [Test] public void FromListsIndexInRange() => Rejects<ArgumentOutOfRangeException>(() => BlockMask.FromLists(1, 1, 2, 3, 64, 64, new[] { 1, 1 }, new[] { 0, -1, -1, 3, -1, -1 }), "indices");
    [Test] public void FromListsCountInRange() => Rejects<ArgumentOutOfRangeException>(() => BlockMask.FromLists(1, 1, 2, 3, 64, 64, new[] { 4, 1 }, new[] { 0, 1, 2, 0, 1, 2 }), "counts");
    [Test] public void FromListsNoRepeats() => Rejects<ArgumentException>(() => BlockMask.FromLists(1, 1, 1, 3, 64, 64, new[] { 2 }, new[] { 1, 1, -1 }), "indices");

    [Test]
    public void FromListsNoBlockInBothLists() =>
        Assert.Throws<ArgumentException>(() => BlockMask.FromLists(1, 1, 1, 3, 64, 64, new[] { 1 }, new[] { 2, -1, -1 },
            new[] { 1 }, new[] { 2, -1, -1 }));

    [Test] public void FromListsFullListsTogether() => Rejects<ArgumentException>(() => BlockMask.FromLists(1, 1, 1, 3, 64, 64, new[] { 1 }, new[] { 2, -1, -1 }, new[] { 0 }, null), "fullIndices");
    [Test] public void FromDenseSize() => Rejects<ArgumentException>(() => BlockMask.FromDense(new bool[5], 1, 1, 2, 3), "mask");
    [Test] public void RandomDensityInRange() => Rejects<ArgumentOutOfRangeException>(() => BlockMask.Random(256, 64, 1.5, 1), "density");
    [Test] public void SlidingWindowAtLeastOne() => Rejects<ArgumentOutOfRangeException>(() => BlockMask.SlidingWindow(256, 0), "window");
    [Test] public void PairCountSequencesFitTheMask() => Rejects<ArgumentException>(() => Full().PairCount(300, 130, false), "seqQ");

    // ----- PBS -----

    private static readonly HostTensor<float> Pq = T(1, 300, 2, 8), Pk = T(1, 300, 1, 8);

    private static void Plan(PbsOptions options, HostTensor<float>? k2 = null) =>
        PermutedBlockSparse.Plan<float>(Pq.ReadOnly, (k2 ?? Pk).ReadOnly, options);

    [Test] public void PbsValidPlanSucceeds() => Assert.DoesNotThrow(() => Plan(new PbsOptions { Block = 64, Segment = 128 }));
    [Test] public void PbsBlockSize() => Rejects<ArgumentOutOfRangeException>(() => Plan(new PbsOptions { Block = 32 }), "options");
    [Test] public void PbsSegmentIsAMultipleOfBlock() => Rejects<ArgumentOutOfRangeException>(() => Plan(new PbsOptions { Block = 64, Segment = 96 }), "options");
    [TestCase(0f)]
    [TestCase(1.5f)]
    [TestCase(float.NaN)]
    public void PbsTauInRange(float tau) => Rejects<ArgumentOutOfRangeException>(() => Plan(new PbsOptions { Tau = tau }), "options");
    [Test] public void PbsScale() => Rejects<ArgumentOutOfRangeException>(() => Plan(new PbsOptions { Scale = -1 }), "options");
    [Test] public void PbsSelfAttentionOnly() => Rejects<ArgumentException>(() => Plan(new PbsOptions(), T(1, 299, 1, 8)), "k");

    [Test]
    public void PbsPlanMustFitTheCall()
    {
        var plan = PermutedBlockSparse.Plan<float>(Pq.ReadOnly, Pk.ReadOnly, new PbsOptions { Block = 64, Segment = 128 });
        var q2 = T(1, 200, 2, 8);
        var k2 = T(1, 200, 1, 8);
        var ex = Assert.Catch<ArgumentException>(() => PermutedBlockSparse.Run<float>(q2.ReadOnly, k2.ReadOnly, k2.ReadOnly,
            HostTensor<float>.Create(new nint[] { 1, 200, 2, 8 }).Span, plan))!;
        Assert.That(ex.Message, Does.Contain("plan"));
    }

    // ----- backends -----

    [Test]
    public void CudaCallsWithoutTheCudaBackendAreNotSupported()
    {
        if (SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cuda))
        {
            // Built with CUDA: an ordinal past the last device (there may be none) is an argument error.
            int past = SparseAttnLibrary.CudaDeviceCount;
            Rejects<ArgumentException>(() => SparseAttnLibrary.GetCudaDeviceInfo(past), "device");
            Rejects<ArgumentException>(() => CudaTensor<Half>.Allocate(past, 4, 4), "device");
            return;
        }
        Assert.That(SparseAttnLibrary.CudaDeviceCount, Is.EqualTo(0));
        Assert.Throws<NotSupportedException>(() => CudaTensor<Half>.Allocate(0, 4, 4));
        Assert.Throws<NotSupportedException>(() => SparseAttnLibrary.GetCudaDeviceInfo(0));
        Assert.Throws<NotSupportedException>(() => CudaStream.Create(0));
    }

    [TestCase(17 * 241 + 2)]
    [TestCase(17 * 241 - 1)]
    public void FromHostTakesExactlyTheElementsTheLengthsNeed(int elements)
    {
        // Checked before any device call, so this holds with or without a CUDA device.
        var ex = Rejects<ArgumentException>(() => CudaTensor<Half>.FromHost(new Half[elements], new nint[] { 17, 241, 1 }), "data");
        Assert.That(ex.Message, Does.Contain($"data has {elements} elements but lengths [17, 241, 1] need {17 * 241}."));
    }

    [Test]
    public void SliceOffsetCannotWrap()
    {
        // start + length would wrap past nint.MaxValue to a negative end and slip through an added check.
        var view = new CudaTensorView<Half>(4096, 0, new nint[] { 2, 8 });
        Rejects<ArgumentOutOfRangeException>(() => view.Slice(0, 1, nint.MaxValue), "start");
        Rejects<ArgumentOutOfRangeException>(() => view.Slice(0, nint.MaxValue, 1), "start");
        Rejects<ArgumentOutOfRangeException>(() => view.Slice(0, 3, 0), "start");
        Assert.That(view.Slice(0, 1, 1).Lengths[0], Is.EqualTo((nint)1));
        Assert.That(view.Slice(0, 2, 0).DataPointer, Is.EqualTo((nint)(4096 + 2 * 8 * 2)));
    }

    [Test]
    public void SliceOffsetPastTheAddressSpace()
    {
        var view = new CudaTensorView<Half>(4096, 0, new nint[] { 3 }, new nint[] { nint.MaxValue / 2 });
        Rejects<ArgumentOutOfRangeException>(() => view.Slice(0, 2, 1), "start");
    }

    [Test]
    public void NeighborhoodGridProductPastIntIsRejected()
    {
        // 2^21 cubed is 2^63: a long product wraps to a negative count.
        var ex = Rejects<ArgumentOutOfRangeException>(() => NeighborhoodConfig.Create3D((1 << 21, 1 << 21, 1 << 21), (1, 1, 1)), "grid");
        Assert.That(ex.Message, Does.Contain("more than 2147483647 tokens"));
        Rejects<ArgumentOutOfRangeException>(() => NeighborhoodConfig.Create3D((65536, 65536, 2), (1, 1, 1)), "grid");
        Assert.That(NeighborhoodConfig.Create3D((1024, 1024, 2047), (1, 1, 1)).SequenceLength, Is.EqualTo(1024 * 1024 * 2047));
    }

    [Test]
    public void FromListsWithHugeDimsIsRejected()
    {
        // 65536^4 = 2^64 wraps a long product to 0 and the row count to 0 (a division by zero).
        var ex = Rejects<ArgumentException>(() => BlockMask.FromLists(65536, 65536, 65536, 65536, 64, 64, new[] { 0 }, new[] { 0 }),
            "keyBlocks");
        Assert.That(ex.Message, Does.Contain("too many for one array"));
        Rejects<ArgumentException>(() => BlockMask.FromLists(65536, 65536, 1, 1, 64, 64, new[] { 0 }, new[] { 0 }), "keyBlocks");
    }

    [Test]
    public void CausalWithIntMaxLengthsIsRejectedByName()
    {
        // ceil(int.MaxValue / 128) is 16777216 blocks; adding before dividing gave a negative count.
        var ex = Rejects<ArgumentException>(() => BlockMask.Causal(int.MaxValue, int.MaxValue), "seqK");
        Assert.That(ex.Message, Does.Contain("[1, 1, 16777216, 16777216]"));
        Rejects<ArgumentException>(() => BlockMask.SlidingWindow(int.MaxValue, 5, 64), "seq");
        Rejects<ArgumentException>(() => BlockMask.Random(int.MaxValue, 64, 0.5, 1, batch: 65536, heads: 65536), "seq");
        var edge = BlockMask.Causal(int.MaxValue, 128, blockQ: int.MaxValue, blockK: 128);
        Assert.That(edge.QueryBlocks, Is.EqualTo(1));
    }

    [Test]
    public void MaskListsAreReadOnlyAfterValidation()
    {
        var counts = new[] { 1, 1 };
        var indices = new[] { 0, -1, -1, 2, -1, -1 };
        var mask = BlockMask.FromLists(1, 1, 2, 3, 64, 64, counts, indices);
        // The caller's arrays are copied: changing them later does not reach the validated mask.
        counts[0] = 3;
        indices[0] = 99;
        Assert.That(mask.Counts.ToArray(), Is.EqualTo(new[] { 1, 1 }));
        Assert.That(mask.Indices[0], Is.EqualTo(0));
        // The lists are exposed as read-only spans only (no writable array reaches callers).
        foreach (var name in new[] { nameof(BlockMask.Counts), nameof(BlockMask.Indices), nameof(BlockMask.FullCounts),
                     nameof(BlockMask.FullIndices) })
        {
            Assert.That(typeof(BlockMask).GetProperty(name)!.PropertyType, Is.EqualTo(typeof(ReadOnlySpan<int>)), name);
        }
        Assert.That(mask.HasFullLists, Is.False);
        Assert.That(mask.FullCounts.IsEmpty, Is.True);
    }

    [Test]
    public void FloatIsNotACudaElementType()
    {
        var view = new CudaTensorView<float>(16, 0, new nint[] { 1, 2, 1, 8 });
        Rejects<ArgumentException>(() => Attention.Dense<float>(view, view, view, view), "T");
    }

    [Test]
    public void LibraryReportsItsVersionAndCpuBackend()
    {
        Assert.That(SparseAttnLibrary.Version, Does.StartWith("0."));
        Assert.That(SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cpu), Is.True);
        Assert.That(SparseAttnLibrary.CudaDeviceCount, Is.GreaterThanOrEqualTo(0));
    }

    [Test]
    public void LibraryReportsTheCpuInstructionSet()
    {
        var isa = SparseAttnLibrary.CpuInstructionSet;
        Assert.That(isa, Is.AnyOf("baseline", "avx2", "avx512"));
        Assert.That(SparseAttnLibrary.CpuInstructionSet, Is.EqualTo(isa), "chosen once per process");
        string[] levels = ["baseline", "avx2", "avx512"];
        var forced = Environment.GetEnvironmentVariable("SPARSEATTN_CPU_ISA");
        if (forced is not null && Array.IndexOf(levels, forced) >= 0)
        {
            Assert.That(Array.IndexOf(levels, isa), Is.LessThanOrEqualTo(Array.IndexOf(levels, forced)));
        }
    }
}
