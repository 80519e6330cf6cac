using System.Numerics.Tensors;
using SparseAttn.Tests.Cpu;
using SparseAttn.Tests.Oracle;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Gpu;

[TestFixture]
[Category("Gpu")]
public class GpuDenseTests : GpuFixture
{
    private static IEnumerable<TestCaseData> Cases()
    {
        int n = 0;
        foreach (int d in new[] { 32, 64, 96, 128, 256 })
        foreach (bool bf16 in new[] { false, true })
        foreach (bool causal in new[] { false, true })
        {
            var shape = (n % 4) switch
            {
                0 => new AttentionShape(2, 77, 77, 4, 2, d),
                1 => new AttentionShape(1, 130, 211, 2, 1, d),
                2 => new AttentionShape(1, 200, 65, 3, 3, d),
                _ => new AttentionShape(2, 33, 300, 8, 1, d),
            };
            var layout = n % 3 == 2 ? Layout.HeadsFirstPadded : Layout.Contiguous;
            var kernel = n % 5 == 4 ? KernelChoice.Reference : KernelChoice.Auto;
            yield return new TestCaseData(bf16 ? DataType.BFloat16 : DataType.Float16, shape.Batch, shape.SeqQ, shape.SeqK,
                shape.HeadsQ, shape.HeadsKv, d, causal, layout, kernel, 0);
            n++;
        }
        // Decode shapes: few queries over long contexts, split-KV automatic and forced.
        int[] splits = { 0, 1, 4, 7 };
        var decode = new (int Sq, int Sk, int Hq, int Hkv, int D)[]
        {
            (1, 16384, 8, 1, 128), (4, 5000, 4, 2, 64), (16, 9000, 2, 2, 128), (64, 4096, 4, 1, 64), (1, 777, 2, 2, 256), (7, 12345, 2, 1, 96),
        };
        int m = 0;
        foreach (var (sq, sk, hq, hkv, d) in decode)
            yield return new TestCaseData(m % 2 == 0 ? DataType.Float16 : DataType.BFloat16, 1, sq, sk, hq, hkv, d, m % 3 != 0,
                Layout.Contiguous, KernelChoice.Auto, splits[m++ % splits.Length]);
        // Query tiles longer than 64 rows: Auto runs the Hopper wgmma kernel on sm_90a builds on an
        // H100/H200, Portable the mma.sync kernel there; elsewhere both run mma.sync.
        foreach (var kernel in new[] { KernelChoice.Auto, KernelChoice.Portable })
        foreach (int d in new[] { 64, 128 })
        foreach (bool causal in new[] { false, true })
            yield return new TestCaseData(d == 64 ? DataType.Float16 : DataType.BFloat16, 2, 200, 333, 4, 2, d, causal,
                causal ? Layout.HeadsFirstPadded : Layout.Contiguous, kernel, 0);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesCpuAndOracle(DataType dt, int b, int sq, int sk, int hq, int hkv, int d, bool causal, Layout layout,
        KernelChoice kernel, int splits)
    {
        var shape = new AttentionShape(b, sq, sk, hq, hkv, d);
        var options = new AttentionOptions { Causal = causal, Kernel = kernel, NumSplits = splits };
        if (dt == DataType.Float16) Run<Half>(shape, layout, options);
        else Run<BFloat16>(shape, layout, options);
    }

    internal static void Run<T>(AttentionShape shape, Layout layout, AttentionOptions options) where T : unmanaged
    {
        int seed = TestRandom.SeedFor($"gpu dense {typeof(T).Name} {shape} {layout} {options}");
        var gpu = AttentionCase<T>.Create(shape, seed, layout, extra: $"{options}");
        var cpu = AttentionCase<T>.Create(shape, seed, layout, extra: $"{options}");
        using (var q = new DeviceMirror<T>(gpu.QTensor))
        using (var k = new DeviceMirror<T>(gpu.KTensor))
        using (var v = new DeviceMirror<T>(gpu.VTensor))
        using (var o = new DeviceMirror<T>(gpu.Output))
        using (var lse = new DeviceMirror<float>(gpu.Lse))
        {
            Attention.Dense(q.View, k.View, v.View, o.View, lse.View, options);
            o.Download();
            lse.Download();
        }
        Attention.Dense<T>(cpu.QTensor.ReadOnly, cpu.KTensor.ReadOnly, cpu.VTensor.ReadOnly, cpu.Output.Span, cpu.Lse.Span,
            options with { Kernel = KernelChoice.Auto, NumSplits = 0 });
        PairMask mask = options.Causal
            ? (_, _, i, j) => ReferenceAttention.CausalAllows(i, j, shape.SeqQ, shape.SeqK, options.CausalAlignment)
            : (_, _, _, _) => true;
        CompareWithCpu(gpu, cpu, mask, gpu.ResolvedScale(options.Scale));
    }

    // Top-left causal runs as bottom-right calls on a reshaped problem (fewer keys, or a square part and
    // an unmasked rest): S_q < S_k, S_q > S_k, split-KV decoding and the long-query tiles.
    [TestCase(DataType.Float16, 1, 130, 211, 2, 1, 64, Layout.Contiguous, KernelChoice.Auto, 0)]
    [TestCase(DataType.BFloat16, 1, 200, 65, 3, 3, 128, Layout.HeadsFirstPadded, KernelChoice.Auto, 0)]
    [TestCase(DataType.BFloat16, 2, 333, 200, 4, 2, 128, Layout.Contiguous, KernelChoice.Auto, 0)]
    [TestCase(DataType.Float16, 2, 333, 200, 4, 2, 64, Layout.Contiguous, KernelChoice.Portable, 0)]
    [TestCase(DataType.Float16, 1, 4, 5000, 4, 2, 64, Layout.Contiguous, KernelChoice.Auto, 4)]
    [TestCase(DataType.BFloat16, 1, 77, 40, 2, 2, 96, Layout.Contiguous, KernelChoice.Reference, 0)]
    public void TopLeftCausalMatchesCpuAndOracle(DataType dt, int b, int sq, int sk, int hq, int hkv, int d, Layout layout,
        KernelChoice kernel, int splits)
    {
        var shape = new AttentionShape(b, sq, sk, hq, hkv, d);
        var options = new AttentionOptions
        {
            Causal = true, CausalAlignment = CausalAlignment.TopLeft, Kernel = kernel, NumSplits = splits,
        };
        if (dt == DataType.Float16) Run<Half>(shape, layout, options);
        else Run<BFloat16>(shape, layout, options);
    }

    [Test]
    public void TopLeftCausalBlockSparseWithUnequalLengthsIsNotSupported()
    {
        using var q = CudaTensor<Half>.Allocate(0, 1, 100, 2, 64);
        using var k = CudaTensor<Half>.Allocate(0, 1, 150, 2, 64);
        using var o = CudaTensor<Half>.Allocate(0, 1, 100, 2, 64);
        using var mask = BlockMask.Causal(100, 150, 64, 64).ToDevice(0);
        var options = new AttentionOptions { Causal = true, CausalAlignment = CausalAlignment.TopLeft };
        var ex = Assert.Throws<NotSupportedException>(() => Attention.BlockSparse(q, k, k, o, mask, options));
        Assert.That(ex!.Message, Does.Contain("top-left"));
    }

    /// <summary>Both results within the oracle tolerance, and within that same bound of each other.</summary>
    internal static void CompareWithCpu<T>(AttentionCase<T> gpu, AttentionCase<T> cpu, PairMask mask, double scale) where T : unmanaged
    {
        var (exact, emulated) = gpu.CheckAgainstOracle(mask, scale, checkLse: true);
        var p = Elements.PrecisionOf<T>();
        Tolerance.AssertClose("gpu vs cpu", gpu.Output.ToLogical(), cpu.Output.ToLogical(),
            Tolerance.Bound(exact.Output, emulated.Output, p), gpu.Context);
        Tolerance.AssertClose("gpu vs cpu lse", gpu.Lse.ToLogical(), cpu.Lse.ToLogical(),
            Tolerance.Bound(exact.Lse, emulated.Lse, p), gpu.Context);
    }

    [Test]
    public void VarlenMatchesTheOracle()
    {
        int[] lengthsQ = { 5, 0, 130, 1 }, lengthsK = { 9, 3, 130, 700 };
        int[] cuQ = new int[5], cuK = new int[5];
        for (int i = 0; i < 4; i++) { cuQ[i + 1] = cuQ[i] + lengthsQ[i]; cuK[i + 1] = cuK[i] + lengthsK[i]; }
        const int hq = 4, hkv = 2, d = 64;
        int seed = TestRandom.SeedFor(nameof(VarlenMatchesTheOracle));
        var rng = new Random(seed);
        var q = Rounding.RoundAll(TestRandom.Uniform(rng, cuQ[4] * hq * d, 1.5), Precision.Float16);
        var k = Rounding.RoundAll(TestRandom.Uniform(rng, cuK[4] * hkv * d, 1.5), Precision.Float16);
        var v = Rounding.RoundAll(TestRandom.Uniform(rng, cuK[4] * hkv * d), Precision.Float16);
        var oHost = HostTensor<Half>.Create(new nint[] { cuQ[4], hq, d });
        var lseHost = HostTensor<float>.Create(new nint[] { hq, cuQ[4] });
        using (var qd = new DeviceMirror<Half>(HostTensor<Half>.FromLogical(q, new nint[] { cuQ[4], hq, d })))
        using (var kd = new DeviceMirror<Half>(HostTensor<Half>.FromLogical(k, new nint[] { cuK[4], hkv, d })))
        using (var vd = new DeviceMirror<Half>(HostTensor<Half>.FromLogical(v, new nint[] { cuK[4], hkv, d })))
        using (var od = new DeviceMirror<Half>(oHost))
        using (var ld = new DeviceMirror<float>(lseHost))
        using (var cq = CudaTensor<int>.FromHost(cuQ))
        using (var ck = CudaTensor<int>.FromHost(cuK))
        {
            Attention.DenseVarlen(qd.View, kd.View, vd.View, od.View, ld.View, cq, ck, 130, 700, new AttentionOptions { Causal = true });
            od.Download();
            ld.Download();
        }
        string context = $"seed {seed} (base {TestRandom.BaseSeed})";
        oHost.AssertWrittenExactlyInside("output", context);
        lseHost.AssertWrittenExactlyInside("lse", context);
        double scale = ReferenceAttention.DefaultScale(d);
        var exact = ReferenceAttention.DenseVarlen(q, k, v, cuQ, cuK, hq, hkv, d, scale, true);
        var emulated = ReferenceAttention.DenseVarlen(q, k, v, cuQ, cuK, hq, hkv, d, scale, true, Precision.Float16);
        Tolerance.AssertWithin("output", oHost.ToLogical(), exact.Output, emulated.Output, Precision.Float16, context);
        Tolerance.AssertWithin("lse", lseHost.ToLogical(), exact.Lse, emulated.Lse, Precision.Float16, context);
    }

    [Test]
    public void MergeMatchesTheCpuBackend()
    {
        int seed = TestRandom.SeedFor(nameof(MergeMatchesTheCpuBackend));
        var rng = new Random(seed);
        var lengths = new nint[] { 2, 37, 4, 64 };
        var lseLengths = new nint[] { 2, 4, 37 };
        var o1 = HostTensor<BFloat16>.FromLogical(TestRandom.Uniform(rng, 2 * 37 * 4 * 64), lengths);
        var o2 = HostTensor<BFloat16>.FromLogical(TestRandom.Uniform(rng, 2 * 37 * 4 * 64), lengths);
        var l1Values = TestRandom.Uniform(rng, 2 * 4 * 37, 4);
        l1Values[3] = double.NegativeInfinity;
        var l1 = HostTensor<float>.FromLogical(l1Values, lseLengths);
        var l2 = HostTensor<float>.FromLogical(TestRandom.Uniform(rng, 2 * 4 * 37, 4), lseLengths);
        var gpuOut = HostTensor<BFloat16>.Create(lengths);
        var gpuLse = HostTensor<float>.Create(lseLengths);
        using (var d1 = new DeviceMirror<BFloat16>(o1))
        using (var d2 = new DeviceMirror<BFloat16>(o2))
        using (var dl1 = new DeviceMirror<float>(l1))
        using (var dl2 = new DeviceMirror<float>(l2))
        using (var dout = new DeviceMirror<BFloat16>(gpuOut))
        using (var dlse = new DeviceMirror<float>(gpuLse))
        {
            Attention.MergeLse(d1.View, dl1.View, d2.View, dl2.View, dout.View, dlse.View);
            dout.Download();
            dlse.Download();
        }
        var cpuOut = HostTensor<BFloat16>.Create(lengths);
        var cpuLse = HostTensor<float>.Create(lseLengths);
        Attention.MergeLse<BFloat16>(o1.ReadOnly, l1.ReadOnly, o2.ReadOnly, l2.ReadOnly, cpuOut.Span, cpuLse.Span);
        string context = $"seed {seed}";
        gpuOut.AssertWrittenExactlyInside("output", context);
        Tolerance.AssertClose("merged output", gpuOut.ToLogical(), cpuOut.ToLogical(), 2 * Rounding.UnitRoundoff(Precision.BFloat16) * 2, context);
        Tolerance.AssertClose("merged lse", gpuLse.ToLogical(), cpuLse.ToLogical(), 1e-5, context);
    }
}

[TestFixture]
[Category("Gpu")]
public class GpuSparseTests : GpuFixture
{
    private static IEnumerable<TestCaseData> NeighborhoodCases()
    {
        foreach (var spec in NeighborhoodTests.Specs) yield return new TestCaseData(spec);
        yield return new TestCaseData(new NeighborhoodTests.Spec("2d 40x50 k(9,7) d(2,3) s(4,7) causal", new[]
        {
            new NeighborhoodDim(40, 9, 2, 4, false), new NeighborhoodDim(50, 7, 3, 7, true),
        }));
        yield return new TestCaseData(new NeighborhoodTests.Spec("3d 8x12x16 blocked", new[]
        {
            new NeighborhoodDim(8, 4, 1, 4), new NeighborhoodDim(12, 4, 1, 4), new NeighborhoodDim(16, 8, 1, 8),
        }));
    }

    [TestCaseSource(nameof(NeighborhoodCases))]
    public void NeighborhoodMatchesCpuAndOracle(NeighborhoodTests.Spec spec)
    {
        int s = ReferenceNeighborhood.TokenCount(spec.Dims);
        var shape = new AttentionShape(1, s, s, 4, 2, 64);
        int seed = TestRandom.SeedFor($"gpu gna {spec.Name}");
        var gpu = AttentionCase<Half>.Create(shape, seed, extra: spec.Name);
        var cpu = AttentionCase<Half>.Create(shape, seed, extra: spec.Name);
        var config = spec.ToConfig();
        using (var q = new DeviceMirror<Half>(gpu.QTensor))
        using (var k = new DeviceMirror<Half>(gpu.KTensor))
        using (var v = new DeviceMirror<Half>(gpu.VTensor))
        using (var o = new DeviceMirror<Half>(gpu.Output))
        using (var lse = new DeviceMirror<float>(gpu.Lse))
        {
            Attention.Neighborhood(q.View, k.View, v.View, o.View, lse.View, config);
            o.Download();
            lse.Download();
        }
        Attention.Neighborhood<Half>(cpu.QTensor.ReadOnly, cpu.KTensor.ReadOnly, cpu.VTensor.ReadOnly, cpu.Output.Span, cpu.Lse.Span, config);
        var pairs = ReferenceNeighborhood.PairMatrix(spec.Dims);
        GpuDenseTests.CompareWithCpu(gpu, cpu, (_, _, i, j) => pairs[i, j], gpu.ResolvedScale(0));
    }

    [Test]
    public void NeighborhoodWithExtraKeysMatchesCpu()
    {
        var config = NeighborhoodConfig.Create2D((12, 10), (5, 3));
        const int b = 2, s = 120, hq = 4, hkv = 2, d = 64, extra = 21;
        var rng = new Random(TestRandom.SeedFor("gpu gna additional keys"));
        Half[] Fill(int n) => Enumerable.Range(0, n).Select(_ => (Half)(rng.NextDouble() * 2 - 1)).ToArray();
        Half[] q = Fill(b * s * hq * d), k = Fill(b * s * hkv * d), v = Fill(b * s * hkv * d);
        Half[] ek = Fill(b * extra * d), ev = Fill(b * extra * d);
        var expected = new Half[q.Length];
        Attention.NeighborhoodWithExtraKeys<Half>(new ReadOnlyTensorSpan<Half>(q, [b, s, hq, d], default),
            new ReadOnlyTensorSpan<Half>(k, [b, s, hkv, d], default), new ReadOnlyTensorSpan<Half>(v, [b, s, hkv, d], default),
            new ReadOnlyTensorSpan<Half>(ek, [b, extra, 1, d], default), new ReadOnlyTensorSpan<Half>(ev, [b, extra, 1, d], default),
            new TensorSpan<Half>(expected, [b, s, hq, d], default), config);
        using var dq = CudaTensor<Half>.FromHost(q, [b, s, hq, d]);
        using var dk = CudaTensor<Half>.FromHost(k, [b, s, hkv, d]);
        using var dv = CudaTensor<Half>.FromHost(v, [b, s, hkv, d]);
        using var dek = CudaTensor<Half>.FromHost(ek, [b, extra, 1, d]);
        using var dev = CudaTensor<Half>.FromHost(ev, [b, extra, 1, d]);
        using var dout = CudaTensor<Half>.Allocate(0, b, s, hq, d);
        using var workspace = CudaTensor<byte>.Allocate(0, (nint)Attention.NeighborhoodExtraKeysWorkspaceBytes(dq));
        using var tooSmall = CudaTensor<byte>.Allocate(0, 256);
        Assert.Throws<ArgumentException>(() => Attention.NeighborhoodWithExtraKeys(dq, dk, dv, dek, dev, dout, tooSmall, config));
        Attention.NeighborhoodWithExtraKeys(dq, dk, dv, dek, dev, dout, workspace, config);
        var got = dout.ToArray();
        for (int n = 0; n < got.Length; n++)
            Assert.That((double)got[n], Is.EqualTo((double)expected[n]).Within(4e-3), $"element {n}");
    }

    [TestCase(128, 128, false, PermutationKind.None, PermutationKind.None)]
    [TestCase(128, 128, true, PermutationKind.PerHead, PermutationKind.None)]
    [TestCase(64, 64, true, PermutationKind.Shared, PermutationKind.PerHead)]
    [TestCase(64, 128, false, PermutationKind.PerHead, PermutationKind.Shared)]
    [TestCase(128, 64, true, PermutationKind.None, PermutationKind.PerHead)]
    public void BlockSparseMatchesCpuAndOracle(int bq, int bk, bool causal, PermutationKind keyPerm, PermutationKind queryPerm)
    {
        var shape = new AttentionShape(2, 450, 611, 4, 2, 128);
        int seed = TestRandom.SeedFor($"gpu bsa {bq} {bk} {causal} {keyPerm} {queryPerm}");
        var gpu = AttentionCase<BFloat16>.Create(shape, seed, extra: $"blocks {bq}x{bk} causal {causal} perms {keyPerm}/{queryPerm}");
        var cpu = AttentionCase<BFloat16>.Create(shape, seed);
        var rng = new Random(seed);
        int nq = ReferenceBlockSparse.BlockCount(450, bq), nk = ReferenceBlockSparse.BlockCount(611, bk);
        var dense = new bool[2, 4, nq, nk];
        for (int b = 0; b < 2; b++) for (int h = 0; h < 4; h++) for (int i = 0; i < nq; i++)
            if (rng.NextDouble() > 0.1) for (int j = 0; j < nk; j++) dense[b, h, i, j] = rng.NextDouble() < 0.4;
        var mask = BlockMask.FromDense(dense, bq, bk);
        var (keyFlat, keyExpanded) = BlockSparseTests.Permutations(rng, keyPerm, 2, 4, 611);
        var (queryFlat, queryExpanded) = BlockSparseTests.Permutations(rng, queryPerm, 2, 4, 450);
        var options = new AttentionOptions { Causal = causal };
        using (var q = new DeviceMirror<BFloat16>(gpu.QTensor))
        using (var k = new DeviceMirror<BFloat16>(gpu.KTensor))
        using (var v = new DeviceMirror<BFloat16>(gpu.VTensor))
        using (var o = new DeviceMirror<BFloat16>(gpu.Output))
        using (var lse = new DeviceMirror<float>(gpu.Lse))
        using (var deviceMask = mask.ToDevice(0))
        using (var kp = DevicePermutation(keyFlat, 2, 4, 611))
        using (var qp = DevicePermutation(queryFlat, 2, 4, 450))
        {
            Attention.BlockSparse(q.View, k.View, v.View, o.View, lse.View, deviceMask, options, kp, qp);
            o.Download();
            lse.Download();
        }
        Attention.BlockSparse<BFloat16>(cpu.QTensor.ReadOnly, cpu.KTensor.ReadOnly, cpu.VTensor.ReadOnly, cpu.Output.Span,
            cpu.Lse.Span, mask, options, keyFlat, queryFlat);
        var spec = new BlockSparseSpec
        {
            BlockQ = bq, BlockK = bk, Mask = dense, Causal = causal, KeyPermutation = keyExpanded, QueryPermutation = queryExpanded,
        };
        GpuDenseTests.CompareWithCpu(gpu, cpu, ReferenceBlockSparse.Mask(spec, shape), gpu.ResolvedScale(0));
    }

    // The host overloads take a flat span (S or B * H_q * S entries); device permutations carry their shape.
    internal static CudaTensor<int>? DevicePermutation(int[] flat, int batch, int heads, int sequence) => flat.Length switch
    {
        0 => null,
        _ when flat.Length == sequence => CudaTensor<int>.FromHost(flat, new nint[] { sequence }),
        _ => CudaTensor<int>.FromHost(flat, new nint[] { batch, heads, sequence }),
    };

    [TestCase(1, 1000, 4, 2, 64, 128, 256, 0.9f)]
    [TestCase(2, 700, 2, 1, 128, 64, 128, 0.5f)]
    [TestCase(1, 200, 2, 2, 64, 64, 256, 0.9f)]
    public void PbsPlanMatchesCpuAndRunMatchesOracle(int b, int s, int hq, int hkv, int d, int block, int segment, float tau)
    {
        var shape = new AttentionShape(b, s, s, hq, hkv, d);
        int seed = TestRandom.SeedFor($"gpu pbs {shape} {block} {segment} {tau}");
        var gpu = AttentionCase<Half>.Create(shape, seed, amplitude: 2.0, extra: $"block {block} segment {segment} tau {tau}");
        var options = new PbsOptions { Block = block, Segment = segment, Tau = tau };
        var cpuPlan = PermutedBlockSparse.Plan<Half>(gpu.QTensor.ReadOnly, gpu.KTensor.ReadOnly, options);
        var expected = ReferencePbs.Plan(gpu.Q, gpu.K, shape, block, segment, tau, ReferenceAttention.DefaultScale(d));
        PbsPlan gpuPlan;
        using (var q = new DeviceMirror<Half>(gpu.QTensor))
        using (var k = new DeviceMirror<Half>(gpu.KTensor))
        using (var v = new DeviceMirror<Half>(gpu.VTensor))
        using (var o = new DeviceMirror<Half>(gpu.Output))
        using (var lse = new DeviceMirror<float>(gpu.Lse))
        {
            gpuPlan = PermutedBlockSparse.Plan(q.View, k.View, options);
            PermutedBlockSparse.Run(q.View, k.View, v.View, o.View, lse.View, gpuPlan);
            o.Download();
            lse.Download();
        }
        int n = ReferenceBlockSparse.BlockCount(s, block);
        for (int x = 0; x < b; x++)
        for (int h = 0; h < hq; h++)
        {
            if (expected.NearTie[x, h]) continue;
            for (int t = 0; t < s; t++)
                Assert.That(gpuPlan.KeyPermutation[(x * hq + h) * s + t], Is.EqualTo(cpuPlan.KeyPermutation[(x * hq + h) * s + t]),
                    $"permutation (b {x}, h {h}, {t}); {gpu.Context}");
            for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                Assert.That(gpuPlan.Mask.IsListed(x, h, i, j), Is.EqualTo(cpuPlan.Mask.IsListed(x, h, i, j)),
                    $"block ({i}, {j}) (b {x}, h {h}); {gpu.Context}");
        }
        var keyPerm = new int[b, hq, s];
        for (int x = 0; x < b; x++) for (int h = 0; h < hq; h++) for (int t = 0; t < s; t++)
            keyPerm[x, h, t] = gpuPlan.KeyPermutation[(x * hq + h) * s + t];
        var spec = new BlockSparseSpec { BlockQ = block, BlockK = block, Mask = gpuPlan.Mask.ToDense(), KeyPermutation = keyPerm, Causal = true };
        gpu.CheckAgainstOracle(ReferenceBlockSparse.Mask(spec, shape), gpu.ResolvedScale(0), checkLse: true);
    }
}

[TestFixture]
[Category("Gpu")]
public class GpuMemoryTests : GpuFixture
{
    [Test]
    public void DeviceInfoAndFastPathCoverage()
    {
        var info = SparseAttnLibrary.GetCudaDeviceInfo(0);
        Assert.That(info.Name, Is.Not.Empty);
        Assert.That(info.MultiprocessorCount, Is.GreaterThan(0));
        Assert.That(info.TotalMemoryBytes, Is.GreaterThan(0));
        if (info.ComputeCapability.Major >= 8)
            foreach (int d in new[] { 32, 64, 96, 128, 256 })
                Assert.That(SparseAttnLibrary.IsFastPathCovered(AttentionOperation.Dense, 0, DataType.Float16, d), Is.True, $"D={d}");
        Assert.That(SparseAttnLibrary.IsFastPathCovered(AttentionOperation.Dense, 0, DataType.Float16, 40), Is.False);
    }

    [Test]
    public void RoundTripsPreserveEveryBit()
    {
        int seed = TestRandom.SeedFor(nameof(RoundTripsPreserveEveryBit));
        var rng = new Random(seed);
        // 17 * 241 elements: an odd byte count that no vector width divides.
        nint[] lengths = { 17, 241, 1 };
        const int count = 17 * 241;
        var data = Enumerable.Range(0, count).Select(_ => (Half)(rng.NextDouble() * 8 - 4)).ToArray();
        using var t = CudaTensor<Half>.FromHost(data, lengths);
        Assert.That(t.ToArray(), Is.EqualTo(data));
        Assert.That(t.ElementCount, Is.EqualTo(count));
        // A longer buffer is uploaded through an exact slice: FromHost takes exactly the elements the lengths need.
        var longer = Enumerable.Range(0, count + 2).Select(_ => (Half)(rng.NextDouble())).ToArray();
        using var prefix = CudaTensor<Half>.FromHost(longer.AsSpan(0, count), lengths);
        Assert.That(prefix.ToArray(), Is.EqualTo(longer[..count]));
        var other = Enumerable.Range(0, count).Select(_ => (Half)(rng.NextDouble())).ToArray();
        t.CopyFrom(other);
        var back = new Half[count];
        t.CopyTo(back);
        Assert.That(back, Is.EqualTo(other));
        t.Fill(0);
        Assert.That(t.ToArray(), Is.All.EqualTo((Half)0));
        using var ints = CudaTensor<int>.Allocate(0, 3, 5);
        ints.Fill(0xFF);
        Assert.That(ints.ToArray(), Is.All.EqualTo(-1));
        Assert.Throws<ArgumentException>(() => t.CopyFrom(new Half[3]));
    }

    [Test]
    public void ViewsOverLibraryMemoryRunAttention()
    {
        // [B, H, S, D] memory allocated through the API, seen as [B, S, H, D] through a permuted view.
        var shape = new AttentionShape(1, 96, 96, 2, 2, 64);
        int seed = TestRandom.SeedFor(nameof(ViewsOverLibraryMemoryRunAttention));
        var c = AttentionCase<Half>.Create(shape, seed);
        Half[] HeadsFirst(double[] x)
        {
            var r = new Half[x.Length];
            for (int s = 0; s < 96; s++) for (int h = 0; h < 2; h++) for (int d = 0; d < 64; d++)
                r[(h * 96 + s) * 64 + d] = (Half)x[(s * 2 + h) * 64 + d];
            return r;
        }
        using var q = CudaTensor<Half>.FromHost(HeadsFirst(c.Q), new nint[] { 1, 2, 96, 64 });
        using var k = CudaTensor<Half>.FromHost(HeadsFirst(c.K), new nint[] { 1, 2, 96, 64 });
        using var v = CudaTensor<Half>.FromHost(HeadsFirst(c.V), new nint[] { 1, 2, 96, 64 });
        using var o = CudaTensor<Half>.Allocate(0, 1, 96, 2, 64);
        o.Fill(0xFF);
        var raw = new CudaTensorView<Half>(q.DataPointer, 0, new nint[] { 1, 96, 2, 64 }, new nint[] { 2 * 96 * 64, 64, 96 * 64, 1 });
        Attention.Dense(raw, k.AsView().Permute(0, 2, 1, 3), v.AsView().Permute(0, 2, 1, 3), o, new AttentionOptions { Causal = true });
        SparseAttnLibrary.SynchronizeDevice(0);
        var result = o.ToArray().Select(x => (double)x).ToArray();
        Assert.That(result.Any(double.IsNaN), Is.False, "every element written");
        var exact = ReferenceAttention.Dense(c.Q, c.K, c.V, shape, ReferenceAttention.DefaultScale(64), true);
        var emulated = ReferenceAttention.Dense(c.Q, c.K, c.V, shape, ReferenceAttention.DefaultScale(64), true, Precision.Float16);
        Tolerance.AssertWithin("output", result, exact.Output, emulated.Output, Precision.Float16, c.Context);
    }

    [Test]
    public void StreamsOrderWorkAndSynchronize()
    {
        using var stream = CudaStream.Create(0);
        var shape = new AttentionShape(1, 64, 64, 1, 1, 32);
        var c = AttentionCase<Half>.Create(shape, TestRandom.SeedFor(nameof(StreamsOrderWorkAndSynchronize)));
        using var q = new DeviceMirror<Half>(c.QTensor);
        using var o = new DeviceMirror<Half>(c.Output);
        Attention.Dense(q.View, q.View, q.View, o.View, new AttentionOptions { Stream = stream });
        stream.Synchronize();
        o.Download().AssertWrittenExactlyInside("output", c.Context);
    }

    [Test]
    public void DeviceValidationRules()
    {
        using var a = CudaTensor<Half>.Allocate(0, 1, 8, 2, 64);
        using var small = CudaTensor<Half>.Allocate(0, 1, 8, 2, 12);
        // C#-side: head dim not supported on CUDA.
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Attention.Dense(small, small, small, small))!;
        Assert.That(ex.ParamName, Is.EqualTo("q"));
        // C#-side: tensors of one call on different devices.
        var elsewhere = new CudaTensorView<Half>(a.DataPointer, 1, new nint[] { 1, 8, 2, 64 });
        var ex2 = Assert.Throws<ArgumentException>(() => Attention.Dense(a, a, elsewhere, a))!;
        Assert.That(ex2.ParamName, Is.EqualTo("v"));
        // Native: output strides that alias two elements (S and H strides equal).
        using var o = CudaTensor<Half>.Allocate(0, 1, 8, 2, 64);
        var aliased = new CudaTensorView<Half>(o.DataPointer, 0, new nint[] { 1, 8, 2, 64 }, new nint[] { 0, 64, 64, 1 });
        var ex3 = Assert.Throws<ArgumentException>(() => Attention.Dense(a, a, a, aliased))!;
        Assert.That(ex3.Message, Does.Contain("alias"));
        // Native: output overlapping an input.
        var ex4 = Assert.Throws<ArgumentException>(() => Attention.Dense(a, a, a, a))!;
        Assert.That(ex4.Message, Does.Contain("overlaps"));
    }
}
