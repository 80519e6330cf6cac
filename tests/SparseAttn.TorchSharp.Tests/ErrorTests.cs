using SparseAttn.TorchSharp.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SparseAttn.TorchSharp.Tests;

/// <summary>Bad torch arguments: the exception type, the parameter it names and the message.</summary>
[TestFixture]
public class ErrorTests
{
    private DisposeScope? scope;

    [SetUp]
    public void SetUp() => scope = torch.NewDisposeScope();

    [TearDown]
    public void TearDown() => scope?.Dispose();

    private static Tensor Qkv(ScalarType dtype = ScalarType.Float32) => TorchReference.Random(dtype, 1, 2, 16, 32);

    [TestCase(ScalarType.Float64, "Float64")]
    [TestCase(ScalarType.Int32, "Int32")]
    [TestCase(ScalarType.Int64, "Int64")]
    public void UnsupportedQueryDtypeNamesQ(ScalarType dtype, string shown)
    {
        var q = Qkv().to(dtype);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q));
        Assert.That(ex!.ParamName, Is.EqualTo("q"));
        Assert.That(ex.Message, Does.Contain(shown).And.Contain("float32 (CPU only), float16 or bfloat16"));
    }

    [Test]
    public void UnsupportedValueDtypeNamesV()
    {
        var q = Qkv();
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q.to(ScalarType.Float64)));
        Assert.That(ex!.ParamName, Is.EqualTo("v"));
    }

    [Test]
    public void MismatchedDtypesNameTheSecondTensor()
    {
        var q = Qkv();
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, Qkv(ScalarType.Float16), q));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
        Assert.That(ex.Message, Does.Contain("Float16").And.Contain("Float32"));
    }

    [Test]
    public void MismatchedOutputDtypeNamesOutput()
    {
        var q = Qkv();
        var output = torch.empty_like(q, ScalarType.BFloat16);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q, output));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
    }

    [Test]
    public void NonContiguousHeadDimNamesTheTensor()
    {
        var q = Qkv();
        // [1, 2, 32, 16] transposed to [1, 2, 16, 32]: the head dim has stride 16.
        var strided = TorchReference.Random(ScalarType.Float32, 1, 2, 32, 16).transpose(2, 3);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, strided, q));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
        Assert.That(ex.Message, Does.Contain("last dimension").And.Contain("contiguous"));
    }

    [Test]
    public void LseMustBeFloat32()
    {
        var q = Qkv();
        var lse = torch.empty(new long[] { 1, 2, 16 }, ScalarType.Float16);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q, torch.empty_like(q), lse));
        Assert.That(ex!.ParamName, Is.EqualTo("lse"));
        Assert.That(ex.Message, Does.Contain("float32"));
    }

    [Test]
    public void LseOfTheWrongShapeNamesLse()
    {
        var q = Qkv();
        var lse = torch.empty(1, 16, 2);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q, torch.empty_like(q), lse));
        Assert.That(ex!.ParamName, Is.EqualTo("lse"));
    }

    [Test]
    public void OutputOfTheWrongShapeNamesOutput()
    {
        var q = Qkv();
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q, torch.empty(1, 2, 15, 32)));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
    }

    [Test]
    public void WrongRankNamesQ()
    {
        var q = torch.rand(16, 2, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q));
        Assert.That(ex!.ParamName, Is.EqualTo("q"));
    }

    [Test]
    public void NullQueryThrowsArgumentNull()
    {
        var q = Qkv();
        var ex = Assert.Throws<ArgumentNullException>(() => TorchAttention.Dense(q, null!, q, torch.empty_like(q)));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
    }

    [Test]
    public void PermutationMustBeInt32()
    {
        var q = TorchReference.Random(ScalarType.Float32, 1, 1, 100, 16);
        var mask = BlockMask.Causal(100, 100, 64, 64);
        var ex = Assert.Throws<ArgumentException>(() =>
            TorchAttention.BlockSparse(q, q, q, mask, keyPermutation: torch.arange(100)));
        Assert.That(ex!.ParamName, Is.EqualTo("keyPermutation"));
        Assert.That(ex.Message, Does.Contain("int32"));
    }

    [Test]
    public void CuSeqlensMustBeInt32()
    {
        var q = TorchReference.Random(ScalarType.Float32, 10, 2, 16);
        var ex = Assert.Throws<ArgumentException>(() =>
            TorchAttention.DenseVarlen(q, q, q, torch.tensor(new long[] { 0, 10 }), torch.tensor(new[] { 0, 10 }), 10, 10));
        Assert.That(ex!.ParamName, Is.EqualTo("cuSeqlensQ"));
    }

    [Test]
    public void UndefinedLayoutIsRejected()
    {
        var q = Qkv();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => TorchAttention.Dense(q, q, q, layout: (TensorLayout)7));
        Assert.That(ex!.ParamName, Is.EqualTo("layout"));
    }

    [Test]
    public void ViewOfTheWrongElementTypeIsRejected()
    {
        var q = Qkv();
        var ex = Assert.Throws<ArgumentException>(() => q.AsTensorSpan<Half>());
        Assert.That(ex!.Message, Does.Contain("Float32").And.Contain("Single"));
    }

    [Test]
    public void DeviceViewOfACpuTensorIsRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => Qkv().AsCudaView<float>());
        Assert.That(ex!.Message, Does.Contain("cpu").And.Contain("cuda"));
    }

    [Test]
    public void CausalNeighborhoodOptionIsRejected()
    {
        var q = TorchReference.Random(ScalarType.Float32, 1, 2, 16, 32);
        var ex = Assert.Throws<ArgumentException>(() =>
            TorchAttention.Neighborhood(q, q, q, NeighborhoodConfig.Create1D(16, 3), new AttentionOptions { Causal = true }));
        Assert.That(ex!.ParamName, Is.EqualTo("options"));
    }

    [Test]
    public void BshdTensorsWithoutALayoutAreRefusedWhenTheyDoNotFitTorchsOrder()
    {
        // [B, S, H, D] tensors read as torch's [B, H, S, D]: 37 query heads over 53 key heads.
        var q = TorchReference.Random(ScalarType.Float32, 1, 37, 4, 32);
        var k = TorchReference.Random(ScalarType.Float32, 1, 53, 4, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, k, k));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
        Assert.That(ex.Message, Does.Contain("[1, 53, 4, 32] ([B, H, S, D])").And.Contain("layout: TensorLayout.BSHD"));
    }

    [Test]
    public void KeysOfAnotherBatchOrHeadDimAreRefusedInTheCallersOrder()
    {
        var q = Qkv();
        var k = TorchReference.Random(ScalarType.Float32, 2, 16, 2, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, k, k, layout: TensorLayout.BSHD));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
        Assert.That(ex.Message, Does.Contain("[2, 16, 2, 32] ([B, S, H, D])").And.Contain("B and D must match"));
    }

    [Test]
    public void ValuesShapedUnlikeKeysAreRefused()
    {
        var q = Qkv();
        var v = TorchReference.Random(ScalarType.Float32, 1, 2, 17, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, v));
        Assert.That(ex!.ParamName, Is.EqualTo("v"));
        Assert.That(ex.Message, Does.Contain("[1, 2, 17, 32]").And.Contain("[1, 2, 16, 32] [B, H, S, D]"));
    }

    [Test]
    public void OutputShapeMessageUsesTorchsShapes()
    {
        var q = Qkv();
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q, torch.empty(1, 16, 2, 32)));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
        Assert.That(ex.Message, Does.Contain("[1, 16, 2, 32]").And.Contain("[1, 2, 16, 32]"));
    }

    [Test]
    public void ExpandedOutputIsRefused()
    {
        var q = Qkv();
        var output = torch.empty(1, 1, 16, 32).expand(1, 2, 16, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q, output));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
        Assert.That(ex.Message, Does.Contain("twice").And.Contain("strides [512, 0, 32, 1]"));
    }

    [Test]
    public void ExpandedLseIsRefused()
    {
        var q = Qkv();
        var lse = torch.empty(1, 1, 16).expand(1, 2, 16);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q, torch.empty_like(q), lse));
        Assert.That(ex!.ParamName, Is.EqualTo("lse"));
    }

    [Test]
    public void ExpandedKeysAreRefusedInTorchsTerms()
    {
        var q = Qkv();
        var k = TorchReference.Random(ScalarType.Float32, 1, 1, 16, 32).expand(1, 2, 16, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, k, q));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
        Assert.That(ex.Message, Does.Contain("strides [512, 0, 32, 1]").And.Contain(".contiguous()"));
    }

    [Test]
    public void RankThreeTensorNamesTheLayout()
    {
        var q = torch.rand(2, 16, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.Dense(q, q, q));
        Assert.That(ex!.ParamName, Is.EqualTo("q"));
        Assert.That(ex.Message, Does.Contain("rank 3").And.Contain("BHSD").And.Contain("[B, H, S, D]"));
    }

    [Test]
    public void MergeOfDifferentlyShapedPartialsIsRefused()
    {
        var o1 = Qkv();
        var o2 = TorchReference.Random(ScalarType.Float32, 1, 2, 15, 32);
        var lse = torch.zeros(1, 2, 16);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.MergeLse(o1, lse, o2, lse, torch.empty_like(o1)));
        Assert.That(ex!.ParamName, Is.EqualTo("o2"));
    }

    [Test]
    public void PlanWithKeysOfAnotherLengthIsRefused()
    {
        var q = TorchReference.Random(ScalarType.Float32, 1, 2, 300, 32);
        var k = TorchReference.Random(ScalarType.Float32, 1, 2, 299, 32);
        var ex = Assert.Throws<ArgumentException>(() => TorchAttention.PlanPermutedBlockSparse(q, k));
        Assert.That(ex!.ParamName, Is.EqualTo("k"));
        Assert.That(ex.Message, Does.Contain("[1, 2, 299, 32] ([B, H, S, D])"));
    }
}
