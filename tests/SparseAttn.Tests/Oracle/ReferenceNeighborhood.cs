namespace SparseAttn.Tests.Oracle;

/// <summary>One spatial dim of a GNA configuration.</summary>
public readonly record struct NeighborhoodDim(int Length, int Kernel, int Dilation = 1, int Stride = 1, bool Causal = false)
{
    public override string ToString() => $"(L={Length} k={Kernel} d={Dilation} s={Stride}{(Causal ? " causal" : "")})";
}

/// <summary>
/// The GNA window rule written again from the design brief (the deliberate second copy), and
/// the full per-pair mask over a row-major token grid (last dim fastest).
/// </summary>
public static class ReferenceNeighborhood
{
    /// <summary>Half-open window [Start, End) of local key indices seen by local query u.</summary>
    public static (int Start, int End) Window(int u, int groupLength, int kernel, int stride, bool causal)
    {
        if (causal)
        {
            int leader = Math.Min(u / stride * stride + stride - 1, groupLength - 1);
            return (Math.Max(leader - kernel + 1, 0), u + 1);
        }
        else
        {
            int leader = Math.Min(u / stride * stride + stride / 2, groupLength - 1);
            int left = kernel / 2;
            int start = Math.Clamp(leader - left, 0, groupLength - kernel);
            return (start, start + kernel);
        }
    }

    public static int GroupLength(int length, int dilation, int group) =>
        (int)Math.Ceiling((length - group) / (double)dilation);

    public static bool Allows(NeighborhoodDim dim, int queryCoord, int keyCoord)
    {
        int group = queryCoord % dim.Dilation;
        if (keyCoord % dim.Dilation != group) return false;
        int lg = GroupLength(dim.Length, dim.Dilation, group);
        var (start, end) = Window(queryCoord / dim.Dilation, lg, dim.Kernel, dim.Stride, dim.Causal);
        int uk = keyCoord / dim.Dilation;
        return start <= uk && uk < end;
    }

    public static int TokenCount(IReadOnlyList<NeighborhoodDim> dims)
    {
        int n = 1;
        foreach (var d in dims) n *= d.Length;
        return n;
    }

    /// <summary>Coordinates of token t on the grid, last dim fastest.</summary>
    public static int[] Coordinates(IReadOnlyList<NeighborhoodDim> dims, int token)
    {
        var c = new int[dims.Count];
        for (int a = dims.Count - 1; a >= 0; a--)
        {
            c[a] = token % dims[a].Length;
            token /= dims[a].Length;
        }
        return c;
    }

    public static bool[,] PairMatrix(IReadOnlyList<NeighborhoodDim> dims)
    {
        int n = TokenCount(dims);
        var coords = new int[n][];
        for (int t = 0; t < n; t++) coords[t] = Coordinates(dims, t);
        var m = new bool[n, n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            bool ok = true;
            for (int a = 0; a < dims.Count && ok; a++) ok = Allows(dims[a], coords[i][a], coords[j][a]);
            m[i, j] = ok;
        }
        return m;
    }

    public static long PairCount(IReadOnlyList<NeighborhoodDim> dims)
    {
        var m = PairMatrix(dims);
        long count = 0;
        foreach (bool b in m) if (b) count++;
        return count;
    }

    public static AttentionResult Attend(double[] q, double[] k, double[] v, AttentionShape s,
        IReadOnlyList<NeighborhoodDim> dims, double scale, Precision precision = Precision.Double)
    {
        var m = PairMatrix(dims);
        return ReferenceAttention.Attend(q, k, v, s, scale, (_, _, i, j) => m[i, j], precision);
    }
}
