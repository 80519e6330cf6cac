using SparseAttn.Tests.Oracle;

namespace SparseAttn.Tests.Support;

/// <summary>
/// The brief's tolerance rule: the library's max error against the fp64 reference (computed on
/// the rounded inputs) is at most twice the max error of the same naive computation done in the
/// input precision, plus a small epsilon.
/// </summary>
public static class Tolerance
{
    public static double MaxAbsError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        double m = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i];
            if (double.IsNegativeInfinity(e) && double.IsNegativeInfinity(a)) continue;
            double d = Math.Abs(a - e);
            if (double.IsNaN(d)) return double.PositiveInfinity;
            m = Math.Max(m, d);
        }
        return m;
    }

    public static double MaxAbs(ReadOnlySpan<double> x)
    {
        double m = 0;
        foreach (double v in x) if (!double.IsInfinity(v)) m = Math.Max(m, Math.Abs(v));
        return m;
    }

    /// <summary>Small floor so that an emulation that happens to be exact leaves room for one rounding.</summary>
    public static double Epsilon(Precision p, double magnitude) =>
        8 * Rounding.UnitRoundoff(p) * Math.Max(1.0, magnitude);

    public static double Bound(ReadOnlySpan<double> exact, ReadOnlySpan<double> emulated, Precision p) =>
        2 * MaxAbsError(emulated, exact) + Epsilon(p, MaxAbs(exact));

    /// <summary>Asserts the rule; the message carries the seed and the case.</summary>
    public static void AssertWithin(string what, ReadOnlySpan<double> actual, ReadOnlySpan<double> exact,
        ReadOnlySpan<double> emulated, Precision p, string context)
    {
        Assert.That(actual.Length, Is.EqualTo(exact.Length), $"{what}: length ({context})");
        double err = MaxAbsError(actual, exact);
        double bound = Bound(exact, emulated, p);
        int worst = WorstIndex(actual, exact);
        if (!(err <= bound))
            Assert.Fail($"{what}: max error {err:G4} > bound {bound:G4} (naive {p} error {MaxAbsError(emulated, exact):G4}) " +
                        $"at element {worst}: got {actual[worst]:G9}, expected {exact[worst]:G9}; {context}");
    }

    /// <summary>Asserts max |actual - expected| &lt;= absolute, for comparisons of two library paths.</summary>
    public static void AssertClose(string what, ReadOnlySpan<double> actual, ReadOnlySpan<double> expected,
        double absolute, string context)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length ({context})");
        double err = MaxAbsError(actual, expected);
        if (!(err <= absolute))
        {
            int worst = WorstIndex(actual, expected);
            Assert.Fail($"{what}: max error {err:G4} > {absolute:G4} at element {worst}: got {actual[worst]:G9}, " +
                        $"expected {expected[worst]:G9}; {context}");
        }
    }

    private static int WorstIndex(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        int worst = 0;
        double m = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = Math.Abs(actual[i] - expected[i]);
            if (double.IsNegativeInfinity(actual[i]) && double.IsNegativeInfinity(expected[i])) d = 0;
            if (double.IsNaN(d)) return i;
            if (d > m) { m = d; worst = i; }
        }
        return worst;
    }
}
