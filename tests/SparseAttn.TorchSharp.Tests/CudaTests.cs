using SparseAttn.TorchSharp.Tests.Support;
using TorchSharp;
using static SparseAttn.TorchSharp.Tests.Support.TorchReference;
using static TorchSharp.torch;

namespace SparseAttn.TorchSharp.Tests;

/// <summary>CUDA tensors: run only where torch and SparseAttn both see a CUDA device.</summary>
[TestFixture]
public class CudaTests
{
    private DisposeScope? scope;

    [SetUp]
    public void SetUp()
    {
        if (!torch.cuda.is_available())
        {
            Assert.Ignore("CUDA is not available to torch (torch.cuda.is_available() is false).");
        }
        if (!SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cuda) || SparseAttnLibrary.CudaDeviceCount == 0)
        {
            Assert.Ignore("The SparseAttn native library has no CUDA backend or sees no device.");
        }
        scope = torch.NewDisposeScope();
        SeedFor(TestContext.CurrentContext.Test.FullName);
    }

    [TearDown]
    public void TearDown() => scope?.Dispose();

    private static Tensor OnCuda(ScalarType dtype, params long[] shape) => Random(dtype, shape).cuda();

    [TestCase(ScalarType.Float16, false, 4e-3)]
    [TestCase(ScalarType.BFloat16, true, 2e-2)]
    public void DenseMatchesTorchSdpa(ScalarType dtype, bool causal, double tolerance)
    {
        var q = OnCuda(dtype, 2, 8, 200, 64);
        var k = OnCuda(dtype, 2, 2, 200, 64);
        var v = OnCuda(dtype, 2, 2, 200, 64);

        var actual = TorchAttention.Dense(q, k, v, new AttentionOptions { Causal = causal }, TensorLayout.BHSD);
        torch.cuda.synchronize();

        var expected = Sdpa(q.cpu(), k.cpu(), v.cpu(), causal: causal);
        Assert.That(MaxError(actual.cpu(), expected), Is.LessThanOrEqualTo(tolerance), $"seed {Seed}");
    }

    [TestCase(ScalarType.Float16, 96, 300, 4e-3)]
    [TestCase(ScalarType.BFloat16, 300, 96, 2e-2)]
    public void TopLeftCausalMatchesTorchIsCausal(ScalarType dtype, int seqQ, int seqK, double tolerance)
    {
        var q = OnCuda(dtype, 1, 4, seqQ, 64);
        var k = OnCuda(dtype, 1, 4, seqK, 64);
        var v = OnCuda(dtype, 1, 4, seqK, 64);

        var actual = TorchAttention.Dense(q, k, v, new AttentionOptions { Causal = true, CausalAlignment = CausalAlignment.TopLeft });
        torch.cuda.synchronize();

        var expected = Sdpa(q.cpu(), k.cpu(), v.cpu(), causal: true);
        Assert.That(MaxError(actual.cpu(), expected), Is.LessThanOrEqualTo(tolerance), $"seed {Seed}");
    }

    [Test]
    public void BlockSparseMatchesTorchWithExplicitMask()
    {
        int seq = 300, heads = 2;
        var q = OnCuda(ScalarType.Float16, 1, seq, heads, 64);
        var k = OnCuda(ScalarType.Float16, 1, seq, heads, 64);
        var v = OnCuda(ScalarType.Float16, 1, seq, heads, 64);
        var mask = BlockMask.Random(seq, 64, 0.4, Seed, heads: heads, causal: true);
        var lse = torch.empty(new long[] { 1, heads, seq }, ScalarType.Float32, q.device);
        var output = torch.empty_like(q);

        TorchAttention.BlockSparse(q, k, v, output, mask, lse, new AttentionOptions { Causal = true },
            layout: TensorLayout.BSHD);
        torch.cuda.synchronize();

        var tokens = TokenMask(mask, 1, heads, seq, seq, causal: true);
        var (qc, kc, vc) = (q.cpu().transpose(1, 2), k.cpu().transpose(1, 2), v.cpu().transpose(1, 2));
        Assert.That(MaxError(output.cpu(), Sdpa(qc, kc, vc, tokens).transpose(1, 2)), Is.LessThanOrEqualTo(4e-3));
        Assert.That(MaxError(lse.cpu(), Lse(qc, kc, tokens)), Is.LessThanOrEqualTo(1e-2));
    }

    [Test]
    public void Float32OnCudaNamesQ()
    {
        var q = OnCuda(ScalarType.Float32, 1, 16, 2, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q));
        Assert.That(ex!.ParamName, Is.EqualTo("q"));
    }

    [Test]
    public void MixedDevicesNameTheCpuTensor()
    {
        var q = OnCuda(ScalarType.Float16, 1, 16, 2, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q.cpu(), q));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
        Assert.That(ex.Message, Does.Contain("cpu").And.Contain("cuda:"));
    }
}
