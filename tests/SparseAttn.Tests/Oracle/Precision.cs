namespace SparseAttn.Tests.Oracle;

/// <summary>The arithmetic the oracle emulates: exact double, or every intermediate rounded to a storage type.</summary>
public enum Precision
{
    Double,
    Float32,
    Float16,
    BFloat16,
}

/// <summary>Rounding to the storage types, written independently of the library's BFloat16.</summary>
public static class Rounding
{
    public static double Round(double x, Precision p) => p switch
    {
        Precision.Double => x,
        Precision.Float32 => (float)x,
        Precision.Float16 => (double)(Half)x,
        Precision.BFloat16 => ToBFloat16(x),
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    /// <summary>Round to nearest even on the top 16 bits of the fp32 pattern; NaN stays a quiet NaN.</summary>
    public static double ToBFloat16(double x)
    {
        float f = (float)x;
        if (float.IsNaN(f)) return double.NaN;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        uint lowestKept = (bits >> 16) & 1u;
        bits += 0x7FFFu + lowestKept;
        return BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000u);
    }

    /// <summary>Upper 16 bits of the rounded fp32 pattern: the bf16 encoding.</summary>
    public static ushort BFloat16Bits(float f)
    {
        if (float.IsNaN(f)) return (ushort)((BitConverter.SingleToUInt32Bits(f) >> 16) | 0x0040u);
        return (ushort)(BitConverter.SingleToUInt32Bits((float)ToBFloat16(f)) >> 16);
    }

    public static float FromBFloat16Bits(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Unit roundoff of the storage type.</summary>
    public static double UnitRoundoff(Precision p) => p switch
    {
        Precision.Double => Math.Pow(2, -53),
        Precision.Float32 => Math.Pow(2, -24),
        Precision.Float16 => Math.Pow(2, -11),
        Precision.BFloat16 => Math.Pow(2, -8),
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    public static double[] RoundAll(double[] x, Precision p)
    {
        var r = new double[x.Length];
        for (int i = 0; i < x.Length; i++) r[i] = Round(x[i], p);
        return r;
    }
}
