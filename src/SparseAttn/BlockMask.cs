using SparseAttn.Interop;

namespace SparseAttn;

/// <summary>
/// A host-side block mask in the FlexAttention list form: for every (batch, head, query block) a
/// count and an ascending list of key blocks. Query block i covers query rows
/// [i * BlockQ, (i + 1) * BlockQ), key block j covers key rows [j * BlockK, (j + 1) * BlockK).
/// Optional <em>full</em> lists hold blocks that need no per-element mask (the result is the same).
/// A mask with Batch or Heads equal to 1 is broadcast over the batch or the heads of a call.
/// </summary>
public sealed class BlockMask
{
    // Validated once when built; never handed out writable, so calls can trust them.
    private readonly int[] counts;
    private readonly int[] indices;
    private readonly int[]? fullCounts;
    private readonly int[]? fullIndices;

    /// <summary>Creates a mask from lists, validating them (see <see cref="FromLists"/>).</summary>
    private BlockMask(int batch, int heads, int queryBlocks, int keyBlocks, int blockQ, int blockK, int[] counts,
        int[] indices, int[]? fullCounts, int[]? fullIndices)
    {
        Batch = batch;
        Heads = heads;
        QueryBlocks = queryBlocks;
        KeyBlocks = keyBlocks;
        BlockQ = blockQ;
        BlockK = blockK;
        this.counts = counts;
        this.indices = indices;
        this.fullCounts = fullCounts;
        this.fullIndices = fullIndices;
    }

    /// <summary>Batch size of the mask (1 broadcasts over the batch of a call).</summary>
    public int Batch { get; }

    /// <summary>Heads of the mask (1 broadcasts over the query heads of a call).</summary>
    public int Heads { get; }

    /// <summary>Number of query blocks nQ = ceil(S_q / BlockQ).</summary>
    public int QueryBlocks { get; }

    /// <summary>Number of key blocks nK = ceil(S_k / BlockK).</summary>
    public int KeyBlocks { get; }

    /// <summary>Query rows per block.</summary>
    public int BlockQ { get; }

    /// <summary>Key rows per block.</summary>
    public int BlockK { get; }

    /// <summary>Listed (masked) key blocks per row, int32 [Batch, Heads, QueryBlocks] (read-only).</summary>
    public ReadOnlySpan<int> Counts => counts;

    /// <summary>Key block indices, int32 [Batch, Heads, QueryBlocks, KeyBlocks]; entries past the count are -1 (read-only).</summary>
    public ReadOnlySpan<int> Indices => indices;

    /// <summary>True when the mask has full (unmasked) lists.</summary>
    public bool HasFullLists => fullCounts is not null;

    /// <summary>Counts of the full (unmasked) lists; empty without them (read-only).</summary>
    public ReadOnlySpan<int> FullCounts => fullCounts;

    /// <summary>Indices of the full (unmasked) lists; empty without them (read-only).</summary>
    public ReadOnlySpan<int> FullIndices => fullIndices;

    /// <summary>Fraction of (query block, key block) pairs listed in either list.</summary>
    public double Density
    {
        get
        {
            long listed = counts.Sum(c => (long)c) + (fullCounts?.Sum(c => (long)c) ?? 0);
            return (double)listed / ((long)Batch * Heads * QueryBlocks * KeyBlocks);
        }
    }

    /// <summary>True when key block <paramref name="j"/> is listed (in either list) for query block <paramref name="i"/>.</summary>
    /// <param name="b">Batch index.</param>
    /// <param name="h">Head index.</param>
    /// <param name="i">Query block.</param>
    /// <param name="j">Key block.</param>
    public bool IsListed(int b, int h, int i, int j)
    {
        var row = Row(b, h, i);
        return indices.AsSpan(row * KeyBlocks, counts[row]).Contains(j) ||
               (fullCounts is not null && fullIndices!.AsSpan(row * KeyBlocks, fullCounts[row]).Contains(j));
    }

    private int Row(int b, int h, int i)
    {
        if ((uint)b >= (uint)Batch || (uint)h >= (uint)Heads || (uint)i >= (uint)QueryBlocks)
        {
            throw new ArgumentOutOfRangeException(nameof(b),
                $"(b, h, i) = ({b}, {h}, {i}) is outside the mask [{Batch}, {Heads}, {QueryBlocks}].");
        }
        return (b * Heads + h) * QueryBlocks + i;
    }

    /// <summary>
    /// Number of (query, key) pairs the mask allows for sequences of <paramref name="seqQ"/> queries and
    /// <paramref name="seqK"/> keys, honouring causal (bottom-right) and the ragged ends; summed over
    /// the mask's batch and heads (for FLOP counts).
    /// </summary>
    /// <param name="seqQ">Query sequence length.</param>
    /// <param name="seqK">Key sequence length.</param>
    /// <param name="causal">Apply the causal mask.</param>
    public unsafe long PairCount(int seqQ, int seqK, bool causal)
    {
        CheckSequences(seqQ, seqK, nameof(seqQ), nameof(seqK));
        var (listCounts, listIndices) = fullCounts is null ? (counts, indices) : Merged();
        nint[] countLengths = [Batch, Heads, QueryBlocks];
        nint[] countStrides = [(nint)Heads * QueryBlocks, QueryBlocks, 1];
        nint[] indexLengths = [Batch, Heads, QueryBlocks, KeyBlocks];
        nint[] indexStrides = [(nint)Heads * QueryBlocks * KeyBlocks, (nint)QueryBlocks * KeyBlocks, KeyBlocks, 1];
        fixed (int* pc = listCounts)
        fixed (int* pi = listIndices)
        {
            var tc = Descriptors.HostInt(pc, countLengths, countStrides);
            var ti = Descriptors.HostInt(pi, indexLengths, indexStrides);
            long pairs;
            NativeStatus.Check(NativeMethods.sa_block_sparse_pair_count(seqQ, seqK, BlockQ, BlockK, causal ? 1 : 0, &tc, &ti,
                &pairs));
            return pairs;
        }
    }

    /// <summary>Checks that the mask fits sequences of these lengths.</summary>
    internal void CheckSequences(long seqQ, long seqK, string seqQName, string seqKName)
    {
        if (seqQ < 1 || (seqQ + BlockQ - 1) / BlockQ != QueryBlocks)
        {
            throw new ArgumentException(
                $"{seqQName} = {seqQ} needs ceil({seqQ} / {BlockQ}) query blocks but the mask has {QueryBlocks}.", seqQName);
        }
        if (seqK < 1 || (seqK + BlockK - 1) / BlockK != KeyBlocks)
        {
            throw new ArgumentException(
                $"{seqKName} = {seqK} needs ceil({seqK} / {BlockK}) key blocks but the mask has {KeyBlocks}.", seqKName);
        }
    }

    /// <summary>Both lists merged into one (ascending).</summary>
    private (int[] Counts, int[] Indices) Merged()
    {
        var rows = counts.Length;
        var mergedCounts = new int[rows];
        var mergedIndices = new int[indices.Length];
        Array.Fill(mergedIndices, -1);
        var listed = new bool[KeyBlocks];
        for (var row = 0; row < rows; row++)
        {
            Array.Clear(listed);
            foreach (var j in indices.AsSpan(row * KeyBlocks, counts[row]))
            {
                listed[j] = true;
            }
            foreach (var j in fullIndices!.AsSpan(row * KeyBlocks, fullCounts![row]))
            {
                listed[j] = true;
            }
            var n = 0;
            for (var j = 0; j < KeyBlocks; j++)
            {
                if (listed[j])
                {
                    mergedIndices[row * KeyBlocks + n++] = j;
                }
            }
            mergedCounts[row] = n;
        }
        return (mergedCounts, mergedIndices);
    }

    /// <summary>The mask as a dense boolean array [Batch, Heads, QueryBlocks, KeyBlocks] (both lists).</summary>
    public bool[,,,] ToDense()
    {
        var dense = new bool[Batch, Heads, QueryBlocks, KeyBlocks];
        for (var b = 0; b < Batch; b++)
        {
            for (var h = 0; h < Heads; h++)
            {
                for (var i = 0; i < QueryBlocks; i++)
                {
                    var row = (b * Heads + h) * QueryBlocks + i;
                    foreach (var j in indices.AsSpan(row * KeyBlocks, counts[row]))
                    {
                        dense[b, h, i, j] = true;
                    }
                    if (fullCounts is not null)
                    {
                        foreach (var j in fullIndices!.AsSpan(row * KeyBlocks, fullCounts[row]))
                        {
                            dense[b, h, i, j] = true;
                        }
                    }
                }
            }
        }
        return dense;
    }

    /// <summary>Uploads the mask to CUDA device <paramref name="device"/>.</summary>
    /// <param name="device">CUDA ordinal.</param>
    public DeviceBlockMask ToDevice(int device) => new(this, device);

    // ---------------------------------------------------------------------------------------------
    // Builders
    // ---------------------------------------------------------------------------------------------

    /// <summary>
    /// A mask from lists. <paramref name="counts"/> is [batch, heads, queryBlocks]; <paramref name="indices"/>
    /// is [batch, heads, queryBlocks, C] for any capacity C (entries past the count are ignored). Every
    /// listed index must be in [0, keyBlocks), and a block may appear once per row across both lists.
    /// </summary>
    /// <param name="batch">Batch of the mask (1 broadcasts).</param>
    /// <param name="heads">Heads of the mask (1 broadcasts).</param>
    /// <param name="queryBlocks">Number of query blocks.</param>
    /// <param name="keyBlocks">Number of key blocks.</param>
    /// <param name="blockQ">Query rows per block.</param>
    /// <param name="blockK">Key rows per block.</param>
    /// <param name="counts">Listed blocks per row.</param>
    /// <param name="indices">Key block lists.</param>
    /// <param name="fullCounts">Counts of the full lists, or null.</param>
    /// <param name="fullIndices">Full lists (same layout as <paramref name="indices"/>), or null.</param>
    public static BlockMask FromLists(int batch, int heads, int queryBlocks, int keyBlocks, int blockQ, int blockK,
        ReadOnlySpan<int> counts, ReadOnlySpan<int> indices, int[]? fullCounts = null, int[]? fullIndices = null)
    {
        CheckDims(batch, heads, queryBlocks, keyBlocks, blockQ, blockK);
        if ((fullCounts is null) != (fullIndices is null))
        {
            throw new ArgumentException("fullCounts and fullIndices must be given together.",
                fullCounts is null ? nameof(fullCounts) : nameof(fullIndices));
        }
        var rows = batch * heads * queryBlocks;
        var packedCounts = Repack(counts, indices, rows, keyBlocks, nameof(counts), nameof(indices), out var packedIndices);
        int[]? packedFullCounts = null;
        int[]? packedFullIndices = null;
        if (fullCounts is not null)
        {
            packedFullCounts = Repack(fullCounts, fullIndices!, rows, keyBlocks, nameof(fullCounts), nameof(fullIndices),
                out packedFullIndices);
            var seen = new bool[keyBlocks];
            for (var row = 0; row < rows; row++)
            {
                Array.Clear(seen);
                foreach (var j in packedIndices.AsSpan(row * keyBlocks, packedCounts[row]))
                {
                    seen[j] = true;
                }
                foreach (var j in packedFullIndices!.AsSpan(row * keyBlocks, packedFullCounts[row]))
                {
                    if (seen[j])
                    {
                        throw new ArgumentException(
                            $"key block {j} of row {row} is in both indices and fullIndices; a block may be listed once.",
                            nameof(fullIndices));
                    }
                }
            }
        }
        return new BlockMask(batch, heads, queryBlocks, keyBlocks, blockQ, blockK, packedCounts, packedIndices,
            packedFullCounts, packedFullIndices);
    }

    private static int[] Repack(ReadOnlySpan<int> counts, ReadOnlySpan<int> indices, int rows, int keyBlocks,
        string countsName, string indicesName, out int[] packed)
    {
        if (counts.Length != rows)
        {
            throw new ArgumentException(
                $"{countsName} has {counts.Length} entries but the mask has {rows} rows (batch * heads * queryBlocks).", countsName);
        }
        if (indices.Length % rows != 0)
        {
            throw new ArgumentException(
                $"{indicesName} has {indices.Length} entries, not a multiple of the {rows} rows.", indicesName);
        }
        var capacity = indices.Length / rows;
        var outCounts = new int[rows];
        packed = new int[(long)rows * keyBlocks];
        Array.Fill(packed, -1);
        var seen = new bool[keyBlocks];
        for (var row = 0; row < rows; row++)
        {
            var n = counts[row];
            if (n < 0 || n > Math.Min(capacity, keyBlocks))
            {
                throw new ArgumentOutOfRangeException(countsName, n,
                    $"{countsName}[{row}] = {n} must be in 0..{Math.Min(capacity, keyBlocks)}.");
            }
            Array.Clear(seen);
            var list = indices.Slice(row * capacity, n);
            foreach (var j in list)
            {
                if (j < 0 || j >= keyBlocks)
                {
                    throw new ArgumentOutOfRangeException(indicesName, j,
                        $"{indicesName} row {row} lists key block {j}, outside 0..{keyBlocks - 1}.");
                }
                if (seen[j])
                {
                    throw new ArgumentException($"{indicesName} row {row} lists key block {j} twice.", indicesName);
                }
                seen[j] = true;
            }
            // Stored ascending, as the library writes its own lists.
            var k = 0;
            for (var j = 0; j < keyBlocks; j++)
            {
                if (seen[j])
                {
                    packed[row * keyBlocks + k++] = j;
                }
            }
            outCounts[row] = n;
        }
        return outCounts;
    }

    private static void CheckDims(int batch, int heads, int queryBlocks, int keyBlocks, int blockQ, int blockK,
        string sizeName = "keyBlocks")
    {
        static void Positive(int value, string name)
        {
            if (value < 1)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} = {value} must be at least 1.");
            }
        }
        Positive(batch, nameof(batch));
        Positive(heads, nameof(heads));
        Positive(queryBlocks, nameof(queryBlocks));
        Positive(keyBlocks, nameof(keyBlocks));
        Positive(blockQ, nameof(blockQ));
        Positive(blockK, nameof(blockK));
        // Multiplied one dim at a time: four int dims overflow long (65536^4 = 2^64 wraps to 0).
        long entries = 1;
        foreach (var dim in (ReadOnlySpan<int>)[batch, heads, queryBlocks, keyBlocks])
        {
            entries *= dim;
            if (entries > Array.MaxLength)
            {
                throw new ArgumentException(
                    $"the mask [{batch}, {heads}, {queryBlocks}, {keyBlocks}] has more than {Array.MaxLength} entries, too many for one array.",
                    sizeName);
            }
        }
    }

    /// <summary>A mask from a dense boolean block mask [batch, heads, queryBlocks, keyBlocks].</summary>
    /// <param name="mask">True where the key block is computed.</param>
    /// <param name="blockQ">Query rows per block.</param>
    /// <param name="blockK">Key rows per block.</param>
    public static BlockMask FromDense(bool[,,,] mask, int blockQ = 128, int blockK = 128)
    {
        ArgumentNullException.ThrowIfNull(mask);
        int batch = mask.GetLength(0), heads = mask.GetLength(1), nq = mask.GetLength(2), nk = mask.GetLength(3);
        return Build(batch, heads, nq, nk, blockQ, blockK, (b, h, i, j) => mask[b, h, i, j]);
    }

    /// <summary>A mask from a dense boolean block mask stored row-major as [batch, heads, queryBlocks, keyBlocks].</summary>
    /// <param name="mask">True where the key block is computed.</param>
    /// <param name="batch">Batch of the mask.</param>
    /// <param name="heads">Heads of the mask.</param>
    /// <param name="queryBlocks">Number of query blocks.</param>
    /// <param name="keyBlocks">Number of key blocks.</param>
    /// <param name="blockQ">Query rows per block.</param>
    /// <param name="blockK">Key rows per block.</param>
    public static BlockMask FromDense(ReadOnlySpan<bool> mask, int batch, int heads, int queryBlocks, int keyBlocks,
        int blockQ = 128, int blockK = 128)
    {
        CheckDims(batch, heads, queryBlocks, keyBlocks, blockQ, blockK);
        if (mask.Length != (long)batch * heads * queryBlocks * keyBlocks)
        {
            throw new ArgumentException(
                $"mask has {mask.Length} entries but [{batch}, {heads}, {queryBlocks}, {keyBlocks}] needs " +
                $"{(long)batch * heads * queryBlocks * keyBlocks}.", nameof(mask));
        }
        var copy = mask.ToArray();
        return Build(batch, heads, queryBlocks, keyBlocks, blockQ, blockK,
            (b, h, i, j) => copy[(((long)b * heads + h) * queryBlocks + i) * keyBlocks + j]);
    }

    /// <summary>Builds lists from a predicate over (b, h, query block, key block).</summary>
    private static BlockMask Build(int batch, int heads, int queryBlocks, int keyBlocks, int blockQ, int blockK,
        Func<int, int, int, int, bool> listed, string sizeName = "keyBlocks")
    {
        CheckDims(batch, heads, queryBlocks, keyBlocks, blockQ, blockK, sizeName);
        var rows = batch * heads * queryBlocks;
        var counts = new int[rows];
        var indices = new int[(long)rows * keyBlocks];
        Array.Fill(indices, -1);
        for (var b = 0; b < batch; b++)
        {
            for (var h = 0; h < heads; h++)
            {
                for (var i = 0; i < queryBlocks; i++)
                {
                    var row = (b * heads + h) * queryBlocks + i;
                    var n = 0;
                    for (var j = 0; j < keyBlocks; j++)
                    {
                        if (listed(b, h, i, j))
                        {
                            indices[row * keyBlocks + n++] = j;
                        }
                    }
                    counts[row] = n;
                }
            }
        }
        return new BlockMask(batch, heads, queryBlocks, keyBlocks, blockQ, blockK, counts, indices, null, null);
    }

    private static int Blocks(int length, int block, string name)
    {
        if (length < 1)
        {
            throw new ArgumentOutOfRangeException(name, length, $"{name} = {length} must be at least 1.");
        }
        if (block < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(block), block, $"block size {block} must be at least 1.");
        }
        // Rounded up without adding first: length may be int.MaxValue.
        return length / block + (length % block != 0 ? 1 : 0);
    }

    /// <summary>
    /// The blocks that bottom-right causal attention needs: key block j is listed for query block i when
    /// some query of block i sees some key of block j (key t &lt;= query p + seqK - seqQ). Run it with
    /// <see cref="AttentionOptions.Causal"/> set for the exact causal result.
    /// </summary>
    /// <param name="seqQ">Query sequence length.</param>
    /// <param name="seqK">Key sequence length.</param>
    /// <param name="blockQ">Query rows per block.</param>
    /// <param name="blockK">Key rows per block.</param>
    /// <param name="batch">Batch of the mask.</param>
    /// <param name="heads">Heads of the mask.</param>
    public static BlockMask Causal(int seqQ, int seqK, int blockQ = 128, int blockK = 128, int batch = 1, int heads = 1)
    {
        var nq = Blocks(seqQ, blockQ, nameof(seqQ));
        var nk = Blocks(seqK, blockK, nameof(seqK));
        long offset = (long)seqK - seqQ;
        return Build(batch, heads, nq, nk, blockQ, blockK, (_, _, i, j) =>
        {
            var lastQuery = Math.Min((long)(i + 1) * blockQ, seqQ) - 1;
            return (long)j * blockK <= lastQuery + offset;
        }, nameof(seqK));
    }

    /// <summary>
    /// A sliding-window block mask over one sequence: key block j is listed for query block i when some
    /// query p of block i and key t of block j satisfy |p - t| &lt; window (or 0 &lt;= p - t &lt; window
    /// when <paramref name="causal"/>). Blocks are coarse: run with the causal option for exact causality.
    /// </summary>
    /// <param name="seq">Sequence length (queries and keys).</param>
    /// <param name="window">Window size in tokens.</param>
    /// <param name="block">Rows per block (queries and keys).</param>
    /// <param name="causal">Only keys at or before the query.</param>
    /// <param name="batch">Batch of the mask.</param>
    /// <param name="heads">Heads of the mask.</param>
    public static BlockMask SlidingWindow(int seq, int window, int block = 128, bool causal = false, int batch = 1,
        int heads = 1)
    {
        var n = Blocks(seq, block, nameof(seq));
        if (window < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(window), window, $"window = {window} must be at least 1.");
        }
        return Build(batch, heads, n, n, block, block, (_, _, i, j) =>
        {
            long qLo = (long)i * block, qHi = Math.Min((long)(i + 1) * block, seq) - 1;
            long kLo = (long)j * block, kHi = Math.Min((long)(j + 1) * block, seq) - 1;
            // Smallest p - t over the two blocks is qLo - kHi, largest is qHi - kLo.
            long minDiff = qLo - kHi, maxDiff = qHi - kLo;
            return causal
                ? maxDiff >= 0 && Math.Max(minDiff, 0) < window
                : Math.Max(Math.Max(minDiff, -maxDiff), 0) < window;
        }, nameof(seq));
    }

    /// <summary>
    /// A random block mask over one sequence: each candidate block is listed with probability
    /// <paramref name="density"/>, and the diagonal block is always listed so no query row is empty.
    /// With <paramref name="causal"/>, only blocks at or below the diagonal are candidates.
    /// </summary>
    /// <param name="seq">Sequence length (queries and keys).</param>
    /// <param name="block">Rows per block.</param>
    /// <param name="density">Probability that a candidate block is listed, in [0, 1].</param>
    /// <param name="seed">Seed of the random generator (the same seed gives the same mask).</param>
    /// <param name="batch">Batch of the mask.</param>
    /// <param name="heads">Heads of the mask.</param>
    /// <param name="causal">Only blocks at or below the diagonal.</param>
    public static BlockMask Random(int seq, int block, double density, int seed, int batch = 1, int heads = 1,
        bool causal = false)
    {
        var n = Blocks(seq, block, nameof(seq));
        if (!(density >= 0 && density <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(density), density, $"density = {density} must be in [0, 1].");
        }
        CheckDims(batch, heads, n, n, block, block, nameof(seq));  // before the draws are allocated
        var random = new System.Random(seed);
        var draws = new bool[(long)batch * heads * n * n];
        for (long x = 0; x < draws.Length; x++)
        {
            draws[x] = random.NextDouble() < density;
        }
        return Build(batch, heads, n, n, block, block, (b, h, i, j) =>
            i == j || ((!causal || j < i) && draws[(((long)b * heads + h) * n + i) * n + j]), nameof(seq));
    }

    /// <summary>
    /// The block mask of a neighborhood configuration: key block j is listed for query block i when some
    /// query of block i sees some key of block j under <paramref name="config"/> (tokens in row-major
    /// grid order). Blocks are coarse; the neighborhood call itself is exact.
    /// </summary>
    /// <param name="config">The neighborhood configuration.</param>
    /// <param name="block">Rows per block (queries and keys).</param>
    public static BlockMask FromNeighborhood(NeighborhoodConfig config, int block = 128)
    {
        ArgumentNullException.ThrowIfNull(config);
        var seq = config.SequenceLength;
        var n = Blocks(seq, block, nameof(block));
        CheckDims(1, 1, n, n, block, block, nameof(block));  // before the n x n marks are allocated
        var rank = config.SpatialRank;
        var grid = config.Grid.ToArray();
        var dilation = config.Dilation.ToArray();
        // Per dimension and coordinate: the first key coordinate and the key count of the window.
        var first = new int[rank][];
        var count = new int[rank][];
        for (var a = 0; a < rank; a++)
        {
            first[a] = new int[grid[a]];
            count[a] = new int[grid[a]];
            for (var x = 0; x < grid[a]; x++)
            {
                int g = x % dilation[a], u = x / dilation[a];
                var (start, end) = config.Window(a, u, g);
                first[a][x] = g + start * dilation[a];
                count[a][x] = end - start;
            }
        }
        var rowStride = new int[rank];
        rowStride[rank - 1] = 1;
        for (var a = rank - 2; a >= 0; a--)
        {
            rowStride[a] = rowStride[a + 1] * grid[a + 1];
        }
        var listed = new bool[(long)n * n];
        var coords = new int[rank];
        var keyCoords = new int[rank];
        for (var p = 0; p < seq; p++)
        {
            var rest = p;
            for (var a = 0; a < rank; a++)
            {
                coords[a] = rest / rowStride[a];
                rest %= rowStride[a];
            }
            var i = p / block;
            MarkKeys(0, 0);

            void MarkKeys(int axis, int offset)
            {
                var x = coords[axis];
                var d = dilation[axis];
                if (axis == rank - 1)
                {
                    var lo = offset + first[axis][x];
                    var hi = lo + (count[axis][x] - 1) * d;
                    if (d == 1)
                    {
                        for (var j = lo / block; j <= hi / block; j++)
                        {
                            listed[(long)i * n + j] = true;
                        }
                    }
                    else
                    {
                        for (var t = lo; t <= hi; t += d)
                        {
                            listed[(long)i * n + t / block] = true;
                        }
                    }
                    return;
                }
                for (var c = 0; c < count[axis][x]; c++)
                {
                    keyCoords[axis] = first[axis][x] + c * d;
                    MarkKeys(axis + 1, offset + keyCoords[axis] * rowStride[axis]);
                }
            }
        }
        return Build(1, 1, n, n, block, block, (_, _, i, j) => listed[(long)i * n + j], nameof(block));
    }
}

/// <summary>A <see cref="BlockMask"/> uploaded to a CUDA device (int32 lists in device memory).</summary>
public sealed class DeviceBlockMask : IDisposable
{
    internal DeviceBlockMask(BlockMask mask, int device)
    {
        ArgumentNullException.ThrowIfNull(mask);
        Host = mask;
        Device = device;
        var disposables = new List<IDisposable>();
        try
        {
            Counts = Upload(mask.Counts, [mask.Batch, mask.Heads, mask.QueryBlocks]);
            Indices = Upload(mask.Indices, [mask.Batch, mask.Heads, mask.QueryBlocks, mask.KeyBlocks]);
            if (mask.HasFullLists)
            {
                FullCounts = Upload(mask.FullCounts, [mask.Batch, mask.Heads, mask.QueryBlocks]);
                FullIndices = Upload(mask.FullIndices, [mask.Batch, mask.Heads, mask.QueryBlocks, mask.KeyBlocks]);
            }
        }
        catch
        {
            foreach (var d in disposables)
            {
                d.Dispose();
            }
            throw;
        }

        CudaTensor<int> Upload(ReadOnlySpan<int> data, nint[] lengths)
        {
            var tensor = CudaTensor<int>.FromHost(data, lengths, device);
            disposables.Add(tensor);
            return tensor;
        }
    }

    /// <summary>The host mask this was uploaded from.</summary>
    public BlockMask Host { get; }

    /// <summary>CUDA ordinal of the lists.</summary>
    public int Device { get; }

    /// <summary>Counts, int32 [Batch, Heads, QueryBlocks].</summary>
    public CudaTensor<int> Counts { get; }

    /// <summary>Indices, int32 [Batch, Heads, QueryBlocks, KeyBlocks].</summary>
    public CudaTensor<int> Indices { get; }

    /// <summary>Counts of the full lists, or null.</summary>
    public CudaTensor<int>? FullCounts { get; }

    /// <summary>Indices of the full lists, or null.</summary>
    public CudaTensor<int>? FullIndices { get; }

    /// <summary>Frees the device lists.</summary>
    public void Dispose()
    {
        Counts.Dispose();
        Indices.Dispose();
        FullCounts?.Dispose();
        FullIndices?.Dispose();
    }
}
