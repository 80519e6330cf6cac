using ScottPlot.TickGenerators;

namespace SparseAttn.Reports;

/// <summary>Ticks for an axis whose data are log10 of the values: labels at 1, 2 and 5 per decade, minor ticks at 1-9.</summary>
internal static class LogTicks
{
    public static NumericManual Decades(double low, double high, Func<double, string> label)
    {
        var ticks = new NumericManual();
        var first = (int)Math.Floor(Math.Log10(low));
        var last = (int)Math.Ceiling(Math.Log10(high));
        for (var e = first; e <= last; ++e)
        {
            for (var m = 1; m <= 9; ++m)
            {
                var v = m * Math.Pow(10, e);
                if (v < low * 0.85 || v > high * 1.15)
                {
                    continue;
                }
                if (m is 1 or 2 or 5)
                {
                    ticks.AddMajor(Math.Log10(v), label(v));
                }
                else
                {
                    ticks.AddMinor(Math.Log10(v));
                }
            }
        }
        return ticks;
    }
}
