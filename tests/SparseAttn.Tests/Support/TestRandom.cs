namespace SparseAttn.Tests.Support;

/// <summary>
/// Fresh seeds every run, printed on failure; SPARSEATTN_TEST_SEED fixes the base seed to replay a run.
/// </summary>
public static class TestRandom
{
    public static readonly int BaseSeed = ReadBaseSeed();

    private static int ReadBaseSeed()
    {
        string? fixedSeed = Environment.GetEnvironmentVariable("SPARSEATTN_TEST_SEED");
        return fixedSeed is not null && int.TryParse(fixedSeed, out int s) ? s : Random.Shared.Next();
    }

    /// <summary>A seed derived from the base seed and the test's identity, so each case differs yet replays.</summary>
    public static int SeedFor(string testName)
    {
        unchecked
        {
            int h = BaseSeed;
            foreach (char c in testName) h = h * 31 + c;
            return h & int.MaxValue;
        }
    }

    /// <summary>Uniform values in [-range, range], never all zero.</summary>
    public static double[] Uniform(Random rng, int count, double range = 1.0)
    {
        var x = new double[count];
        for (int i = 0; i < count; i++) x[i] = (rng.NextDouble() * 2 - 1) * range;
        return x;
    }
}
