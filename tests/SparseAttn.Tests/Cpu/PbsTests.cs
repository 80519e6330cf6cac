using SparseAttn.Tests.Oracle;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Cpu;

[TestFixture]
public class PbsTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        // (B, S, Hq, Hkv, D, block, segment, tau)
        yield return new TestCaseData(1, 600, 2, 1, 16, 64, 128, 0.9f);
        yield return new TestCaseData(2, 520, 2, 2, 8, 64, 256, 0.5f);
        yield return new TestCaseData(1, 700, 4, 2, 16, 128, 256, 0.9f);
        yield return new TestCaseData(1, 448, 2, 1, 8, 64, 64, 0.3f);
        yield return new TestCaseData(1, 390, 1, 1, 8, 64, 128, 1.0f);
        yield return new TestCaseData(1, 200, 2, 1, 8, 64, 256, 0.9f);
        yield return new TestCaseData(1, 256, 1, 1, 8, 128, 256, 0.9f);
    }

    private sealed record PlanCase(AttentionCase<float> Case, PbsPlan Plan, PbsReferencePlan Expected, int Block, int Segment);

    private static PlanCase MakePlan(int b, int s, int hq, int hkv, int d, int block, int segment, float tau, string tag)
    {
        var shape = new AttentionShape(b, s, s, hq, hkv, d);
        int seed = TestRandom.SeedFor($"pbs {tag} {shape} {block} {segment} {tau}");
        var c = AttentionCase<float>.Create(shape, seed, amplitude: 2.0, extra: $"block {block} segment {segment} tau {tau}");
        var plan = PermutedBlockSparse.Plan<float>(c.QTensor.ReadOnly, c.KTensor.ReadOnly,
            new PbsOptions { Block = block, Segment = segment, Tau = tau });
        var expected = ReferencePbs.Plan(c.Q, c.K, shape, block, segment, tau, ReferenceAttention.DefaultScale(d));
        return new PlanCase(c, plan, expected, block, segment);
    }

    private static bool AllNearTie(PbsReferencePlan plan, int b, int hq)
    {
        for (int x = 0; x < b; x++)
        for (int h = 0; h < hq; h++)
            if (!plan.NearTie[x, h]) return false;
        return true;
    }

    private static int Perm(PbsPlan plan, int b, int h, int x) =>
        plan.KeyPermutation[(b * plan.Heads + h) * plan.SequenceLength + x];

    [TestCaseSource(nameof(Cases))]
    public void PlanMatchesTheOracle(int b, int s, int hq, int hkv, int d, int block, int segment, float tau)
    {
        // Heads whose order hinges on a near tie are not compared; fresh inputs are drawn until
        // at least one head is decided (ties are common with hundreds of keys per segment).
        PlanCase p = MakePlan(b, s, hq, hkv, d, block, segment, tau, "oracle");
        for (int attempt = 1; attempt < 8 && AllNearTie(p.Expected, b, hq); attempt++)
            p = MakePlan(b, s, hq, hkv, d, block, segment, tau, $"oracle attempt {attempt}");
        var shape = p.Case.Shape;
        Assert.That(p.Plan.KeyPermutation.Length, Is.EqualTo(b * hq * s), p.Case.Context);
        int nBlocks = ReferenceBlockSparse.BlockCount(s, block);
        int compared = 0;
        for (int x = 0; x < b; x++)
        for (int h = 0; h < hq; h++)
        {
            if (p.Expected.NearTie[x, h]) continue;
            compared++;
            for (int t = 0; t < s; t++)
                Assert.That(Perm(p.Plan, x, h, t), Is.EqualTo(p.Expected.KeyPermutation[x, h, t]),
                    $"key permutation at (b {x}, h {h}, position {t}); {p.Case.Context}");
            for (int i = 0; i < nBlocks; i++)
            for (int j = 0; j < nBlocks; j++)
                Assert.That(p.Plan.Mask.IsListed(x, h, i, j), Is.EqualTo(p.Expected.Mask[x, h, i, j]),
                    $"block ({i}, {j}) at (b {x}, h {h}); {p.Case.Context}");
        }
        Assert.That(compared, Is.GreaterThan(0), $"every head had a near tie; {p.Case.Context}");
        _ = shape;
    }

    [TestCaseSource(nameof(Cases))]
    public void PlanInvariants(int b, int s, int hq, int hkv, int d, int block, int segment, float tau)
    {
        var p = MakePlan(b, s, hq, hkv, d, block, segment, tau, "invariants");
        int nBlocks = ReferenceBlockSparse.BlockCount(s, block);
        int fullKeys = s / segment * segment;
        bool oneSegment = (s + segment - 1) / segment <= 1;
        Assert.That(p.Plan.Mask.QueryBlocks, Is.EqualTo(nBlocks));
        for (int x = 0; x < b; x++)
        for (int h = 0; h < hq; h++)
        {
            string where = $"(b {x}, h {h}); {p.Case.Context}";
            var perm = Enumerable.Range(0, s).Select(t => Perm(p.Plan, x, h, t)).ToArray();
            Assert.That(perm.OrderBy(t => t), Is.EqualTo(Enumerable.Range(0, s)), "a permutation " + where);
            for (int t = 0; t < s; t++)
            {
                if (oneSegment || t >= fullKeys) Assert.That(perm[t], Is.EqualTo(t), $"position {t} must not move " + where);
                else Assert.That(perm[t] / segment, Is.EqualTo(t / segment), $"position {t} leaves its segment " + where);
            }
            int sink = Array.IndexOf(perm, 0) / block;
            for (int i = 0; i < nBlocks; i++)
            {
                if (oneSegment)
                {
                    for (int j = 0; j < nBlocks; j++)
                        Assert.That(p.Plan.Mask.IsListed(x, h, i, j), Is.EqualTo(j <= i), $"one segment: block ({i}, {j}) " + where);
                    continue;
                }
                Assert.That(p.Plan.Mask.IsListed(x, h, i, sink), Is.True, $"sink block {sink} for query block {i} " + where);
                int si = i * block / segment;
                bool ownFull = si < s / segment;
                for (int j = 0; j < nBlocks; j++)
                    if (j * block / segment == si && (ownFull || j <= i))
                        Assert.That(p.Plan.Mask.IsListed(x, h, i, j), Is.True, $"own-segment block ({i}, {j}) " + where);
                for (int j = 0; j < nBlocks; j++)
                    if (j * block / segment > si || (j > i && !ownFull))
                        Assert.That(p.Plan.Mask.IsListed(x, h, i, j), Is.False, $"later block ({i}, {j}) " + where);
                if (tau >= 1)
                    for (int j = 0; j < nBlocks; j++)
                        if (j * block / segment < i * block / segment)
                            Assert.That(p.Plan.Mask.IsListed(x, h, i, j), Is.True, $"tau 1 keeps earlier block ({i}, {j}) " + where);
            }
        }
        Assert.That(p.Plan.Density, Is.InRange(0.0, 1.0));
    }

    [TestCaseSource(nameof(Cases))]
    public void RunMatchesTheOracleOverThePlan(int b, int s, int hq, int hkv, int d, int block, int segment, float tau)
    {
        var p = MakePlan(b, s, hq, hkv, d, block, segment, tau, "run");
        var c = p.Case;
        PermutedBlockSparse.Run<float>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, c.Lse.Span, p.Plan);
        var keyPerm = new int[b, hq, s];
        for (int x = 0; x < b; x++) for (int h = 0; h < hq; h++) for (int t = 0; t < s; t++) keyPerm[x, h, t] = Perm(p.Plan, x, h, t);
        var spec = new BlockSparseSpec { BlockQ = block, BlockK = block, Mask = p.Plan.Mask.ToDense(), KeyPermutation = keyPerm, Causal = true };
        c.CheckAgainstOracle(ReferenceBlockSparse.Mask(spec, c.Shape), c.ResolvedScale(0), checkLse: true);
    }

    [TestCase(DataType.Float32, 64)]
    [TestCase(DataType.BFloat16, 64)]
    [TestCase(DataType.Float32, 128)]
    [TestCase(DataType.Float16, 256)]
    public void TauOneEqualsDenseCausal(DataType dt, int segment)
    {
        if (dt == DataType.Float32) DenseCausalCase<float>(1, 530, 2, 1, 16, 64, segment, 1.0f);
        else if (dt == DataType.Float16) DenseCausalCase<Half>(1, 530, 2, 1, 16, 64, segment, 1.0f);
        else DenseCausalCase<BFloat16>(1, 530, 2, 1, 16, 64, segment, 1.0f);
    }

    [TestCase(200, 256)]
    [TestCase(256, 256)]
    [TestCase(100, 128)]
    public void OneSegmentRunsDenseCausal(int s, int segment)
    {
        DenseCausalCase<Half>(2, s, 2, 2, 8, 64, segment, 0.2f);
    }

    private static void DenseCausalCase<T>(int b, int s, int hq, int hkv, int d, int block, int segment, float tau) where T : unmanaged
    {
        var shape = new AttentionShape(b, s, s, hq, hkv, d);
        int seed = TestRandom.SeedFor($"pbs dense {typeof(T).Name} {shape} {segment} {tau}");
        var c = AttentionCase<T>.Create(shape, seed, extra: $"block {block} segment {segment} tau {tau}");
        var plan = PermutedBlockSparse.Plan<T>(c.QTensor.ReadOnly, c.KTensor.ReadOnly,
            new PbsOptions { Block = block, Segment = segment, Tau = tau });
        PermutedBlockSparse.Run<T>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, c.Lse.Span, plan);
        c.CheckAgainstOracle((_, _, i, j) => j <= i, c.ResolvedScale(0), checkLse: true);
    }

    [Test]
    public void HalfPrecisionPlanKeepsTheInvariants()
    {
        var shape = new AttentionShape(1, 512, 512, 2, 1, 16);
        int seed = TestRandom.SeedFor(nameof(HalfPrecisionPlanKeepsTheInvariants));
        var c = AttentionCase<Half>.Create(shape, seed);
        var plan = PermutedBlockSparse.Plan<Half>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, new PbsOptions { Block = 64, Segment = 128 });
        var expected = ReferencePbs.Plan(c.Q, c.K, shape, 64, 128, 0.9, ReferenceAttention.DefaultScale(16));
        for (int h = 0; h < 2; h++)
        {
            if (expected.NearTie[0, h]) continue;
            for (int t = 0; t < 512; t++)
                Assert.That(Perm(plan, 0, h, t), Is.EqualTo(expected.KeyPermutation[0, h, t]), $"head {h} position {t}; {c.Context}");
        }
    }
    [TestCase(1, 600, 2, 1, 16, 64, 128, 0.9f)]
    [TestCase(2, 700, 4, 2, 16, 128, 256, 0.5f)]
    public void PlanWithoutKeyPermutationMatchesTheOracle(int b, int s, int hq, int hkv, int d, int block, int segment, float tau)
    {
        var shape = new AttentionShape(b, s, s, hq, hkv, d);
        int seed = TestRandom.SeedFor($"pbs unpermuted {shape} {block} {segment} {tau}");
        var c = AttentionCase<float>.Create(shape, seed, amplitude: 2.0, extra: $"block {block} segment {segment} tau {tau}, keys unpermuted");
        var plan = PermutedBlockSparse.Plan<float>(c.QTensor.ReadOnly, c.KTensor.ReadOnly,
            new PbsOptions { Block = block, Segment = segment, Tau = tau, PermuteKeys = false });
        var expected = ReferencePbs.Plan(c.Q, c.K, shape, block, segment, tau, ReferenceAttention.DefaultScale(d), permuteKeys: false);
        int nBlocks = ReferenceBlockSparse.BlockCount(s, block);
        int compared = 0;
        for (int x = 0; x < b; x++)
        for (int h = 0; h < hq; h++)
        {
            for (int t = 0; t < s; t++)
                Assert.That(Perm(plan, x, h, t), Is.EqualTo(t), $"identity permutation at (b {x}, h {h}, {t}); {c.Context}");
            for (int i = 0; i < nBlocks; i++)
            for (int j = i + 1; j < nBlocks; j++)
                Assert.That(plan.Mask.IsListed(x, h, i, j), Is.False, $"block ({i}, {j}) past the diagonal; {c.Context}");
            if (expected.NearTie[x, h]) continue;
            compared++;
            for (int i = 0; i < nBlocks; i++)
            for (int j = 0; j < nBlocks; j++)
                Assert.That(plan.Mask.IsListed(x, h, i, j), Is.EqualTo(expected.Mask[x, h, i, j]),
                    $"block ({i}, {j}) at (b {x}, h {h}); {c.Context}");
        }
        Assert.That(compared, Is.GreaterThan(0), $"every head had a near tie; {c.Context}");
        PermutedBlockSparse.Run<float>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, c.Lse.Span, plan);
        var spec = new BlockSparseSpec { BlockQ = block, BlockK = block, Mask = plan.Mask.ToDense(), Causal = true };
        c.CheckAgainstOracle(ReferenceBlockSparse.Mask(spec, c.Shape), c.ResolvedScale(0), checkLse: true);
    }
}
