using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>
/// A generalized neighborhood attention (GNA) configuration: the sequence axis is a row-major grid
/// of 1 to 3 dimensions (the last fastest), and each dimension has a kernel (window) size, a
/// dilation, a stride and a causal flag. Valid per dimension: 1 &lt;= stride &lt;= kernel,
/// dilation &gt;= 1, kernel * dilation &lt;= length. Stride equal to kernel is blocked attention;
/// kernel equal to the length with stride and dilation 1 (non-causal) is dense attention.
/// </summary>
public sealed record NeighborhoodConfig
{
    private readonly int[] grid;
    private readonly int[] kernel;
    private readonly int[] dilation;
    private readonly int[] stride;
    private readonly bool[] causal;

    private NeighborhoodConfig(int[] grid, int[] kernel, int[] dilation, int[] stride, bool[] causal)
    {
        this.grid = grid;
        this.kernel = kernel;
        this.dilation = dilation;
        this.stride = stride;
        this.causal = causal;
        for (var i = 0; i < grid.Length; i++)
        {
            var axis = grid.Length == 1 ? string.Empty : $"[{i}]";
            if (grid[i] < 1)
            {
                throw new ArgumentOutOfRangeException("grid", grid[i], $"grid{axis} = {grid[i]} must be at least 1.");
            }
            if (dilation[i] < 1)
            {
                throw new ArgumentOutOfRangeException("dilation", dilation[i], $"dilation{axis} = {dilation[i]} must be at least 1.");
            }
            if (kernel[i] < 1 || (long)kernel[i] * dilation[i] > grid[i])
            {
                throw new ArgumentOutOfRangeException("kernel", kernel[i],
                    $"kernel{axis} = {kernel[i]} must be at least 1 and kernel * dilation ({kernel[i]} * {dilation[i]}) at most the length {grid[i]}.");
            }
            if (stride[i] < 1 || stride[i] > kernel[i])
            {
                throw new ArgumentOutOfRangeException("stride", stride[i],
                    $"stride{axis} = {stride[i]} must be in 1..kernel ({kernel[i]}).");
            }
        }
        // Checked after every dim: three int lengths can overflow long and wrap to a small count.
        long tokens = 1;
        foreach (var length in grid)
        {
            tokens *= length;
            if (tokens > int.MaxValue)
            {
                throw new ArgumentOutOfRangeException("grid", $"the grid [{string.Join(", ", grid)}] has more than {int.MaxValue} tokens.");
            }
        }
        SequenceLength = (int)tokens;
    }

    /// <summary>Number of spatial dimensions (1, 2 or 3).</summary>
    public int SpatialRank => grid.Length;

    /// <summary>Grid lengths, slowest dimension first.</summary>
    public ReadOnlySpan<int> Grid => grid;

    /// <summary>Window size per dimension.</summary>
    public ReadOnlySpan<int> Kernel => kernel;

    /// <summary>Dilation per dimension.</summary>
    public ReadOnlySpan<int> Dilation => dilation;

    /// <summary>Stride per dimension.</summary>
    public ReadOnlySpan<int> Stride => stride;

    /// <summary>Causal flag per dimension.</summary>
    public ReadOnlySpan<bool> Causal => causal;

    /// <summary>Number of tokens, the product of the grid lengths (the S of Q, K and V).</summary>
    public int SequenceLength { get; }

    /// <summary>A 1-D configuration.</summary>
    /// <param name="length">Sequence length L.</param>
    /// <param name="kernel">Window size k.</param>
    /// <param name="dilation">Dilation d.</param>
    /// <param name="stride">Stride s.</param>
    /// <param name="causal">Causal window.</param>
    public static NeighborhoodConfig Create1D(int length, int kernel, int dilation = 1, int stride = 1, bool causal = false) =>
        new([length], [kernel], [dilation], [stride], [causal]);

    /// <summary>A 2-D configuration over a row-major (rows, columns) grid.</summary>
    /// <param name="grid">Grid lengths.</param>
    /// <param name="kernel">Window size per dimension.</param>
    /// <param name="dilation">Dilation per dimension (default 1).</param>
    /// <param name="stride">Stride per dimension (default 1).</param>
    /// <param name="causal">Causal flag per dimension (default false).</param>
    public static NeighborhoodConfig Create2D((int, int) grid, (int, int) kernel, (int, int)? dilation = null,
        (int, int)? stride = null, (bool, bool)? causal = null)
    {
        var d = dilation ?? (1, 1);
        var s = stride ?? (1, 1);
        var c = causal ?? (false, false);
        return new([grid.Item1, grid.Item2], [kernel.Item1, kernel.Item2], [d.Item1, d.Item2], [s.Item1, s.Item2],
            [c.Item1, c.Item2]);
    }

    /// <summary>A 3-D configuration over a row-major (depth, rows, columns) grid.</summary>
    /// <param name="grid">Grid lengths.</param>
    /// <param name="kernel">Window size per dimension.</param>
    /// <param name="dilation">Dilation per dimension (default 1).</param>
    /// <param name="stride">Stride per dimension (default 1).</param>
    /// <param name="causal">Causal flag per dimension (default false).</param>
    public static NeighborhoodConfig Create3D((int, int, int) grid, (int, int, int) kernel, (int, int, int)? dilation = null,
        (int, int, int)? stride = null, (bool, bool, bool)? causal = null)
    {
        var d = dilation ?? (1, 1, 1);
        var s = stride ?? (1, 1, 1);
        var c = causal ?? (false, false, false);
        return new([grid.Item1, grid.Item2, grid.Item3], [kernel.Item1, kernel.Item2, kernel.Item3],
            [d.Item1, d.Item2, d.Item3], [s.Item1, s.Item2, s.Item3], [c.Item1, c.Item2, c.Item3]);
    }

    /// <summary>A configuration of any rank from per-dimension arrays.</summary>
    /// <param name="grid">Grid lengths (1 to 3 entries).</param>
    /// <param name="kernel">Window size per dimension.</param>
    /// <param name="dilation">Dilation per dimension, or null for 1.</param>
    /// <param name="stride">Stride per dimension, or null for 1.</param>
    /// <param name="causal">Causal flag per dimension, or null for false.</param>
    public static NeighborhoodConfig Create(ReadOnlySpan<int> grid, ReadOnlySpan<int> kernel, ReadOnlySpan<int> dilation = default,
        ReadOnlySpan<int> stride = default, ReadOnlySpan<bool> causal = default)
    {
        var rank = grid.Length;
        if (rank < 1 || rank > SaConstants.SA_MAX_SPATIAL_DIMS)
        {
            throw new ArgumentException($"grid has {rank} dimensions; 1 to {SaConstants.SA_MAX_SPATIAL_DIMS} are supported.",
                nameof(grid));
        }
        static T[] OrDefault<T>(ReadOnlySpan<T> values, int rank, T fallback, string name)
        {
            if (values.IsEmpty)
            {
                return Enumerable.Repeat(fallback, rank).ToArray();
            }
            if (values.Length != rank)
            {
                throw new ArgumentException($"{name} has {values.Length} entries but grid has {rank}.", name);
            }
            return values.ToArray();
        }
        if (kernel.Length != rank)
        {
            throw new ArgumentException($"kernel has {kernel.Length} entries but grid has {rank}.", nameof(kernel));
        }
        return new(grid.ToArray(), kernel.ToArray(), OrDefault(dilation, rank, 1, nameof(dilation)),
            OrDefault(stride, rank, 1, nameof(stride)), OrDefault(causal, rank, false, nameof(causal)));
    }

    /// <summary>
    /// The window [Start, End) of local key indices (within the dilation group) that the query with
    /// local index <paramref name="u"/> sees along <paramref name="axis"/>, by the library's one window rule.
    /// </summary>
    /// <param name="axis">Spatial dimension.</param>
    /// <param name="u">Local index of the query within its dilation group.</param>
    /// <param name="dilationGroup">The dilation group g (0 &lt;= g &lt; dilation); the group has ceil((L - g) / d) tokens.</param>
    public (int Start, int End) Window(int axis, int u, int dilationGroup = 0)
    {
        if (axis < 0 || axis >= SpatialRank)
        {
            throw new ArgumentOutOfRangeException(nameof(axis), axis, $"axis = {axis} is outside 0..{SpatialRank - 1}.");
        }
        if (dilationGroup < 0 || dilationGroup >= dilation[axis])
        {
            throw new ArgumentOutOfRangeException(nameof(dilationGroup), dilationGroup,
                $"dilationGroup = {dilationGroup} is outside 0..{dilation[axis] - 1}.");
        }
        var groupLength = (grid[axis] - dilationGroup + dilation[axis] - 1) / dilation[axis];
        return WindowRule(u, groupLength, kernel[axis], stride[axis], causal[axis]);
    }

    /// <summary>
    /// The library's GNA window rule: the window [Start, End) of local key indices seen by the query
    /// with local index <paramref name="u"/> in a dilation group of <paramref name="groupLength"/> tokens.
    /// </summary>
    /// <param name="u">Local query index.</param>
    /// <param name="groupLength">Tokens in the dilation group.</param>
    /// <param name="kernel">Window size.</param>
    /// <param name="stride">Stride.</param>
    /// <param name="causal">Causal window.</param>
    public static unsafe (int Start, int End) WindowRule(int u, int groupLength, int kernel, int stride, bool causal)
    {
        int start, end;
        NativeStatus.Check(NativeMethods.sa_neighborhood_window(u, groupLength, kernel, stride, causal ? 1 : 0, &start, &end));
        return (start, end);
    }

    /// <summary>Number of (query, key) pairs the configuration allows (for FLOP counts).</summary>
    public unsafe long PairCount
    {
        get
        {
            var native = ToNative();
            long pairs;
            NativeStatus.Check(NativeMethods.sa_neighborhood_pair_count(&native, &pairs));
            return pairs;
        }
    }

    /// <summary>
    /// Tile-level estimate of the configuration: the (query tile, key tile) pairs a tiled kernel visits when
    /// queries and keys are tiled with boxes of one dilation group's token grid, against the tiles dense
    /// attention visits on the same tokens. A visited tile costs its full size whatever part of it the windows
    /// use, so the tile bound is the speedup a tiled kernel can reach; the pair bound is only the FLOP bound.
    /// </summary>
    /// <param name="tileRows">Queries per tile, a power of two: 64 for the CUDA mma.sync kernels and the CPU, 128 for
    /// the Hopper wgmma kernels.</param>
    /// <param name="tileKeys">Keys per tile, a power of two (64 or 128 likewise).</param>
    /// <param name="queryBox">Box sides per spatial dim (powers of two, product <paramref name="tileRows"/>); empty:
    /// the shape the CUDA kernels choose.</param>
    /// <param name="keyBox">Key box sides likewise; empty: the kernels' choice.</param>
    /// <returns>Boxes used, tile counts and the bounds.</returns>
    /// <exception cref="ArgumentException">A tile size that is not a power of two, or box sides that do not fit.</exception>
    public unsafe NeighborhoodTileEstimate EstimateTiles(int tileRows = 64, int tileKeys = 64, ReadOnlySpan<int> queryBox = default,
        ReadOnlySpan<int> keyBox = default)
    {
        var native = ToNative();
        sa_neighborhood_estimate e;
        var q = new int[SaConstants.SA_MAX_SPATIAL_DIMS];
        var k = new int[SaConstants.SA_MAX_SPATIAL_DIMS];
        Array.Fill(q, 1);
        Array.Fill(k, 1);
        queryBox.CopyTo(q);
        keyBox.CopyTo(k);
        fixed (int* pq = q)
        fixed (int* pk = k)
        {
            NativeStatus.Check(NativeMethods.sa_neighborhood_estimate_tiles(&native, tileRows, tileKeys,
                queryBox.IsEmpty ? null : pq, keyBox.IsEmpty ? null : pk, &e));
        }
        var qBox = new int[SpatialRank];
        var kBox = new int[SpatialRank];
        for (var d = 0; d < SpatialRank; d++)
        {
            qBox[d] = e.q_box[d];
            kBox[d] = e.k_box[d];
        }
        return new NeighborhoodTileEstimate(tileRows, tileKeys, qBox, kBox, e.query_tiles, e.tiles_visited, e.masked_fraction,
            e.dense_tiles, e.pair_bound_speedup, e.tile_bound_speedup, e.predicted_speedup);
    }

    internal unsafe sa_neighborhood_params ToNative()
    {
        var native = new sa_neighborhood_params { spatial_rank = SpatialRank };
        for (var i = 0; i < SaConstants.SA_MAX_SPATIAL_DIMS; i++)
        {
            var present = i < SpatialRank;
            native.grid[i] = present ? grid[i] : 1;
            native.kernel[i] = present ? kernel[i] : 1;
            native.dilation[i] = present ? dilation[i] : 1;
            native.stride[i] = present ? stride[i] : 1;
            native.causal[i] = present && causal[i] ? 1 : 0;
        }
        return native;
    }

    /// <summary>Value equality over every per-dimension setting.</summary>
    /// <param name="other">The other configuration.</param>
    public bool Equals(NeighborhoodConfig? other) =>
        other is not null && grid.AsSpan().SequenceEqual(other.grid) && kernel.AsSpan().SequenceEqual(other.kernel) &&
        dilation.AsSpan().SequenceEqual(other.dilation) && stride.AsSpan().SequenceEqual(other.stride) &&
        causal.AsSpan().SequenceEqual(other.causal);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        for (var i = 0; i < SpatialRank; i++)
        {
            hash.Add(grid[i]);
            hash.Add(kernel[i]);
            hash.Add(dilation[i]);
            hash.Add(stride[i]);
            hash.Add(causal[i]);
        }
        return hash.ToHashCode();
    }

    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"Grid = [{string.Join(", ", grid)}], Kernel = [{string.Join(", ", kernel)}], ");
        builder.Append($"Dilation = [{string.Join(", ", dilation)}], Stride = [{string.Join(", ", stride)}], ");
        builder.Append($"Causal = [{string.Join(", ", causal)}]");
        return true;
    }
}

/// <summary>Tile-level estimate of a neighborhood configuration (<see cref="NeighborhoodConfig.EstimateTiles"/>).</summary>
/// <param name="TileRows">Queries per tile.</param>
/// <param name="TileKeys">Keys per tile.</param>
/// <param name="QueryBox">Query box sides per spatial dim.</param>
/// <param name="KeyBox">Key box sides per spatial dim.</param>
/// <param name="QueryTiles">Work tiles holding at least one query.</param>
/// <param name="TilesVisited">(query tile, key tile) pairs computed.</param>
/// <param name="MaskedFraction">Share of the visited tiles that need the per-element mask.</param>
/// <param name="DenseTiles">Tiles dense attention computes on the same token count.</param>
/// <param name="PairBoundSpeedup">Dense pairs over allowed pairs: the FLOP bound.</param>
/// <param name="TileBoundSpeedup">Dense tiles over visited tiles: the bound of a tiled kernel.</param>
/// <param name="PredictedSpeedup">Dense time over neighborhood time in unmasked-tile units: a masked tile costs 1.3, a tile of 2-D/3-D box rows 1.16x more, each work tile 3.5 more (dense too); fitted on the H200 wgmma loop.</param>
public sealed record NeighborhoodTileEstimate(int TileRows, int TileKeys, IReadOnlyList<int> QueryBox, IReadOnlyList<int> KeyBox,
    double QueryTiles, double TilesVisited, double MaskedFraction, double DenseTiles, double PairBoundSpeedup,
    double TileBoundSpeedup, double PredictedSpeedup);
