using SparseAttn.Tests.Oracle;

namespace SparseAttn.Tests.OracleTests;

/// <summary>The oracle checked against results worked out by hand and the brief's worked examples.</summary>
[TestFixture]
public class NeighborhoodWindowExamples
{
    [TestCase(0, 0, 4)] [TestCase(3, 0, 4)] [TestCase(4, 4, 8)] [TestCase(7, 4, 8)]
    [TestCase(8, 8, 12)] [TestCase(11, 8, 12)] [TestCase(12, 9, 13)]
    public void BlockedWindowsShiftAtTheBorder(int query, int start, int end)
    {
        Assert.That(ReferenceNeighborhood.Window(query, 13, 4, 4, false), Is.EqualTo((start, end)));
    }

    [TestCase(4, 2, 5)] [TestCase(5, 2, 6)]
    public void CausalStridedExample(int query, int start, int end)
    {
        Assert.That(ReferenceNeighborhood.Window(query, 10, 4, 2, true), Is.EqualTo((start, end)));
    }

    [Test]
    public void SlidingWindowSeesExactlyKernelKeysEverywhere()
    {
        for (int u = 0; u < 11; u++)
        {
            var (s, e) = ReferenceNeighborhood.Window(u, 11, 5, 1, false);
            Assert.That(e - s, Is.EqualTo(5));
            Assert.That(u, Is.InRange(s, e - 1));
        }
        Assert.That(ReferenceNeighborhood.Window(5, 11, 5, 1, false), Is.EqualTo((3, 8)));
        Assert.That(ReferenceNeighborhood.Window(0, 11, 5, 1, false), Is.EqualTo((0, 5)));
        Assert.That(ReferenceNeighborhood.Window(10, 11, 5, 1, false), Is.EqualTo((6, 11)));
    }

    [Test]
    public void FullKernelNonCausalIsDense()
    {
        var dims = new[] { new NeighborhoodDim(7, 7) };
        Assert.That(ReferenceNeighborhood.PairCount(dims), Is.EqualTo(49));
    }

    [Test]
    public void DilationSplitsTokensIntoGroups()
    {
        // L=10, d=2, k=3: the even tokens 0,2,4,6,8 form a group of 5; token 4 (u=2) sees u 1..3 = tokens 2,4,6.
        var dim = new NeighborhoodDim(10, 3, Dilation: 2);
        var seen = Enumerable.Range(0, 10).Where(t => ReferenceNeighborhood.Allows(dim, 4, t)).ToArray();
        Assert.That(seen, Is.EqualTo(new[] { 2, 4, 6 }));
        // The odd group: 1,3,5,7,9; token 9 (u=4) is at the border: window u 2..4 = tokens 5,7,9.
        seen = Enumerable.Range(0, 10).Where(t => ReferenceNeighborhood.Allows(dim, 9, t)).ToArray();
        Assert.That(seen, Is.EqualTo(new[] { 5, 7, 9 }));
        Assert.That(ReferenceNeighborhood.GroupLength(11, 3, 2), Is.EqualTo(3));
        Assert.That(ReferenceNeighborhood.GroupLength(11, 3, 0), Is.EqualTo(4));
    }

    [Test]
    public void TwoDimensionalMaskIsTheProductOfDims()
    {
        var dims = new[] { new NeighborhoodDim(4, 2), new NeighborhoodDim(5, 3) };
        Assert.That(ReferenceNeighborhood.PairCount(dims), Is.EqualTo(4 * 2 * 5 * 3));
        Assert.That(ReferenceNeighborhood.Coordinates(dims, 7), Is.EqualTo(new[] { 1, 2 }));
    }
}

[TestFixture]
public class DenseOracleHandCases
{
    [Test]
    public void EqualScoresAverageTheValues()
    {
        var shape = new AttentionShape(1, 1, 2, 1, 1, 2);
        double[] q = { 1, 0 };
        double[] k = { 0.5, 3, 0.5, -2 };
        double[] v = { 1, 2, 3, 6 };
        var r = ReferenceAttention.Dense(q, k, v, shape, 1.0, false);
        Assert.That(r.Output, Is.EqualTo(new[] { 2.0, 4.0 }).Within(1e-15));
        Assert.That(r.Lse[0], Is.EqualTo(0.5 + Math.Log(2)).Within(1e-15));
    }

    [Test]
    public void WeightsFollowTheSoftmaxOfScaledScores()
    {
        // Scores 0 and ln 3 (scale 0.5 on dots 0 and 2 ln 3): weights 1/4 and 3/4.
        var shape = new AttentionShape(1, 1, 2, 1, 1, 1);
        double[] q = { 1 };
        double[] k = { 0, 2 * Math.Log(3) };
        double[] v = { 4, 8 };
        var r = ReferenceAttention.Dense(q, k, v, shape, 0.5, false);
        Assert.That(r.Output[0], Is.EqualTo(7.0).Within(1e-14));
        Assert.That(r.Lse[0], Is.EqualTo(Math.Log(4)).Within(1e-14));
    }

    [Test]
    public void CausalIsBottomRightAligned()
    {
        // Sq=2, Sk=4: query 0 sees keys 0..2, query 1 sees keys 0..3.
        Assert.That(ReferenceAttention.CausalAllows(0, 2, 2, 4), Is.True);
        Assert.That(ReferenceAttention.CausalAllows(0, 3, 2, 4), Is.False);
        Assert.That(ReferenceAttention.CausalAllows(1, 3, 2, 4), Is.True);
        // Sq > Sk: query 0 of 4 over 2 keys sees nothing.
        Assert.That(ReferenceAttention.CausalAllows(0, 0, 4, 2), Is.False);
        Assert.That(ReferenceAttention.CausalAllows(2, 0, 4, 2), Is.True);
    }

    [Test]
    public void QueryWithoutKeysGetsZeroAndMinusInfinity()
    {
        var shape = new AttentionShape(1, 3, 1, 1, 1, 2);
        double[] q = { 1, 1, 1, 1, 1, 1 };
        double[] k = { 1, 1 };
        double[] v = { 5, 7 };
        var r = ReferenceAttention.Dense(q, k, v, shape, 1.0, true);
        Assert.That(r.Output, Is.EqualTo(new double[] { 0, 0, 0, 0, 5, 7 }));
        Assert.That(r.Lse[0], Is.EqualTo(double.NegativeInfinity));
        Assert.That(r.Lse[1], Is.EqualTo(double.NegativeInfinity));
        Assert.That(r.Lse[2], Is.EqualTo(2.0));
    }

    [Test]
    public void GroupedQueryHeadsShareTheirKvHead()
    {
        var shape = new AttentionShape(1, 1, 1, 4, 2, 1);
        double[] q = { 1, 1, 1, 1 };
        double[] k = { 1, 1 };
        double[] v = { 10, 20 };
        var r = ReferenceAttention.Dense(q, k, v, shape, 1.0, false);
        Assert.That(r.Output, Is.EqualTo(new double[] { 10, 10, 20, 20 }));
    }

    [Test]
    public void MergeOfTwoHalvesEqualsTheWhole()
    {
        var rng = new Random(7);
        var shape = new AttentionShape(2, 3, 10, 2, 1, 4);
        var q = Support.TestRandom.Uniform(rng, shape.QueryCount);
        var k = Support.TestRandom.Uniform(rng, shape.KeyCount);
        var v = Support.TestRandom.Uniform(rng, shape.KeyCount);
        var whole = ReferenceAttention.Dense(q, k, v, shape, 0.7, false);
        var first = ReferenceAttention.Attend(q, k, v, shape, 0.7, (_, _, _, j) => j < 4);
        var second = ReferenceAttention.Attend(q, k, v, shape, 0.7, (_, _, _, j) => j >= 4);
        var merged = ReferenceAttention.MergeLse(first.Output, first.Lse, second.Output, second.Lse, 2, 3, 2, 4);
        Assert.That(merged.Output, Is.EqualTo(whole.Output).Within(1e-12));
        Assert.That(merged.Lse, Is.EqualTo(whole.Lse).Within(1e-12));
    }

    [Test]
    public void MergeWithAnEmptyPartIsTheIdentity()
    {
        double[] o1 = { 1, 2 }, lse1 = { 0.3 };
        double[] o2 = { 9, 9 }, lse2 = { double.NegativeInfinity };
        var r = ReferenceAttention.MergeLse(o1, lse1, o2, lse2, 1, 1, 1, 2);
        Assert.That(r.Output, Is.EqualTo(o1));
        Assert.That(r.Lse[0], Is.EqualTo(0.3));
        r = ReferenceAttention.MergeLse(o2, lse2, o2, lse2, 1, 1, 1, 2);
        Assert.That(r.Output, Is.EqualTo(new double[] { 0, 0 }));
        Assert.That(r.Lse[0], Is.EqualTo(double.NegativeInfinity));
    }

    [Test]
    public void VarlenIsIndependentDenseCallsPerSequence()
    {
        var rng = new Random(3);
        int[] cuQ = { 0, 2, 2, 5 }, cuK = { 0, 3, 4, 9 };
        const int H = 2, D = 3;
        var q = Support.TestRandom.Uniform(rng, 5 * H * D);
        var k = Support.TestRandom.Uniform(rng, 9 * H * D);
        var v = Support.TestRandom.Uniform(rng, 9 * H * D);
        var r = ReferenceAttention.DenseVarlen(q, k, v, cuQ, cuK, H, H, D, 0.5, true);
        var shape = new AttentionShape(1, 3, 5, H, H, D);
        var third = ReferenceAttention.Dense(q[(2 * H * D)..], k[(4 * H * D)..], v[(4 * H * D)..], shape, 0.5, true);
        Assert.That(r.Output[(2 * H * D)..], Is.EqualTo(third.Output).Within(1e-15));
        Assert.That(r.Lse[1 * 5 + 4], Is.EqualTo(third.Lse[shape.LseIndex(0, 1, 2)]));
    }

    [Test]
    public void ReducedPrecisionEmulationLosesAccuracy()
    {
        var rng = new Random(11);
        var shape = new AttentionShape(1, 4, 64, 1, 1, 32);
        var q = Rounding.RoundAll(Support.TestRandom.Uniform(rng, shape.QueryCount), Precision.Float16);
        var k = Rounding.RoundAll(Support.TestRandom.Uniform(rng, shape.KeyCount), Precision.Float16);
        var v = Rounding.RoundAll(Support.TestRandom.Uniform(rng, shape.KeyCount), Precision.Float16);
        var exact = ReferenceAttention.Dense(q, k, v, shape, 0.2, false);
        var half = ReferenceAttention.Dense(q, k, v, shape, 0.2, false, Precision.Float16);
        double err = exact.Output.Zip(half.Output, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(err, Is.GreaterThan(0).And.LessThan(1e-2));
    }
}

[TestFixture]
public class RoundingOracleCases
{
    [Test]
    public void BFloat16RoundsToNearestEven()
    {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
        Assert.That(Rounding.ToBFloat16(1 + Math.Pow(2, -8)), Is.EqualTo(1.0));
        // 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
        Assert.That(Rounding.ToBFloat16(1 + 3 * Math.Pow(2, -8)), Is.EqualTo(1 + Math.Pow(2, -6)));
        Assert.That(Rounding.ToBFloat16(1 + 1.5 * Math.Pow(2, -8)), Is.EqualTo(1 + Math.Pow(2, -7)));
        Assert.That(Rounding.BFloat16Bits(1f), Is.EqualTo((ushort)0x3F80));
        Assert.That(Rounding.BFloat16Bits(-2f), Is.EqualTo((ushort)0xC000));
        Assert.That(double.IsPositiveInfinity(Rounding.ToBFloat16(float.MaxValue)), Is.True);
        Assert.That(double.IsNaN(Rounding.ToBFloat16(double.NaN)), Is.True);
    }
}
