using System.Diagnostics;
using System.Numerics.Tensors;
using SparseAttn;

// Runs each attention family once on the best device, reports time and throughput, and checks the
// result: on the CPU against a double-precision computation of a few rows, on CUDA against the
// reference kernel. Exits 1 when an error is above tolerance, 2 when a call fails.
try
{
    Console.WriteLine($"SparseAttn {SparseAttnLibrary.Version} (native library: {SparseAttnLibrary.NativeLibraryPath})");
    var cudaBuilt = SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cuda);
    var devices = SparseAttnLibrary.CudaDeviceCount;
    Console.WriteLine($"Backends: CPU {(SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cpu) ? "yes" : "no")}, " +
                      $"CUDA {(cudaBuilt ? $"yes ({devices} device(s))" : "no")}");
    var forceCpu = args.Contains("--cpu");
    var ok = devices > 0 && !forceCpu ? CudaDemo.Run(0) : CpuDemo.Run();
    Console.WriteLine(ok ? "All checks passed." : "Some checks FAILED.");
    return ok ? 0 : 1;
}
catch (Exception e)
{
    Console.Error.WriteLine($"Demo failed: {e.GetType().Name}: {e.Message}");
    return 2;
}

/// <summary>Shapes, random data and reporting shared by both devices.</summary>
internal static class Report
{
    public static float[] Random(int count, Random random)
    {
        var data = new float[count];
        for (var i = 0; i < count; i++)
        {
            // Uniform in [-1, 1): never zeros, moderate scores.
            data[i] = (float)(random.NextDouble() * 2 - 1);
        }
        return data;
    }

    public static string Shape(int b, int s, int h, int d) => $"[B {b}, S {s}, H {h}, D {d}]";

    public static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    public static bool Line(string name, string shape, double milliseconds, double flops, double error, double tolerance,
        string against)
    {
        var pass = error <= tolerance && !double.IsNaN(error);
        var gflops = flops / milliseconds / 1e6;
        var rate = gflops >= 1000 ? $"{gflops / 1000,9:F1} TFLOP/s" : $"{gflops,9:F1} GFLOP/s";
        Console.WriteLine($"  {name,-16} {shape,-48} {milliseconds,9:F2} ms {rate}   " +
                          $"max err {error:E2} vs {against} (tol {tolerance:E1}) {(pass ? "ok" : "FAIL")}");
        return pass;
    }
}

/// <summary>CPU backend: fp32, checked against double precision on a few rows.</summary>
internal static class CpuDemo
{
    private const int B = 1, H = 8, S = 2048, D = 64;
    private const double Tolerance = 2e-4;

    public static bool Run()
    {
        Console.WriteLine($"Device: CPU ({Environment.ProcessorCount} hardware threads), fp32");
        var random = new Random(1234);
        var q = Report.Random(B * S * H * D, random);
        var k = Report.Random(B * S * H * D, random);
        var v = Report.Random(B * S * H * D, random);
        var output = new float[q.Length];
        var shape = Report.Shape(B, S, H, D);
        var ok = true;

        // Dense, non-causal.
        var ms = Time(() => Attention.Dense(In(q), In(k), In(v), Out(output)));
        var error = MaxRowError(q, k, v, output, (_, _) => true);
        ok &= Report.Line("dense", shape, ms, 4.0 * B * H * D * S * (double)S, error, Tolerance, "fp64 rows");

        // Neighborhood: a 32 x 64 grid with a 7 x 9 window.
        var config = NeighborhoodConfig.Create2D((32, 64), (7, 9));
        ms = Time(() => Attention.Neighborhood(In(q), In(k), In(v), Out(output), config));
        error = MaxRowError(q, k, v, output, (p, t) => NeighborhoodAllows(config, p, t));
        ok &= Report.Line("neighborhood 2-D", $"{shape} grid 32x64 win 7x9", ms,
            4.0 * B * H * D * config.PairCount, error, Tolerance, "fp64 rows");

        // Block-sparse: a random causal block mask, 128 x 128 blocks, about 30% of the causal blocks.
        var mask = BlockMask.Random(S, 128, 0.3, seed: 7, causal: true);
        var causal = new AttentionOptions { Causal = true };
        ms = Time(() => Attention.BlockSparse(In(q), In(k), In(v), Out(output), mask, causal));
        error = MaxRowError(q, k, v, output, (p, t) => t <= p && mask.IsListed(0, 0, p / 128, t / 128));
        ok &= Report.Line("block-sparse", $"{shape} density {mask.Density:P0}", ms,
            4.0 * B * H * D * mask.PairCount(S, S, causal: true), error, Tolerance, "fp64 rows");
        return ok;
    }

    private static ReadOnlyTensorSpan<float> In(float[] data) => new(data, [B, S, H, D], []);

    private static TensorSpan<float> Out(float[] data) => new(data, [B, S, H, D], []);

    private static double Time(Action call)
    {
        call();
        var times = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            call();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        return Report.Median(times);
    }

    private static bool NeighborhoodAllows(NeighborhoodConfig config, int p, int t)
    {
        var rank = config.SpatialRank;
        var stride = 1;
        var strides = new int[rank];
        for (var a = rank - 1; a >= 0; a--)
        {
            strides[a] = stride;
            stride *= config.Grid[a];
        }
        for (var a = 0; a < rank; a++)
        {
            int x = p / strides[a] % config.Grid[a], y = t / strides[a] % config.Grid[a], d = config.Dilation[a];
            if (x % d != y % d)
            {
                return false;
            }
            var (start, end) = config.Window(a, x / d, x % d);
            if (y / d < start || y / d >= end)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Max abs error of a few output rows (every head) against a double-precision computation.</summary>
    private static double MaxRowError(float[] q, float[] k, float[] v, float[] output, Func<int, int, bool> allowed)
    {
        var scale = 1.0 / Math.Sqrt(D);
        var maxError = 0.0;
        var scores = new double[S];
        foreach (var p in new[] { 0, 1, 777, S / 2 + 3, S - 1 })
        {
            for (var h = 0; h < H; h++)
            {
                var max = double.NegativeInfinity;
                for (var t = 0; t < S; t++)
                {
                    scores[t] = double.NegativeInfinity;
                    if (!allowed(p, t))
                    {
                        continue;
                    }
                    var dot = 0.0;
                    for (var d = 0; d < D; d++)
                    {
                        dot += (double)q[(p * H + h) * D + d] * k[(t * H + h) * D + d];
                    }
                    scores[t] = dot * scale;
                    max = Math.Max(max, scores[t]);
                }
                var sum = 0.0;
                var row = new double[D];
                for (var t = 0; t < S; t++)
                {
                    if (double.IsNegativeInfinity(scores[t]))
                    {
                        continue;
                    }
                    var weight = Math.Exp(scores[t] - max);
                    sum += weight;
                    for (var d = 0; d < D; d++)
                    {
                        row[d] += weight * v[(t * H + h) * D + d];
                    }
                }
                for (var d = 0; d < D; d++)
                {
                    var expected = sum > 0 ? row[d] / sum : 0.0;
                    var actual = output[(p * H + h) * D + d];
                    var error = Math.Abs(actual - expected);
                    maxError = double.IsNaN(actual) ? double.NaN : Math.Max(maxError, error);
                    if (double.IsNaN(maxError))
                    {
                        return double.NaN;
                    }
                }
            }
        }
        return maxError;
    }
}

/// <summary>CUDA backend: bf16, the fast kernels checked against the reference kernels.</summary>
internal static class CudaDemo
{
    private const int B = 2, H = 16, S = 4096, D = 128;
    private const double Tolerance = 3e-2;

    public static bool Run(int device)
    {
        var info = SparseAttnLibrary.GetCudaDeviceInfo(device);
        Console.WriteLine($"Device: cuda:{device} {info.Name} (sm_{info.ComputeCapability.Major}{info.ComputeCapability.Minor}, " +
                          $"{info.MultiprocessorCount} SMs, {info.TotalMemoryBytes / (1 << 30)} GiB), bf16");
        foreach (var op in Enum.GetValues<AttentionOperation>())
        {
            Console.WriteLine($"  fast path for {op}, bf16, D {D}: " +
                              $"{(SparseAttnLibrary.IsFastPathCovered(op, device, DataType.BFloat16, D) ? "yes" : "no (reference kernel)")}");
        }
        var random = new Random(1234);
        nint[] lengths = [B, S, H, D];
        using var stream = CudaStream.Create(device);
        using var q = Upload(random, lengths, device);
        using var k = Upload(random, lengths, device);
        using var v = Upload(random, lengths, device);
        using var fast = CudaTensor<BFloat16>.Allocate(device, lengths);
        using var reference = CudaTensor<BFloat16>.Allocate(device, lengths);
        var fastOptions = new AttentionOptions { Stream = stream };
        var referenceOptions = fastOptions with { Kernel = KernelChoice.Reference };
        var shape = Report.Shape(B, S, H, D);
        var ok = true;
        string Against(AttentionOperation op) => SparseAttnLibrary.IsFastPathCovered(op, device, DataType.BFloat16, D)
            ? "reference kernel"
            : "reference kernel (no fast path yet: both runs use it)";

        var ms = Time(stream, () => Attention.Dense(q, k, v, fast, fastOptions));
        Attention.Dense(q, k, v, reference, referenceOptions);
        ok &= Report.Line("dense", shape, ms, 4.0 * B * H * D * S * (double)S, MaxDifference(stream, fast, reference),
            Tolerance, Against(AttentionOperation.Dense));

        var config = NeighborhoodConfig.Create2D((64, 64), (13, 13));
        ms = Time(stream, () => Attention.Neighborhood(q, k, v, fast, config, fastOptions));
        Attention.Neighborhood(q, k, v, reference, config, referenceOptions);
        ok &= Report.Line("neighborhood 2-D", $"{shape} grid 64x64 win 13x13", ms, 4.0 * B * H * D * config.PairCount,
            MaxDifference(stream, fast, reference), Tolerance, Against(AttentionOperation.Neighborhood));

        var hostMask = BlockMask.Random(S, 128, 0.25, seed: 7, causal: true);
        using var mask = hostMask.ToDevice(device);
        var causalFast = fastOptions with { Causal = true };
        var causalReference = referenceOptions with { Causal = true };
        ms = Time(stream, () => Attention.BlockSparse(q, k, v, fast, mask, causalFast));
        Attention.BlockSparse(q, k, v, reference, mask, causalReference);
        ok &= Report.Line("block-sparse", $"{shape} density {hostMask.Density:P0}", ms,
            4.0 * B * H * D * hostMask.PairCount(S, S, causal: true), MaxDifference(stream, fast, reference), Tolerance,
            Against(AttentionOperation.BlockSparse));
        return ok;
    }

    private static CudaTensor<BFloat16> Upload(Random random, nint[] lengths, int device)
    {
        var values = Report.Random(B * S * H * D, random);
        var data = new BFloat16[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            data[i] = (BFloat16)values[i];
        }
        return CudaTensor<BFloat16>.FromHost(data, lengths, device);
    }

    private static double Time(CudaStream stream, Action call)
    {
        call();
        stream.Synchronize();
        var times = new List<double>();
        for (var i = 0; i < 10; i++)
        {
            var watch = Stopwatch.StartNew();
            call();
            stream.Synchronize();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        return Report.Median(times);
    }

    private static double MaxDifference(CudaStream stream, CudaTensor<BFloat16> a, CudaTensor<BFloat16> b)
    {
        stream.Synchronize();
        var x = a.ToArray();
        var y = b.ToArray();
        var max = 0.0;
        for (var i = 0; i < x.Length; i++)
        {
            var diff = Math.Abs((double)x[i] - (double)y[i]);
            if (double.IsNaN(diff))
            {
                return double.NaN;
            }
            max = Math.Max(max, diff);
        }
        return max;
    }
}
