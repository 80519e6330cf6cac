using TorchSharp;
using static TorchSharp.torch;

namespace SparseAttn.TorchSharp.Tests;

/// <summary>Views of torch tensors: pointers, offsets, strides and element types, with no copy.</summary>
[TestFixture]
public class TensorViewTests
{
    [Test]
    public void DataPointerIncludesTheStorageOffset()
    {
        using var scope = torch.NewDisposeScope();
        var all = torch.zeros(10, 6, ScalarType.Float16);
        var slice = all.narrow(0, 3, 4);
        Assert.That((long)(TorchTensors.DataPointer(slice) - TorchTensors.DataPointer(all)), Is.EqualTo(3L * 6 * 2));
    }

    [Test]
    public void HostSpanWritesGoToTheTensor()
    {
        using var scope = torch.NewDisposeScope();
        var t = torch.zeros(3, 4, 5);
        var view = t.transpose(0, 1).narrow(0, 1, 2);
        var span = view.AsTensorSpan<float>();
        Assert.That(span.Lengths.ToArray(), Is.EqualTo(new nint[] { 2, 3, 5 }));
        span[[1, 2, 4]] = 42f;
        Assert.That(t[2, 2, 4].item<float>(), Is.EqualTo(42f));
        Assert.That(t.sum().item<float>(), Is.EqualTo(42f));
    }

    [Test]
    public void BFloat16AndHalfViewsReadTheSameBits()
    {
        using var scope = torch.NewDisposeScope();
        var b = torch.tensor(new[] { 1.5f, -2.25f }).to(ScalarType.BFloat16);
        var h = torch.tensor(new[] { 0.5f, 3f }).to(ScalarType.Float16);
        var bs = b.AsReadOnlyTensorSpan<BFloat16>();
        var hs = h.AsReadOnlyTensorSpan<Half>();
        Assert.That((float)bs[[1]], Is.EqualTo(-2.25f));
        Assert.That((float)hs[[1]], Is.EqualTo(3f));
    }

    [Test]
    public void DataTypesMapBothWays()
    {
        foreach (var dataType in Enum.GetValues<DataType>())
        {
            Assert.That(TorchTensors.ToDataType(TorchTensors.ToScalarType(dataType)), Is.EqualTo(dataType));
        }
        Assert.That(TorchTensors.ToDataType(ScalarType.Float64), Is.Null);
    }
}
