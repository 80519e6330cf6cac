using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Text;
using SparseAttn;
using SparseAttn.TorchSharp;
using TorchSharp;
using static TorchSharp.torch;

// The CPU backend against libtorch's CPU scaled_dot_product_attention on the same tensors, in one
// process, with an FMA-throughput loop run in the same process as the peak to compare against.
// Usage: dotnet run -c Release --project bench/SparseAttn.CpuVsTorch -- [--reps N] [--out FILE] [--only SUBSTRING]
var reps = 5;
string? outPath = null, only = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--reps": reps = int.Parse(args[++i]); break;
        case "--out": outPath = args[++i]; break;
        case "--only": only = args[++i]; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

var threads = Environment.ProcessorCount;
torch.set_num_threads(threads);
var report = new StringBuilder();
void Line(string s) { Console.WriteLine(s); report.AppendLine(s); }

// The FMA peak is measured before every case (each the best of five short trials) and the median
// kept: on a shared machine a single measurement can land in a busy moment.
var peaks256 = new List<double>();
var peaks512 = new List<double>();
void MeasurePeak()
{
    peaks256.Add(FmaPeak.Measure(threads, wide: false));
    if (Vector512.IsHardwareAccelerated) peaks512.Add(FmaPeak.Measure(threads, wide: true));
}
var isa = SparseAttnLibrary.CpuInstructionSet;
var rows = new List<(string Name, double OursMs, double? TorchMs, double Flops, double Diff)>();

var cases = new List<Case>
{
    Case.Dense("dense fp32 B1 H8 S4096 D64", ScalarType.Float32, 1, 8, 4096, 4096, 64, false),
    Case.Dense("dense fp32 B1 H8 S4096 D64 causal", ScalarType.Float32, 1, 8, 4096, 4096, 64, true),
    Case.Dense("dense bf16 B1 H8 S4096 D64", ScalarType.BFloat16, 1, 8, 4096, 4096, 64, false),
    Case.Dense("dense bf16 B1 H8 S4096 D64 causal", ScalarType.BFloat16, 1, 8, 4096, 4096, 64, true),
    Case.Dense("dense fp32 B1 H8 S1024 D128", ScalarType.Float32, 1, 8, 1024, 1024, 128, false),
    Case.Dense("dense fp32 B1 H8 S1024 D128 causal", ScalarType.Float32, 1, 8, 1024, 1024, 128, true),
    Case.Dense("decode fp32 B1 H32 Sq1 Sk32768 D128", ScalarType.Float32, 1, 32, 1, 32768, 128, false),
    Case.Neighborhood("neighborhood fp32 B1 H8 64x64 window 13x13 D64", 1, 8, 64, 13, 64),
    Case.BlockSparse("block-sparse fp32 B1 H8 S4096 D64 128x128 blocks, density 0.25", 1, 8, 4096, 64, 0.25),
};
foreach (var c in cases)
{
    if (only is not null && !c.Name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
    MeasurePeak();
    using var scope = torch.NewDisposeScope();
    c.Setup();
    c.Ours();  // warm-up, and the result to compare
    var oursOut = c.LastOurs!;
    double diff = double.NaN;
    if (c.Torch is not null)
    {
        c.Torch();
        diff = (oursOut.to_type(ScalarType.Float32) - c.LastTorch!.to_type(ScalarType.Float32)).abs().max().item<float>();
    }
    var ours = new List<double>();
    var theirs = new List<double>();
    for (var r = 0; r < reps; r++)
    {
        ours.Add(Time(c.Ours));
        if (c.Torch is not null) theirs.Add(Time(c.Torch));
    }
    rows.Add((c.Name, Median(ours), c.Torch is null ? null : Median(theirs), c.Flops, diff));
    Console.Error.WriteLine($"{c.Name}: ours {Median(ours):F1} ms");
}
MeasurePeak();
var peak256 = Median(peaks256);
var peak512 = peaks512.Count > 0 ? Median(peaks512) : 0.0;
// The machine's peak: the 512-bit figure where the CPU has AVX-512 (whatever level runs).
var peak = peak512 > 0 ? peak512 : peak256;
var cpuModel = File.Exists("/proc/cpuinfo")
    ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
    : null;
Line($"CPU: {cpuModel ?? "unknown"}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; SparseAttn {SparseAttnLibrary.Version}, TorchSharp-cpu 0.107.0");
Line($"CPU kernels: {isa}; threads: {threads} (ours and torch); reps: {reps} (median; calls alternate ours/torch, 200 ms pause before each)");
Line($"FMA peak, median of the measurements before each case: 256-bit {peak256:F1} GFLOP/s, 512-bit {(peak512 > 0 ? peak512.ToString("F1") : "n/a")} GFLOP/s; " +
     $"the fraction column uses the {(peak == peak512 ? "512" : "256")}-bit figure (the machine's peak)");
Line("");
Line("| case | ours ms | torch ms | ours GFLOP/s | torch GFLOP/s | ours/torch speed | ours % of FMA peak | max abs diff |");
Line("|---|---|---|---|---|---|---|---|");
foreach (var (name, oursMs, torchMs, flops, diff) in rows)
{
    var oursG = flops / (oursMs * 1e6);
    if (torchMs is not { } tm)
    {
        Line($"| {name} | {oursMs:F1} | - | {oursG:F1} | - | - | {100 * oursG / peak:F0}% | - |");
        continue;
    }
    var torchG = flops / (tm * 1e6);
    Line($"| {name} | {oursMs:F1} | {tm:F1} | {oursG:F1} | {torchG:F1} | {tm / oursMs:F2}x | {100 * oursG / peak:F0}% | {diff:E1} |");
}
Line("");
Line("GFLOP/s = 4 * B * H * D * (query, key) pairs computed / time: dense S_q * S_k, causal S(S+1)/2, " +
     "neighborhood B*H*S*169 allowed pairs, block-sparse the pairs of the listed blocks. The neighborhood and block-sparse " +
     "torch columns are scaled_dot_product_attention with the same boolean mask [S, S].");
if (outPath is not null) File.WriteAllText(outPath, report.ToString());
return 0;

// A pause before each timed call: libtorch's OpenMP workers spin for a while after a parallel
// region, which would slow whichever call comes next on a machine with few cores.
static double Time(Action a)
{
    Thread.Sleep(200);
    var sw = Stopwatch.StartNew();
    a();
    return sw.Elapsed.TotalMilliseconds;
}

static double Median(List<double> xs)
{
    var s = xs.OrderBy(x => x).ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
}

/// <summary>One benchmark case: inputs in torch's [B, H, S, D] layout, read by both libraries.</summary>
internal sealed class Case
{
    public required string Name { get; init; }
    public required double Flops { get; init; }
    public required Action Setup { get; init; }
    public required Action Ours { get; init; }
    public Action? Torch { get; init; }
    public Tensor? LastOurs { get; set; }
    public Tensor? LastTorch { get; set; }

    private static Tensor Input(ScalarType type, long b, long h, long s, long d) =>
        torch.randn(b, h, s, d, dtype: ScalarType.Float32).to_type(type).DetachFromDisposeScope();

    public static Case Dense(string name, ScalarType type, long b, long h, long sq, long sk, long d, bool causal)
    {
        Tensor? q = null, k = null, v = null, o = null;
        double pairs = causal ? sq * (sq + 1.0) / 2 + sq * (double)(sk - sq) : (double)sq * sk;
        Case? self = null;
        self = new Case
        {
            Name = name,
            Flops = 4.0 * b * h * d * pairs,
            Setup = () =>
            {
                q = Input(type, b, h, sq, d); k = Input(type, b, h, sk, d); v = Input(type, b, h, sk, d);
                o = torch.empty_like(q).DetachFromDisposeScope();
            },
            Ours = () =>
            {
                TorchAttention.Dense(q!, k!, v!, o!, null, new AttentionOptions { Causal = causal }, TensorLayout.BHSD);
                self!.LastOurs = o;
            },
            Torch = () =>
            {
                using var noGrad = torch.no_grad();
                self!.LastTorch?.Dispose();
                // Top-left causal equals the library's bottom-right alignment when S_q == S_k.
                self.LastTorch = nn.functional.scaled_dot_product_attention(q!, k!, v!, is_casual: causal).DetachFromDisposeScope();
            },
        };
        return self;
    }

    public static Case Neighborhood(string name, long b, long h, int side, int window, long d)
    {
        var config = NeighborhoodConfig.Create2D(grid: (side, side), kernel: (window, window));
        long s = (long)side * side;
        Tensor? q = null, k = null, v = null, o = null, mask = null;
        Case? self = null;
        self = new Case
        {
            Name = name,
            Flops = 4.0 * b * h * d * config.PairCount,
            Setup = () =>
            {
                q = Input(ScalarType.Float32, b, h, s, d); k = Input(ScalarType.Float32, b, h, s, d); v = Input(ScalarType.Float32, b, h, s, d);
                o = torch.empty_like(q).DetachFromDisposeScope();
                var allowed = new bool[s * s];
                for (int qi = 0; qi < s; qi++)
                {
                    int qy = qi / side, qx = qi % side;
                    int y0 = Math.Clamp(qy - window / 2, 0, side - window), x0 = Math.Clamp(qx - window / 2, 0, side - window);
                    for (int y = y0; y < y0 + window; y++)
                        for (int x = x0; x < x0 + window; x++) allowed[qi * s + y * side + x] = true;
                }
                mask = torch.tensor(allowed, new long[] { s, s }).DetachFromDisposeScope();
            },
            Ours = () =>
            {
                TorchAttention.Neighborhood(q!, k!, v!, o!, config, null, null, TensorLayout.BHSD);
                self!.LastOurs = o;
            },
            Torch = () =>
            {
                using var noGrad = torch.no_grad();
                self!.LastTorch?.Dispose();
                self.LastTorch = nn.functional.scaled_dot_product_attention(q!, k!, v!, mask).DetachFromDisposeScope();
            },
        };
        return self;
    }

    public static Case BlockSparse(string name, long b, long h, int s, long d, double density)
    {
        const int block = 128;
        var blockMask = BlockMask.Random(seq: s, block: block, density: density, seed: 1);
        Tensor? q = null, k = null, v = null, o = null, mask = null;
        Case? self = null;
        self = new Case
        {
            Name = name,
            Flops = 4.0 * b * h * d * blockMask.PairCount(s, s, causal: false),
            Setup = () =>
            {
                q = Input(ScalarType.Float32, b, h, s, d); k = Input(ScalarType.Float32, b, h, s, d); v = Input(ScalarType.Float32, b, h, s, d);
                o = torch.empty_like(q).DetachFromDisposeScope();
                var allowed = new bool[(long)s * s];
                int n = s / block;
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++)
                        if (blockMask.IsListed(0, 0, i, j))
                            for (int r = i * block; r < (i + 1) * block; r++)
                                Array.Fill(allowed, true, r * s + j * block, block);
                mask = torch.tensor(allowed, new long[] { s, s }).DetachFromDisposeScope();
            },
            Ours = () =>
            {
                TorchAttention.BlockSparse(q!, k!, v!, o!, blockMask, null, null, null, null, TensorLayout.BHSD);
                self!.LastOurs = o;
            },
            Torch = () =>
            {
                using var noGrad = torch.no_grad();
                self!.LastTorch?.Dispose();
                self.LastTorch = nn.functional.scaled_dot_product_attention(q!, k!, v!, mask).DetachFromDisposeScope();
            },
        };
        return self;
    }
}

/// <summary>Fused multiply-add throughput: twelve independent accumulators per thread, every thread busy.</summary>
internal static class FmaPeak
{
    public static double Measure(int threads, bool wide)
    {
        const long iterations = 20_000_000;
        double best = 0;
        for (var trial = 0; trial < 5; trial++)
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                if (wide) Run512(iterations); else Run256(iterations);
            });
            var seconds = sw.Elapsed.TotalSeconds;
            var lanes = wide ? 16 : 8;
            best = Math.Max(best, 2.0 * 12 * lanes * iterations * threads / seconds / 1e9);
        }
        return best;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Run256(long n)
    {
        var a = Vector256.Create(0.999999f);
        var c = Vector256.Create(1e-7f);
        Vector256<float> x0 = Vector256.Create(1f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0,
            x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0;
        for (long i = 0; i < n; i++)
        {
            x0 = Vector256.FusedMultiplyAdd(x0, a, c); x1 = Vector256.FusedMultiplyAdd(x1, a, c);
            x2 = Vector256.FusedMultiplyAdd(x2, a, c); x3 = Vector256.FusedMultiplyAdd(x3, a, c);
            x4 = Vector256.FusedMultiplyAdd(x4, a, c); x5 = Vector256.FusedMultiplyAdd(x5, a, c);
            x6 = Vector256.FusedMultiplyAdd(x6, a, c); x7 = Vector256.FusedMultiplyAdd(x7, a, c);
            x8 = Vector256.FusedMultiplyAdd(x8, a, c); x9 = Vector256.FusedMultiplyAdd(x9, a, c);
            x10 = Vector256.FusedMultiplyAdd(x10, a, c); x11 = Vector256.FusedMultiplyAdd(x11, a, c);
        }
        return (x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11).GetElement(0);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Run512(long n)
    {
        var a = Vector512.Create(0.999999f);
        var c = Vector512.Create(1e-7f);
        Vector512<float> x0 = Vector512.Create(1f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0,
            x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0;
        for (long i = 0; i < n; i++)
        {
            x0 = Vector512.FusedMultiplyAdd(x0, a, c); x1 = Vector512.FusedMultiplyAdd(x1, a, c);
            x2 = Vector512.FusedMultiplyAdd(x2, a, c); x3 = Vector512.FusedMultiplyAdd(x3, a, c);
            x4 = Vector512.FusedMultiplyAdd(x4, a, c); x5 = Vector512.FusedMultiplyAdd(x5, a, c);
            x6 = Vector512.FusedMultiplyAdd(x6, a, c); x7 = Vector512.FusedMultiplyAdd(x7, a, c);
            x8 = Vector512.FusedMultiplyAdd(x8, a, c); x9 = Vector512.FusedMultiplyAdd(x9, a, c);
            x10 = Vector512.FusedMultiplyAdd(x10, a, c); x11 = Vector512.FusedMultiplyAdd(x11, a, c);
        }
        return (x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11).GetElement(0);
    }
}
