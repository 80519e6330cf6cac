using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;

namespace SparseAttn.Benchmarks;

/// <summary>CPU backend throughput on dense fp32 attention, B1 H8 S4096 D64.</summary>
[Config(typeof(LongCallConfig))]
public class DenseCpuBenchmarks
{
    private const int B = 1, H = 8, S = 4096, D = 64;
    private const double DenseFlops = 4.0 * B * H * D * S * S;
    private const double CausalFlops = 4.0 * B * H * D * (S * (S + 1.0) / 2);
    private static readonly nint[] Lengths = [B, S, H, D];
    private float[] q = [], k = [], v = [], output = [];

    /// <summary>Random inputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        float[] Make()
        {
            var data = new float[B * S * H * D];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = (float)(random.NextDouble() * 2 - 1);
            }
            return data;
        }
        q = Make();
        k = Make();
        v = Make();
        output = new float[q.Length];
    }

    /// <summary>Dense, non-causal.</summary>
    [Benchmark(Description = "dense fp32 B1 H8 S4096 D64")]
    [Flops(DenseFlops)]
    public void Dense() =>
        Attention.Dense(new ReadOnlyTensorSpan<float>(q, Lengths, []), new ReadOnlyTensorSpan<float>(k, Lengths, []),
            new ReadOnlyTensorSpan<float>(v, Lengths, []), new TensorSpan<float>(output, Lengths, []));

    /// <summary>Dense, causal.</summary>
    [Benchmark(Description = "dense causal fp32 B1 H8 S4096 D64")]
    [Flops(CausalFlops)]
    public void DenseCausal() =>
        Attention.Dense(new ReadOnlyTensorSpan<float>(q, Lengths, []), new ReadOnlyTensorSpan<float>(k, Lengths, []),
            new ReadOnlyTensorSpan<float>(v, Lengths, []), new TensorSpan<float>(output, Lengths, []),
            new AttentionOptions { Causal = true });
}
