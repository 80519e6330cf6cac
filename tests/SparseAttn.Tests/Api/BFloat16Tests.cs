using SparseAttn.Tests.Oracle;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Api;

[TestFixture]
public class BFloat16Tests
{
    private static ushort Bits(float f) => BFloat16.ToBits((BFloat16)f);

    [TestCase(1f, (ushort)0x3F80)]
    [TestCase(-2f, (ushort)0xC000)]
    [TestCase(0f, (ushort)0x0000)]
    [TestCase(-0f, (ushort)0x8000)]
    [TestCase(3.140625f, (ushort)0x4049)]
    [TestCase(float.PositiveInfinity, (ushort)0x7F80)]
    [TestCase(float.NegativeInfinity, (ushort)0xFF80)]
    public void ExactValuesConvertExactly(float value, ushort bits)
    {
        Assert.That(Bits(value), Is.EqualTo(bits));
        Assert.That(BitConverter.SingleToUInt32Bits((float)BFloat16.FromBits(bits)),
            Is.EqualTo(BitConverter.SingleToUInt32Bits(value)));
    }

    [Test]
    public void RoundsToNearestTiesToEven()
    {
        float halfUp = BitConverter.UInt32BitsToSingle(0x3F808000); // 1 + 2^-8: tie, even is 0x3F80
        float halfUpOdd = BitConverter.UInt32BitsToSingle(0x3F818000); // tie, even is 0x3F82
        float aboveHalf = BitConverter.UInt32BitsToSingle(0x3F808001);
        float belowHalf = BitConverter.UInt32BitsToSingle(0x3F807FFF);
        Assert.That(Bits(halfUp), Is.EqualTo((ushort)0x3F80));
        Assert.That(Bits(halfUpOdd), Is.EqualTo((ushort)0x3F82));
        Assert.That(Bits(aboveHalf), Is.EqualTo((ushort)0x3F81));
        Assert.That(Bits(belowHalf), Is.EqualTo((ushort)0x3F80));
        Assert.That(Bits(-halfUpOdd), Is.EqualTo((ushort)0xBF82));
    }

    [Test]
    public void OverflowRoundsToInfinity()
    {
        Assert.That(Bits(float.MaxValue), Is.EqualTo((ushort)0x7F80));
        Assert.That(Bits(-float.MaxValue), Is.EqualTo((ushort)0xFF80));
        Assert.That((float)BFloat16.MaxValue, Is.EqualTo(BitConverter.UInt32BitsToSingle(0x7F7F0000)));
    }

    [Test]
    public void NaNStaysNaNWhateverThePayload()
    {
        foreach (uint pattern in new uint[] { 0x7FC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0x7F80FFFF })
        {
            float nan = BitConverter.UInt32BitsToSingle(pattern);
            var b = (BFloat16)nan;
            Assert.That(BFloat16.IsNaN(b), Is.True, $"pattern 0x{pattern:X8}");
            Assert.That(float.IsNaN((float)b), Is.True);
            Assert.That(BFloat16.IsNaN((BFloat16)(double)nan), Is.True);
        }
        Assert.That(BFloat16.IsNaN(BFloat16.NaN), Is.True);
        Assert.That(BFloat16.IsInfinity(BFloat16.PositiveInfinity), Is.True);
        Assert.That(BFloat16.IsFinite(BFloat16.One), Is.True);
        Assert.That(BFloat16.NaN == BFloat16.NaN, Is.False, "NaN compares unequal like float");
    }

    [Test]
    public void SubnormalsRoundAndWidenExactly()
    {
        float smallest = BitConverter.UInt32BitsToSingle(0x00010000); // smallest bf16 subnormal
        Assert.That(Bits(smallest), Is.EqualTo((ushort)0x0001));
        Assert.That((float)BFloat16.Epsilon, Is.EqualTo(smallest));
        Assert.That(Bits(BitConverter.UInt32BitsToSingle(0x00008000)), Is.EqualTo((ushort)0x0000), "tie to even zero");
        Assert.That(Bits(BitConverter.UInt32BitsToSingle(0x00018000)), Is.EqualTo((ushort)0x0002), "tie to even");
        Assert.That(Bits(BitConverter.UInt32BitsToSingle(0x00008001)), Is.EqualTo((ushort)0x0001));
        Assert.That(Bits(BitConverter.UInt32BitsToSingle(0x007FFFFF)), Is.EqualTo((ushort)0x0080), "rounds up to the smallest normal");
        Assert.That(Bits(float.Epsilon), Is.EqualTo((ushort)0x0000));
    }

    [Test]
    public void RandomFloatsMatchTheOracleRounding()
    {
        int seed = TestRandom.SeedFor(nameof(RandomFloatsMatchTheOracleRounding));
        var rng = new Random(seed);
        for (int n = 0; n < 200_000; n++)
        {
            float f = BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32));
            if (float.IsNaN(f)) continue;
            Assert.That(Bits(f), Is.EqualTo(Rounding.BFloat16Bits(f)), $"seed {seed}, value bits 0x{BitConverter.SingleToUInt32Bits(f):X8}");
        }
    }

    [Test]
    public void DoubleConversionRoundsOnce()
    {
        // Just above the tie between 1 and 1 + 2^-7; rounding through float first would land on the tie.
        double justAbove = 1 + Math.Pow(2, -8) + Math.Pow(2, -30);
        Assert.That((double)(BFloat16)justAbove, Is.EqualTo(1 + Math.Pow(2, -7)));
        double justBelow = 1 + Math.Pow(2, -8) - Math.Pow(2, -30);
        Assert.That((double)(BFloat16)justBelow, Is.EqualTo(1.0));
        Assert.That((double)(BFloat16)(1 + Math.Pow(2, -8)), Is.EqualTo(1.0), "exact tie goes to even");
        Assert.That((double)(BFloat16)(-1e-50), Is.EqualTo(0.0));
        Assert.That(double.IsPositiveInfinity((double)(BFloat16)1e300), Is.True);
    }

    [Test]
    public void ComparisonsFollowFloat()
    {
        var a = (BFloat16)1.5f;
        var b = (BFloat16)(-2f);
        Assert.That(a > b, Is.True);
        Assert.That(a.CompareTo(b), Is.GreaterThan(0));
        Assert.That((BFloat16)0f == (BFloat16)(-0f), Is.True);
        Assert.That(a.Equals((BFloat16)1.5f), Is.True);
        Assert.That(BFloat16.FromBits(BFloat16.ToBits(a)).RawBits, Is.EqualTo(a.RawBits));
    }
}
