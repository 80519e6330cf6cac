using System.Numerics.Tensors;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Api;

/// <summary>
/// The overloads that allocate their output (Tensor&lt;T&gt; and arrays with shapes) give exactly what the span
/// overloads write into a caller's buffer; PbsPlan's read-only views and densities.
/// </summary>
[TestFixture]
public class AllocatingOverloadTests
{
    private static float[] Random(int seed, int count) =>
        TestRandom.Uniform(new Random(seed), count).Select(x => (float)x).ToArray();

    private static Tensor<float> RandomTensor(int seed, params nint[] shape) =>
        Tensor.Create(Random(seed, (int)shape.Aggregate((nint)1, (a, b) => a * b)), shape);

    private static float[] Flat(Tensor<float> t)
    {
        var values = new float[t.FlattenedLength];
        t.FlattenTo(values);
        return values;
    }

    private static float[] IntoBuffer(Action<TensorSpan<float>> call, nint[] shape)
    {
        var buffer = new float[shape.Aggregate((nint)1, (a, b) => a * b)];
        call(new TensorSpan<float>(buffer, shape, default));
        return buffer;
    }

    [Test]
    public void DenseTensorOverloadEqualsTheSpanOverload()
    {
        int seed = TestRandom.SeedFor(nameof(DenseTensorOverloadEqualsTheSpanOverload));
        nint[] qs = [2, 37, 4, 16], ks = [2, 53, 2, 16];
        var (q, k, v) = (RandomTensor(seed, qs), RandomTensor(seed + 1, ks), RandomTensor(seed + 2, ks));
        var options = new AttentionOptions { Causal = true, CausalAlignment = CausalAlignment.TopLeft };

        var output = Attention.Dense(q, k, v, options);

        Assert.That(output.Lengths.ToArray(), Is.EqualTo(qs));
        var expected = IntoBuffer(o => Attention.Dense<float>(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(),
            v.AsReadOnlyTensorSpan(), o, options), qs);
        Assert.That(Flat(output), Is.EqualTo(expected), $"seed {seed}");
    }

    [Test]
    public void DenseWithLseReturnsTheLogSumExpShapedBHS()
    {
        int seed = TestRandom.SeedFor(nameof(DenseWithLseReturnsTheLogSumExpShapedBHS));
        var (q, k, v) = (RandomTensor(seed, 1, 9, 3, 8), RandomTensor(seed + 1, 1, 20, 3, 8), RandomTensor(seed + 2, 1, 20, 3, 8));

        var (output, lse) = Attention.DenseWithLse(q, k, v);

        Assert.That(output.Lengths.ToArray(), Is.EqualTo(new nint[] { 1, 9, 3, 8 }));
        Assert.That(lse.Lengths.ToArray(), Is.EqualTo(new nint[] { 1, 3, 9 }));
        var expectedLse = new float[27];
        _ = IntoBuffer(o => Attention.Dense<float>(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), o,
            new TensorSpan<float>(expectedLse, [1, 3, 9], default)), [1, 9, 3, 8]);
        Assert.That(Flat(lse), Is.EqualTo(expectedLse));
    }

    [Test]
    public void DenseArrayOverloadEqualsTheSpanOverload()
    {
        int seed = TestRandom.SeedFor(nameof(DenseArrayOverloadEqualsTheSpanOverload));
        nint[] shape = [1, 33, 2, 24];
        float[] q = Random(seed, 33 * 2 * 24), k = Random(seed + 1, q.Length), v = Random(seed + 2, q.Length);

        var output = Attention.Dense(q, k, v, shape, shape, new AttentionOptions { Causal = true });

        var expected = IntoBuffer(o => Attention.Dense<float>(new ReadOnlyTensorSpan<float>(q, shape, default),
            new ReadOnlyTensorSpan<float>(k, shape, default), new ReadOnlyTensorSpan<float>(v, shape, default), o,
            new AttentionOptions { Causal = true }), shape);
        Assert.That(output, Is.EqualTo(expected));
    }

    [Test]
    public void ArrayOfTheWrongLengthNamesIt()
    {
        nint[] shape = [1, 8, 2, 4];
        var ok = new float[64];
        var ex = Assert.Throws<ArgumentException>(() => Attention.Dense(ok, new float[63], ok, shape, shape));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
        Assert.That(ex.Message, Does.Contain("63 elements").And.Contain("[1, 8, 2, 4]"));
    }

    [Test]
    public void NullTensorThrowsArgumentNull()
    {
        var q = RandomTensor(1, 1, 8, 2, 4);
        var ex = Assert.Throws<ArgumentNullException>(() => Attention.Dense(q, null!, q));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
    }

    [Test]
    public void NeighborhoodAndBlockSparseTensorOverloadsEqualTheSpanOverloads()
    {
        int seed = TestRandom.SeedFor(nameof(NeighborhoodAndBlockSparseTensorOverloadsEqualTheSpanOverloads));
        nint[] shape = [1, 200, 2, 16];
        var (q, k, v) = (RandomTensor(seed, shape), RandomTensor(seed + 1, shape), RandomTensor(seed + 2, shape));
        var config = NeighborhoodConfig.Create2D((10, 20), (3, 5));
        var mask = BlockMask.Random(200, 64, 0.5, seed, causal: true);
        var causal = new AttentionOptions { Causal = true };

        var na = Attention.Neighborhood(q, k, v, config);
        var bs = Attention.BlockSparse(q, k, v, mask, causal);

        Assert.That(Flat(na), Is.EqualTo(IntoBuffer(o => Attention.Neighborhood<float>(q.AsReadOnlyTensorSpan(),
            k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), o, config), shape)));
        Assert.That(Flat(bs), Is.EqualTo(IntoBuffer(o => Attention.BlockSparse<float>(q.AsReadOnlyTensorSpan(),
            k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), o, mask, causal), shape)));
    }

    [Test]
    public void PbsTensorOverloadsPlanAndRunLikeTheSpanOverloads()
    {
        int seed = TestRandom.SeedFor(nameof(PbsTensorOverloadsPlanAndRunLikeTheSpanOverloads));
        nint[] shape = [1, 330, 2, 16];
        var (q, k, v) = (RandomTensor(seed, shape), RandomTensor(seed + 1, shape), RandomTensor(seed + 2, shape));
        var options = new PbsOptions { Block = 64, Segment = 128, Tau = 0.6f };

        var plan = PermutedBlockSparse.Plan(q, k, options);
        var output = PermutedBlockSparse.Run(q, k, v, plan);

        var spanPlan = PermutedBlockSparse.Plan(q.AsReadOnlyTensorSpan(), k.AsReadOnlyTensorSpan(), options);
        Assert.That(plan.KeyPermutation.ToArray(), Is.EqualTo(spanPlan.KeyPermutation.ToArray()));
        Assert.That(Flat(output), Is.EqualTo(IntoBuffer(o => PermutedBlockSparse.Run<float>(q.AsReadOnlyTensorSpan(),
            k.AsReadOnlyTensorSpan(), v.AsReadOnlyTensorSpan(), o, spanPlan), shape)));
    }

    [Test]
    public void PbsCausalDensityIsOneWhenEveryBlockIsKept()
    {
        nint[] shape = [1, 300, 2, 16];
        var q = RandomTensor(3, shape);
        var plan = PermutedBlockSparse.Plan(q, q, new PbsOptions { Block = 64, Segment = 128, Tau = 1f });
        Assert.That(plan.CausalDensity, Is.EqualTo(1.0).Within(1e-12));
        // Against the whole block grid the same plan lists only the blocks on or below the diagonal.
        Assert.That(plan.Density, Is.LessThan(0.75));
    }

    [Test]
    public void PbsCausalDensityCountsTheComputedCausalPairs()
    {
        nint[] shape = [1, 512, 2, 16];
        var q = RandomTensor(5, shape);
        var k = RandomTensor(6, shape);
        var plan = PermutedBlockSparse.Plan(q, k, new PbsOptions { Block = 64, Segment = 128, Tau = 0.3f });
        var pairs = plan.Mask.PairCount(512, 512, causal: true);
        Assert.That(plan.CausalDensity, Is.EqualTo(pairs / (2.0 * 512 * 513 / 2)).Within(1e-12));
        Assert.That(plan.CausalDensity, Is.GreaterThan(plan.Density));
        Assert.That(plan.CausalDensity, Is.LessThan(1.0));
    }
}
