using System.Globalization;

namespace SparseAttn;

/// <summary>
/// A 16-bit brain floating-point number: the upper half of an IEEE 754 single (1 sign bit,
/// 8 exponent bits, 7 mantissa bits). Conversions from <see cref="float"/> and <see cref="double"/>
/// round to nearest, ties to even; NaN stays NaN.
/// </summary>
public readonly struct BFloat16 : IEquatable<BFloat16>, IComparable<BFloat16>, IComparable, IFormattable
{
    private readonly ushort bits;

    private BFloat16(ushort bits) => this.bits = bits;

    /// <summary>The smallest finite value, -3.3895314E+38.</summary>
    public static BFloat16 MinValue => new(0xFF7F);

    /// <summary>The largest finite value, 3.3895314E+38.</summary>
    public static BFloat16 MaxValue => new(0x7F7F);

    /// <summary>The smallest positive value (a subnormal), about 9.18E-41.</summary>
    public static BFloat16 Epsilon => new(0x0001);

    /// <summary>A quiet NaN.</summary>
    public static BFloat16 NaN => new(0x7FC0);

    /// <summary>Positive infinity.</summary>
    public static BFloat16 PositiveInfinity => new(0x7F80);

    /// <summary>Negative infinity.</summary>
    public static BFloat16 NegativeInfinity => new(0xFF80);

    /// <summary>Positive zero.</summary>
    public static BFloat16 Zero => new(0x0000);

    /// <summary>One.</summary>
    public static BFloat16 One => new(0x3F80);

    /// <summary>Creates a value from its bit pattern.</summary>
    /// <param name="bits">The 16 bits.</param>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>The bit pattern of <paramref name="value"/>.</summary>
    /// <param name="value">The value.</param>
    public static ushort ToBits(BFloat16 value) => value.bits;

    /// <summary>The bit pattern of this value.</summary>
    public ushort RawBits => bits;

    /// <summary>True when <paramref name="value"/> is NaN.</summary>
    /// <param name="value">The value.</param>
    public static bool IsNaN(BFloat16 value) => (value.bits & 0x7FFF) > 0x7F80;

    /// <summary>True when <paramref name="value"/> is positive or negative infinity.</summary>
    /// <param name="value">The value.</param>
    public static bool IsInfinity(BFloat16 value) => (value.bits & 0x7FFF) == 0x7F80;

    /// <summary>True when <paramref name="value"/> is neither NaN nor infinite.</summary>
    /// <param name="value">The value.</param>
    public static bool IsFinite(BFloat16 value) => (value.bits & 0x7F80) != 0x7F80;

    /// <summary>Rounds a float to the nearest bfloat16 (ties to even); NaN stays NaN.</summary>
    /// <param name="value">The value.</param>
    public static explicit operator BFloat16(float value)
    {
        var x = BitConverter.SingleToUInt32Bits(value);
        if ((x & 0x7FFF_FFFF) > 0x7F80_0000)
        {
            // Keep sign and top payload bits, force the quiet bit so truncation cannot yield infinity.
            return new BFloat16((ushort)((x >> 16) | 0x0040));
        }
        var roundingBias = 0x7FFFu + ((x >> 16) & 1u);
        return new BFloat16((ushort)((x + roundingBias) >> 16));
    }

    /// <summary>Rounds a double to the nearest bfloat16 (ties to even, a single rounding); NaN stays NaN.</summary>
    /// <param name="value">The value.</param>
    public static explicit operator BFloat16(double value)
    {
        var single = (float)value;
        if (!double.IsNaN(value) && !float.IsInfinity(single) && single != value)
        {
            // Round to odd on the way to float so the second rounding cannot double-round.
            var b = BitConverter.SingleToUInt32Bits(single);
            if (Math.Abs((double)single) > Math.Abs(value))
            {
                b -= 1;
            }
            single = BitConverter.UInt32BitsToSingle(b | 1u);
        }
        return (BFloat16)single;
    }

    /// <summary>Widens to float (exact).</summary>
    /// <param name="value">The value.</param>
    public static explicit operator float(BFloat16 value) => BitConverter.UInt32BitsToSingle((uint)value.bits << 16);

    /// <summary>Widens to double (exact).</summary>
    /// <param name="value">The value.</param>
    public static explicit operator double(BFloat16 value) => (float)value;

    /// <summary>Numeric equality (NaN is unequal to everything, +0 equals -0).</summary>
    /// <param name="left">Left operand.</param>
    /// <param name="right">Right operand.</param>
    public static bool operator ==(BFloat16 left, BFloat16 right) => (float)left == (float)right;

    /// <summary>Numeric inequality.</summary>
    /// <param name="left">Left operand.</param>
    /// <param name="right">Right operand.</param>
    public static bool operator !=(BFloat16 left, BFloat16 right) => (float)left != (float)right;

    /// <summary>Numeric less-than.</summary>
    /// <param name="left">Left operand.</param>
    /// <param name="right">Right operand.</param>
    public static bool operator <(BFloat16 left, BFloat16 right) => (float)left < (float)right;

    /// <summary>Numeric greater-than.</summary>
    /// <param name="left">Left operand.</param>
    /// <param name="right">Right operand.</param>
    public static bool operator >(BFloat16 left, BFloat16 right) => (float)left > (float)right;

    /// <summary>Numeric less-or-equal.</summary>
    /// <param name="left">Left operand.</param>
    /// <param name="right">Right operand.</param>
    public static bool operator <=(BFloat16 left, BFloat16 right) => (float)left <= (float)right;

    /// <summary>Numeric greater-or-equal.</summary>
    /// <param name="left">Left operand.</param>
    /// <param name="right">Right operand.</param>
    public static bool operator >=(BFloat16 left, BFloat16 right) => (float)left >= (float)right;

    /// <summary>Equality like <see cref="float.Equals(float)"/>: NaN equals NaN, +0 equals -0.</summary>
    /// <param name="other">The other value.</param>
    public bool Equals(BFloat16 other) => ((float)this).Equals((float)other);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => ((float)this).GetHashCode();

    /// <summary>Ordering like <see cref="float.CompareTo(float)"/> (NaN sorts first).</summary>
    /// <param name="other">The other value.</param>
    public int CompareTo(BFloat16 other) => ((float)this).CompareTo((float)other);

    /// <inheritdoc />
    public int CompareTo(object? obj) => obj switch
    {
        null => 1,
        BFloat16 other => CompareTo(other),
        _ => throw new ArgumentException($"Object must be of type {nameof(BFloat16)}.", nameof(obj)),
    };

    /// <summary>The value as text (the shortest float text that round-trips the widened value).</summary>
    public override string ToString() => ((float)this).ToString(CultureInfo.CurrentCulture);

    /// <inheritdoc />
    public string ToString(string? format, IFormatProvider? formatProvider) =>
        ((float)this).ToString(format, formatProvider);
}
