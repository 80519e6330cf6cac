using System.Diagnostics;
using System.Numerics.Tensors;
using SparseAttn;

// Hello, attention: causal dense attention on the CPU (and on the first CUDA device when there is
// one), checked against a plain double-precision computation. Exit code 0 when every check passes.
const int Batch = 1, Seq = 256, Heads = 4, Dim = 64;
nint[] shape = [Batch, Seq, Heads, Dim];
var random = new Random(42);
float[] RandomData() => Enumerable.Range(0, Batch * Seq * Heads * Dim).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
float[] q = RandomData(), k = RandomData(), v = RandomData();
var options = new AttentionOptions { Causal = true };
var expected = Reference.CausalAttention(q, k, v, Batch, Seq, Heads, Dim);

Console.WriteLine($"SparseAttn {SparseAttnLibrary.Version}, native library {SparseAttnLibrary.NativeLibraryPath}");
Console.WriteLine($"causal dense attention, [B {Batch}, S {Seq}, H {Heads}, D {Dim}]");
var ok = true;

// CPU: fp32 tensors on the host.
var output = new float[q.Length];
var watch = Stopwatch.StartNew();
Attention.Dense<float>(new ReadOnlyTensorSpan<float>(q, shape, default), new ReadOnlyTensorSpan<float>(k, shape, default),
    new ReadOnlyTensorSpan<float>(v, shape, default), new TensorSpan<float>(output, shape, default), options);
ok &= Check("CPU  fp32", output, expected, 1e-4, watch.Elapsed.TotalMilliseconds);

// CUDA: bf16 tensors on the device, when the library has a CUDA backend and a device is present.
if (SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cuda) && SparseAttnLibrary.CudaDeviceCount > 0)
{
    Console.WriteLine($"CUDA device 0: {SparseAttnLibrary.GetCudaDeviceInfo(0).Name}");
    BFloat16[] ToBf16(float[] x) => x.Select(f => (BFloat16)f).ToArray();
    using var dq = CudaTensor<BFloat16>.FromHost(ToBf16(q), shape);
    using var dk = CudaTensor<BFloat16>.FromHost(ToBf16(k), shape);
    using var dv = CudaTensor<BFloat16>.FromHost(ToBf16(v), shape);
    using var dout = CudaTensor<BFloat16>.Allocate(0, shape);
    watch.Restart();
    Attention.Dense(dq, dk, dv, dout, options: options);
    SparseAttnLibrary.SynchronizeDevice(0);
    var elapsed = watch.Elapsed.TotalMilliseconds;
    ok &= Check("CUDA bf16", dout.ToArray().Select(x => (float)x).ToArray(), expected, 2e-2, elapsed);
}
else
{
    Console.WriteLine("CUDA: not available here (no CUDA backend in the library or no device)");
}

Console.WriteLine(ok ? "result check: ok" : "result check: FAILED");
return ok ? 0 : 1;

static bool Check(string what, float[] actual, double[] expected, double tolerance, double milliseconds)
{
    var maxError = 0.0;
    for (var i = 0; i < actual.Length; i++)
    {
        maxError = Math.Max(maxError, double.IsNaN(actual[i]) ? double.PositiveInfinity : Math.Abs(actual[i] - expected[i]));
    }
    var pass = maxError <= tolerance;
    Console.WriteLine($"{what}: {milliseconds,8:F2} ms, max |error| {maxError:E2} (tolerance {tolerance:E0}) {(pass ? "ok" : "FAIL")}");
    return pass;
}

/// <summary>Attention computed the obvious way, in double precision, for the check.</summary>
internal static class Reference
{
    public static double[] CausalAttention(float[] q, float[] k, float[] v, int batch, int seq, int heads, int dim)
    {
        var output = new double[q.Length];
        var scale = 1.0 / Math.Sqrt(dim);
        var scores = new double[seq];
        for (var b = 0; b < batch; b++)
        for (var h = 0; h < heads; h++)
        for (var i = 0; i < seq; i++)
        {
            var max = double.NegativeInfinity;
            for (var j = 0; j <= i; j++)
            {
                var dot = 0.0;
                for (var d = 0; d < dim; d++)
                {
                    dot += q[Index(b, i, h, d)] * (double)k[Index(b, j, h, d)];
                }
                scores[j] = dot * scale;
                max = Math.Max(max, scores[j]);
            }
            var sum = 0.0;
            for (var j = 0; j <= i; j++)
            {
                scores[j] = Math.Exp(scores[j] - max);
                sum += scores[j];
            }
            for (var d = 0; d < dim; d++)
            {
                var acc = 0.0;
                for (var j = 0; j <= i; j++)
                {
                    acc += scores[j] * v[Index(b, j, h, d)];
                }
                output[Index(b, i, h, d)] = acc / sum;
            }
        }
        return output;

        int Index(int b, int s, int h, int d) => ((b * seq + s) * heads + h) * dim + d;
    }
}
