using SparseAttn.Tests.Oracle;

namespace SparseAttn.Tests.OracleTests;

[TestFixture]
public class PbsOracleHandCases
{
    // S=10, block 2, segment 4: two full segments [0,4) [4,8) and a tail [8,10). D=1, every query 1,
    // so importance follows the key value.
    private static readonly double[] Keys = { 0.1, 0.9, 0.5, 0.2, 0.3, 0.3, 0.8, 0.0, 0.4, 0.6 };
    private static readonly AttentionShape Shape = new(1, 10, 10, 1, 1, 1);
    private static double[] Queries => Enumerable.Repeat(1.0, 10).ToArray();

    private static int[] Row(bool[,,,] mask, int i) =>
        Enumerable.Range(0, mask.GetLength(3)).Where(j => mask[0, 0, i, j]).ToArray();

    [Test]
    public void KeysAreSortedByImportanceWithinFullSegmentsOnly()
    {
        var plan = ReferencePbs.Plan(Queries, Keys, Shape, 2, 4, 1.0, 1.0);
        var perm = Enumerable.Range(0, 10).Select(x => plan.KeyPermutation[0, 0, x]).ToArray();
        Assert.That(perm, Is.EqualTo(new[] { 1, 2, 3, 0, 6, 4, 5, 7, 8, 9 }));
        Assert.That(plan.NearTie[0, 0], Is.True, "keys 4 and 5 tie exactly");
    }

    [Test]
    public void TauOneKeepsEveryEarlierBlockPlusSinkAndOwnSegment()
    {
        var plan = ReferencePbs.Plan(Queries, Keys, Shape, 2, 4, 1.0, 1.0);
        Assert.That(Row(plan.Mask, 0), Is.EqualTo(new[] { 0, 1 }), "token 0 moved to permuted block 1: the sink");
        Assert.That(Row(plan.Mask, 1), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(Row(plan.Mask, 2), Is.EqualTo(new[] { 0, 1, 2, 3 }), "the whole full own segment");
        Assert.That(Row(plan.Mask, 3), Is.EqualTo(new[] { 0, 1, 2, 3 }));
        Assert.That(Row(plan.Mask, 4), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
    }

    [Test]
    public void SmallTauKeepsTheTopBlockOnly()
    {
        // Permuted block means: 0.7, 0.15, 0.55, 0.15: block 0 scores highest.
        var plan = ReferencePbs.Plan(Queries, Keys, Shape, 2, 4, 0.01, 1.0);
        Assert.That(Row(plan.Mask, 2), Is.EqualTo(new[] { 0, 1, 2, 3 }));
        Assert.That(Row(plan.Mask, 3), Is.EqualTo(new[] { 0, 1, 2, 3 }));
        Assert.That(Row(plan.Mask, 4), Is.EqualTo(new[] { 0, 1, 4 }), "tail: only blocks up to the diagonal");
    }

    [Test]
    public void OneSegmentIsIdentityWithEveryCausalBlock()
    {
        var shape = new AttentionShape(1, 7, 7, 1, 1, 1);
        var plan = ReferencePbs.Plan(new double[7], Keys[..7], shape, 2, 8, 0.5, 1.0);
        for (int x = 0; x < 7; x++) Assert.That(plan.KeyPermutation[0, 0, x], Is.EqualTo(x));
        for (int i = 0; i < 4; i++)
            Assert.That(Row(plan.Mask, i), Is.EqualTo(Enumerable.Range(0, i + 1).ToArray()));
    }
}
