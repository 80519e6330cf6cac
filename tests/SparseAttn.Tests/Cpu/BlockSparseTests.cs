using SparseAttn.Tests.Oracle;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Cpu;

public enum PermutationKind { None, Shared, PerHead }

[TestFixture]
public class BlockSparseTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        // (B, Sq, Sk, Hq, Hkv, D, blockQ, blockK)
        var shapes = new (int, int, int, int, int, int, int, int)[]
        {
            (2, 150, 200, 2, 1, 16, 64, 64),
            (1, 300, 300, 2, 2, 8, 128, 64),
            (1, 64, 64, 1, 1, 32, 64, 64),
            (1, 70, 260, 4, 2, 8, 64, 128),
            (1, 333, 129, 2, 1, 8, 128, 128),
        };
        int n = 0;
        foreach (var (b, sq, sk, hq, hkv, d, bq, bk) in shapes)
        foreach (bool causal in new[] { false, true })
        foreach (var keyPerm in new[] { PermutationKind.None, PermutationKind.PerHead, PermutationKind.Shared })
        {
            var queryPerm = (n % 3) switch { 0 => PermutationKind.None, 1 => PermutationKind.PerHead, _ => PermutationKind.Shared };
            var dt = DataTypes.All[n % 3];
            bool broadcastMask = n % 4 == 1;
            bool fullLists = n % 5 == 2;
            yield return new TestCaseData(dt, b, sq, sk, hq, hkv, d, bq, bk, causal, keyPerm, queryPerm, broadcastMask, fullLists);
            n++;
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesOracle(DataType dt, int b, int sq, int sk, int hq, int hkv, int d, int bq, int bk, bool causal,
        PermutationKind keyPerm, PermutationKind queryPerm, bool broadcastMask, bool fullLists)
    {
        var shape = new AttentionShape(b, sq, sk, hq, hkv, d);
        var setup = new Setup(shape, bq, bk, causal, keyPerm, queryPerm, broadcastMask, fullLists);
        switch (dt)
        {
            case DataType.Float32: Run<float>(setup); break;
            case DataType.Float16: Run<Half>(setup); break;
            default: Run<BFloat16>(setup); break;
        }
    }

    public sealed record Setup(AttentionShape Shape, int BlockQ, int BlockK, bool Causal, PermutationKind KeyPerm,
        PermutationKind QueryPerm, bool BroadcastMask, bool FullLists, CausalAlignment Alignment = CausalAlignment.BottomRight);

    [TestCase(DataType.Float32, 1, 70, 260, 64, 128, PermutationKind.None, PermutationKind.None)]
    [TestCase(DataType.BFloat16, 2, 150, 200, 64, 64, PermutationKind.PerHead, PermutationKind.None)]
    [TestCase(DataType.Float32, 1, 333, 129, 128, 128, PermutationKind.Shared, PermutationKind.PerHead)]
    [TestCase(DataType.Float16, 1, 200, 70, 64, 64, PermutationKind.None, PermutationKind.Shared)]
    public void TopLeftCausalMatchesOracle(DataType dt, int b, int sq, int sk, int bq, int bk, PermutationKind keyPerm,
        PermutationKind queryPerm)
    {
        var setup = new Setup(new AttentionShape(b, sq, sk, 2, 1, 16), bq, bk, true, keyPerm, queryPerm, false, sq > sk,
            CausalAlignment.TopLeft);
        switch (dt)
        {
            case DataType.Float32: Run<float>(setup); break;
            case DataType.Float16: Run<Half>(setup); break;
            default: Run<BFloat16>(setup); break;
        }
    }

    internal static int[] RandomPermutation(Random rng, int n)
    {
        var p = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    /// <summary>Flat permutation for the API ([S] or [B, H, S]) and its [B, H, S] expansion for the oracle.</summary>
    internal static (int[] Flat, int[,,]? Expanded) Permutations(Random rng, PermutationKind kind, int batch, int heads, int n)
    {
        if (kind == PermutationKind.None) return (Array.Empty<int>(), null);
        var expanded = new int[batch, heads, n];
        var flat = new List<int>();
        int[] shared = RandomPermutation(rng, n);
        if (kind == PermutationKind.Shared) flat.AddRange(shared);
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            var p = kind == PermutationKind.Shared ? shared : RandomPermutation(rng, n);
            if (kind == PermutationKind.PerHead) flat.AddRange(p);
            for (int x = 0; x < n; x++) expanded[b, h, x] = p[x];
        }
        return (flat.ToArray(), expanded);
    }

    private static void Run<T>(Setup setup) where T : unmanaged
    {
        var s = setup.Shape;
        int seed = TestRandom.SeedFor($"bsa {typeof(T).Name} {setup}");
        var c = AttentionCase<T>.Create(s, seed, extra: setup.ToString());
        var rng = new Random(seed ^ 0x5eed);
        int nq = ReferenceBlockSparse.BlockCount(s.SeqQ, setup.BlockQ), nk = ReferenceBlockSparse.BlockCount(s.SeqK, setup.BlockK);
        int mb = setup.BroadcastMask ? 1 : s.Batch, mh = setup.BroadcastMask ? 1 : s.HeadsQ;
        var dense = new bool[mb, mh, nq, nk];
        var isFull = new bool[mb, mh, nq, nk];
        for (int b = 0; b < mb; b++)
        for (int h = 0; h < mh; h++)
        for (int i = 0; i < nq; i++)
        {
            if (rng.NextDouble() < 0.15) continue; // some query blocks list nothing
            for (int j = 0; j < nk; j++)
            {
                dense[b, h, i, j] = rng.NextDouble() < 0.5;
                isFull[b, h, i, j] = dense[b, h, i, j] && rng.NextDouble() < 0.5;
            }
        }
        BlockMask mask = setup.FullLists ? ListsWithFullBlocks(dense, isFull, setup.BlockQ, setup.BlockK)
            : BlockMask.FromDense(dense, setup.BlockQ, setup.BlockK);
        var expandedMask = new bool[s.Batch, s.HeadsQ, nq, nk];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.HeadsQ; h++)
        for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++)
            expandedMask[b, h, i, j] = dense[setup.BroadcastMask ? 0 : b, setup.BroadcastMask ? 0 : h, i, j];

        var (keyFlat, keyExpanded) = Permutations(rng, setup.KeyPerm, s.Batch, s.HeadsQ, s.SeqK);
        var (queryFlat, queryExpanded) = Permutations(rng, setup.QueryPerm, s.Batch, s.HeadsQ, s.SeqQ);
        Attention.BlockSparse<T>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, c.Lse.Span, mask,
            new AttentionOptions { Causal = setup.Causal, CausalAlignment = setup.Alignment }, keyFlat, queryFlat);
        var spec = new BlockSparseSpec
        {
            BlockQ = setup.BlockQ, BlockK = setup.BlockK, Mask = expandedMask, Causal = setup.Causal, Alignment = setup.Alignment,
            KeyPermutation = keyExpanded, QueryPermutation = queryExpanded,
        };
        c.CheckAgainstOracle(ReferenceBlockSparse.Mask(spec, s), c.ResolvedScale(0), checkLse: true);
    }

    private static BlockMask ListsWithFullBlocks(bool[,,,] dense, bool[,,,] isFull, int bq, int bk)
    {
        int mb = dense.GetLength(0), mh = dense.GetLength(1), nq = dense.GetLength(2), nk = dense.GetLength(3);
        int rows = mb * mh * nq;
        var counts = new int[rows];
        var indices = new int[rows * nk];
        var fullCounts = new int[rows];
        var fullIndices = new int[rows * nk];
        Array.Fill(indices, -1);
        Array.Fill(fullIndices, -1);
        for (int b = 0; b < mb; b++)
        for (int h = 0; h < mh; h++)
        for (int i = 0; i < nq; i++)
        {
            int row = (b * mh + h) * nq + i;
            // Descending order on purpose: lists need not be sorted.
            for (int j = nk - 1; j >= 0; j--)
            {
                if (!dense[b, h, i, j]) continue;
                if (isFull[b, h, i, j]) fullIndices[row * nk + fullCounts[row]++] = j;
                else indices[row * nk + counts[row]++] = j;
            }
        }
        return BlockMask.FromLists(mb, mh, nq, nk, bq, bk, counts, indices, fullCounts, fullIndices);
    }

    [Test]
    public void CausalMaskOverEveryBlockEqualsDenseCausal()
    {
        var shape = new AttentionShape(1, 200, 260, 2, 1, 16);
        int seed = TestRandom.SeedFor(nameof(CausalMaskOverEveryBlockEqualsDenseCausal));
        var c = AttentionCase<float>.Create(shape, seed);
        var dense = AttentionCase<float>.Create(shape, seed);
        var mask = BlockMask.Causal(200, 260, 64, 64);
        Attention.BlockSparse<float>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, mask,
            new AttentionOptions { Causal = true });
        Attention.Dense<float>(dense.QTensor.ReadOnly, dense.KTensor.ReadOnly, dense.VTensor.ReadOnly, dense.Output.Span,
            new AttentionOptions { Causal = true });
        Tolerance.AssertClose("block-sparse vs dense", c.Output.ToLogical(), dense.Output.ToLogical(), 2e-6, c.Context);
    }
}

[TestFixture]
public class BlockMaskTests
{
    private static bool[,] Row(BlockMask m)
    {
        var r = new bool[m.QueryBlocks, m.KeyBlocks];
        for (int i = 0; i < m.QueryBlocks; i++)
        for (int j = 0; j < m.KeyBlocks; j++)
            r[i, j] = m.IsListed(0, 0, i, j);
        return r;
    }

    [Test]
    public void FromDenseRoundTripsThroughToDense()
    {
        int seed = TestRandom.SeedFor(nameof(FromDenseRoundTripsThroughToDense));
        var rng = new Random(seed);
        var dense = new bool[2, 3, 5, 7];
        for (int b = 0; b < 2; b++) for (int h = 0; h < 3; h++) for (int i = 0; i < 5; i++) for (int j = 0; j < 7; j++)
            dense[b, h, i, j] = rng.Next(2) == 1;
        var mask = BlockMask.FromDense(dense, 64, 128);
        Assert.That(mask.ToDense(), Is.EqualTo(dense), $"seed {seed}");
        int listed = dense.Cast<bool>().Count(x => x);
        Assert.That(mask.Density, Is.EqualTo(listed / (2.0 * 3 * 5 * 7)).Within(1e-12));
        for (int r = 0; r < 2 * 3 * 5; r++)
        {
            var row = mask.Indices.Slice(r * 7, 7).ToArray();
            var used = row[..mask.Counts[r]];
            Assert.That(used, Is.Ordered.Ascending, "library lists are ascending");
            Assert.That(row[mask.Counts[r]..], Is.All.EqualTo(-1), "entries past the count are -1");
        }
    }

    [Test]
    public void FromListsAcceptsAnyCapacityAndOrder()
    {
        // Capacity 2 per row, descending entries, junk past the count.
        var counts = new[] { 2, 0, 1 };
        var mask = BlockMask.FromLists(1, 1, 3, 4, 64, 64, counts, new[] { 3, 0, 7, 7, 1, 7 });
        Assert.That(Row(mask), Is.EqualTo(new bool[,] { { true, false, false, true }, { false, false, false, false }, { false, true, false, false } }));
    }

    [Test]
    public void CausalBuilderListsBlocksTouchingTheBottomRightDiagonal()
    {
        var mask = BlockMask.Causal(100, 300, 64, 64);
        // offset 200: query block 0 (rows 0..63) sees keys up to 263 -> key blocks 0..4; block 1 up to 299 -> all 5.
        Assert.That(Row(mask), Is.EqualTo(new bool[,] { { true, true, true, true, true }, { true, true, true, true, true } }));
        mask = BlockMask.Causal(300, 300, 128, 128);
        Assert.That(Row(mask), Is.EqualTo(new bool[,] { { true, false, false }, { true, true, false }, { true, true, true } }));
        Assert.That(mask.PairCount(300, 300, true), Is.EqualTo(300L * 301 / 2));
    }

    [Test]
    public void PairCountMatchesTheOracle()
    {
        int seed = TestRandom.SeedFor(nameof(PairCountMatchesTheOracle));
        var rng = new Random(seed);
        var dense = new bool[1, 1, 3, 4];
        var flat = new bool[3, 4];
        for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) flat[i, j] = dense[0, 0, i, j] = rng.Next(2) == 1;
        var mask = BlockMask.FromDense(dense, 64, 64);
        foreach (bool causal in new[] { false, true })
            Assert.That(mask.PairCount(150, 200, causal), Is.EqualTo(ReferenceBlockSparse.PairCount(flat, 150, 200, 64, 64, causal)),
                $"seed {seed}, causal {causal}");
    }

    [Test]
    public void SlidingWindowListsEveryBlockWithAPairInTheWindow()
    {
        foreach (bool causal in new[] { false, true })
        {
            const int seq = 500, window = 100, block = 64;
            var mask = BlockMask.SlidingWindow(seq, window, block, causal);
            int n = (seq + block - 1) / block;
            for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                bool any = false;
                for (int p = i * block; p < Math.Min(seq, (i + 1) * block) && !any; p++)
                for (int t = j * block; t < Math.Min(seq, (j + 1) * block) && !any; t++)
                    any = causal ? p - t >= 0 && p - t < window : Math.Abs(p - t) < window;
                Assert.That(mask.IsListed(0, 0, i, j), Is.EqualTo(any), $"causal {causal}, block ({i}, {j})");
            }
        }
    }

    [Test]
    public void RandomIsReproducibleKeepsTheDiagonalAndRespectsCausal()
    {
        var a = BlockMask.Random(1000, 64, 0.3, seed: 42, batch: 2, heads: 2, causal: true);
        var b = BlockMask.Random(1000, 64, 0.3, seed: 42, batch: 2, heads: 2, causal: true);
        Assert.That(a.ToDense(), Is.EqualTo(b.ToDense()));
        var d = a.ToDense();
        for (int x = 0; x < 2; x++) for (int h = 0; h < 2; h++)
        for (int i = 0; i < a.QueryBlocks; i++)
        {
            Assert.That(d[x, h, i, i], Is.True);
            for (int j = i + 1; j < a.KeyBlocks; j++) Assert.That(d[x, h, i, j], Is.False);
        }
        Assert.That(a.Density, Is.InRange(0.1, 0.5));
    }
}
