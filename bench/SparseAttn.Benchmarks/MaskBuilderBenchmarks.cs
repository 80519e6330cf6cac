using BenchmarkDotNet.Attributes;

namespace SparseAttn.Benchmarks;

/// <summary>Host-side block mask builders at long-context sizes.</summary>
[Config(typeof(ShortCallConfig))]
[MemoryDiagnoser]
public class MaskBuilderBenchmarks
{
    private NeighborhoodConfig neighborhood = NeighborhoodConfig.Create2D((128, 128), (13, 13));
    private BlockMask random = BlockMask.Random(32768, 128, 0.1, seed: 1);

    /// <summary>Inputs shared by the builders.</summary>
    [GlobalSetup]
    public void Setup()
    {
        neighborhood = NeighborhoodConfig.Create2D((128, 128), (13, 13));
        random = BlockMask.Random(32768, 128, 0.1, seed: 1);
    }

    /// <summary>Causal lists for S 32768, 128 x 128 blocks.</summary>
    [Benchmark(Description = "Causal S32768 block128")]
    public BlockMask Causal() => BlockMask.Causal(32768, 32768, 128, 128);

    /// <summary>Sliding window of 4096 over S 32768.</summary>
    [Benchmark(Description = "SlidingWindow S32768 w4096")]
    public BlockMask SlidingWindow() => BlockMask.SlidingWindow(32768, 4096, 128);

    /// <summary>Random 10% mask for S 32768, 32 heads.</summary>
    [Benchmark(Description = "Random S32768 10% H32")]
    public BlockMask Random() => BlockMask.Random(32768, 128, 0.1, seed: 1, heads: 32);

    /// <summary>Block lists of a 2-D neighborhood, 128 x 128 tokens, 13 x 13 window.</summary>
    [Benchmark(Description = "FromNeighborhood 128x128 win13x13")]
    public BlockMask FromNeighborhood() => BlockMask.FromNeighborhood(neighborhood, 128);

    /// <summary>Round trip through the dense boolean form.</summary>
    [Benchmark(Description = "ToDense+FromDense S32768 10%")]
    public BlockMask DenseRoundTrip() => BlockMask.FromDense(random.ToDense(), 128, 128);
}
