using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using SparseAttn.Interop;

namespace SparseAttn.Benchmarks;

/// <summary>
/// Cost of the C# layer (validation, pinning, descriptors) against a raw interop call with prebuilt
/// descriptors, on a tiny single-threaded shape where the kernel itself is cheap.
/// </summary>
[Config(typeof(PreciseCallConfig))]
public unsafe class CallOverheadBenchmarks
{
    private const int B = 1, H = 1, S = 8, D = 16;
    private static readonly nint[] Lengths = [B, S, H, D];
    private readonly AttentionOptions options = new() { NumThreads = 1 };
    private float[] q = [], k = [], v = [], output = [];
    private GCHandle qHandle, kHandle, vHandle, outputHandle;
    private sa_tensor tq, tk, tv, to;
    private sa_attention_options nativeOptions;

    /// <summary>Random inputs and prebuilt native descriptors.</summary>
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
        qHandle = GCHandle.Alloc(q, GCHandleType.Pinned);
        kHandle = GCHandle.Alloc(k, GCHandleType.Pinned);
        vHandle = GCHandle.Alloc(v, GCHandleType.Pinned);
        outputHandle = GCHandle.Alloc(output, GCHandleType.Pinned);
        sa_tensor Describe(GCHandle handle)
        {
            var t = new sa_tensor
            {
                data = (void*)handle.AddrOfPinnedObject(),
                dtype = (int)sa_dtype.SA_DTYPE_F32,
                device_type = (int)sa_device_type.SA_DEVICE_CPU,
                rank = 4,
            };
            long[] shape = [B, S, H, D];
            long[] strides = [S * H * D, H * D, D, 1];
            for (var i = 0; i < 4; i++)
            {
                t.shape[i] = shape[i];
                t.strides[i] = strides[i];
            }
            return t;
        }
        tq = Describe(qHandle);
        tk = Describe(kHandle);
        tv = Describe(vHandle);
        to = Describe(outputHandle);
        sa_attention_options o;
        NativeMethods.sa_attention_options_init(&o);
        o.num_threads = 1;
        nativeOptions = o;
    }

    /// <summary>Unpins the inputs.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        qHandle.Free();
        kHandle.Free();
        vHandle.Free();
        outputHandle.Free();
    }

    /// <summary>The raw C ABI call with prebuilt descriptors.</summary>
    [Benchmark(Baseline = true, Description = "raw sa_dense_forward, S8 D16")]
    public int RawInterop()
    {
        fixed (sa_tensor* pq = &tq, pk = &tk, pv = &tv, po = &to)
        fixed (sa_attention_options* po2 = &nativeOptions)
        {
            return (int)NativeMethods.sa_dense_forward(pq, pk, pv, po, null, po2);
        }
    }

    /// <summary>The public C# call: validation, pinning and descriptors included.</summary>
    [Benchmark(Description = "Attention.Dense, S8 D16")]
    public void PublicApi() =>
        Attention.Dense(new ReadOnlyTensorSpan<float>(q, Lengths, []), new ReadOnlyTensorSpan<float>(k, Lengths, []),
            new ReadOnlyTensorSpan<float>(v, Lengths, []), new TensorSpan<float>(output, Lengths, []), options);
}
