using System.CommandLine;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Spectre.Console;

namespace SparseAttn.Cli;

/// <summary>Everything <c>sparseattn run</c> was asked to do.</summary>
internal sealed record RunSettings
{
    public string Operation { get; init; } = "dense";
    public DeviceKind Device { get; init; }
    public int DeviceIndex { get; init; }
    public DataType? DataType { get; init; }
    public int Batch { get; init; } = 1;
    public int Seq { get; init; } = 1024;
    public int? SeqK { get; init; }
    public int Heads { get; init; } = 8;
    public int? KvHeads { get; init; }
    public int HeadDim { get; init; } = 64;
    public bool Causal { get; init; }
    public CausalAlignment CausalAlignment { get; init; }
    public bool ComparePermutation { get; init; }
    public float Scale { get; init; }
    public string? Grid { get; init; }
    public string? Kernel { get; init; }
    public string? Dilation { get; init; }
    public string? Stride { get; init; }
    public string? CausalDims { get; init; }
    public int Block { get; init; } = 128;
    public string Pattern { get; init; } = "random";
    public double Density { get; init; } = 0.1;
    public int Window { get; init; } = 1024;
    public int Segment { get; init; } = 256;
    public float Tau { get; init; } = 0.9f;
    public int Seed { get; init; } = 1;
    public string? QueryFile { get; init; }
    public string? KeyFile { get; init; }
    public string? ValueFile { get; init; }
    public int Reps { get; init; } = 5;
    public int Warmup { get; init; } = 1;
    public int CheckRows { get; init; } = 64;
    public bool NoCheck { get; init; }
    public string? OutputFile { get; init; }
    public int Threads { get; init; }
    public bool NoCompare { get; init; }
}

/// <summary>The outcome of one run, for printing and for tests.</summary>
internal sealed record RunReport(string Operation, string Device, DataType DataType, long[] QueryShape, long[] KeyShape,
    long AllowedPairs, long DensePairs, double? PlanMilliseconds, double MedianMilliseconds, double MinMilliseconds, int Reps,
    double Gflops, double? MaxError, double Tolerance, string CheckedAgainst, bool Passed)
{
    /// <summary>The dense call timed on the same shape and device ("dense" or "dense, causal"); null when not compared.</summary>
    public string? Baseline { get; init; }

    /// <summary>Median time of <see cref="Baseline"/>.</summary>
    public double? BaselineMedianMilliseconds { get; init; }

    /// <summary>Baseline time over this run's time (below 1: the sparse call is slower than dense).</summary>
    public double? SpeedupOverBaseline => BaselineMedianMilliseconds is { } b && MedianMilliseconds > 0 ? b / MedianMilliseconds : null;

    /// <summary>True when the sparse call took longer than the dense baseline.</summary>
    public bool SlowerThanBaseline => SpeedupOverBaseline is < 1.0;

    /// <summary>pbs: the plan's output against dense causal attention on the same inputs; null when not compared.</summary>
    public PbsAccuracy? Accuracy { get; init; }

    /// <summary>pbs with --compare-permutation: the same planner with the key permutation off.</summary>
    public PbsAccuracy? AccuracyWithoutPermutation { get; init; }
}

/// <summary>
/// How close a PBS output is to dense causal attention: the listed blocks against the causal
/// baseline, the attention mass the listed keys cover per query row (exp(lse_pbs - lse_dense)),
/// the relative L1 error and cosine similarity of the whole output.
/// </summary>
internal sealed record PbsAccuracy(double CausalDensity, double MassMean, double MassMin, double RowsBelow90Percent,
    double RelativeL1, double Cosine, double? PlanMilliseconds = null, double? RunMilliseconds = null)
{
    /// <summary>The metrics of <paramref name="sparse"/> against <paramref name="dense"/> (same layout) and their LSEs.</summary>
    public static PbsAccuracy Measure(ReadOnlySpan<float> sparse, ReadOnlySpan<float> dense, ReadOnlySpan<float> lseSparse,
        ReadOnlySpan<float> lseDense, double causalDensity)
    {
        double diff = 0, norm = 0, dot = 0, ss = 0, dd = 0;
        for (var i = 0; i < sparse.Length; i++)
        {
            double a = sparse[i], b = dense[i];
            diff += Math.Abs(a - b);
            norm += Math.Abs(b);
            dot += a * b;
            ss += a * a;
            dd += b * b;
        }
        double massSum = 0, massMin = double.PositiveInfinity;
        long rows = 0, below = 0;
        for (var r = 0; r < lseDense.Length; r++)
        {
            if (float.IsNegativeInfinity(lseDense[r]))
            {
                continue;  // a row with no key: nothing to cover
            }
            var mass = float.IsNegativeInfinity(lseSparse[r]) ? 0 : Math.Min(1.0, Math.Exp((double)lseSparse[r] - lseDense[r]));
            massSum += mass;
            massMin = Math.Min(massMin, mass);
            rows++;
            below += mass < 0.9 ? 1 : 0;
        }
        return new PbsAccuracy(causalDensity, rows == 0 ? 1 : massSum / rows, rows == 0 ? 1 : massMin,
            rows == 0 ? 0 : (double)below / rows, norm == 0 ? (diff == 0 ? 0 : double.PositiveInfinity) : diff / norm,
            ss == 0 || dd == 0 ? (ss == dd ? 1 : 0) : dot / Math.Sqrt(ss * dd));
    }
}

/// <summary><c>sparseattn run</c>: one operation on random or .npy inputs, checked against a reference and timed.</summary>
internal static class RunCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var operation = new Argument<string>("operation") { Description = "dense | neighborhood | block-sparse | pbs" }
            .AcceptOnlyFromAmong("dense", "neighborhood", "block-sparse", "pbs");
        var device = new Option<string>("--device") { Description = "cpu or cuda (cuda:N picks a device).", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string?>("--dtype") { Description = "float32 (CPU only) | float16 | bfloat16 (default: float32 on cpu, float16 on cuda)." }
            .AcceptOnlyFromAmong("float32", "float16", "bfloat16");
        var batch = new Option<int>("--batch", "-b") { Description = "Batch B.", DefaultValueFactory = _ => 1 };
        var seq = new Option<int?>("--seq", "-s")
        {
            Description = "Sequence length S (queries; keys too unless --seq-k). Default: the token count of --grid for neighborhood, else 1024.",
        };
        var seqK = new Option<int?>("--seq-k") { Description = "Key sequence length (dense only)." };
        var heads = new Option<int>("--heads") { Description = "Query heads H_q.", DefaultValueFactory = _ => 8 };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Key/value heads H_kv (GQA; default H_q)." };
        var headDim = new Option<int>("--head-dim", "-d") { Description = "Head dim D.", DefaultValueFactory = _ => 64 };
        var causal = new Option<bool>("--causal") { Description = "Causal for dense and block-sparse (aligned by --causal-alignment)." };
        var alignment = new Option<string>("--causal-alignment")
        {
            Description = "Where the causal diagonal sits when S_q != S_k: bottom-right (FlashAttention) or top-left (torch SDPA is_causal).",
            DefaultValueFactory = _ => "bottom-right",
        }.AcceptOnlyFromAmong("bottom-right", "top-left");
        var comparePermutation = new Option<bool>("--compare-permutation")
        {
            Description = "pbs: also plan and run with the key permutation off and report both against dense causal.",
        };
        var scale = new Option<float>("--scale") { Description = "Softmax scale (0: 1/sqrt(D))." };
        var grid = new Option<string?>("--grid") { Description = "neighborhood: token grid, e.g. 64x64; sets S to its token count (default: S as 1-D)." };
        var kernel = new Option<string?>("--kernel") { Description = "neighborhood: window per dimension, e.g. 7x7." };
        var dilation = new Option<string?>("--dilation") { Description = "neighborhood: dilation per dimension." };
        var stride = new Option<string?>("--stride") { Description = "neighborhood: stride per dimension." };
        var causalDims = new Option<string?>("--causal-dims") { Description = "neighborhood: causal flag per dimension, e.g. 1x0." };
        var block = new Option<int>("--block") { Description = "block-sparse / pbs: block size, 64 or 128.", DefaultValueFactory = _ => 128 };
        var pattern = new Option<string>("--pattern") { Description = "block-sparse mask: random | window | causal.", DefaultValueFactory = _ => "random" }
            .AcceptOnlyFromAmong("random", "window", "causal");
        var density = new Option<double>("--density") { Description = "block-sparse random mask: block probability.", DefaultValueFactory = _ => 0.1 };
        var window = new Option<int>("--window") { Description = "block-sparse window mask: window in tokens.", DefaultValueFactory = _ => 1024 };
        var segment = new Option<int>("--segment") { Description = "pbs: permutation segment in tokens.", DefaultValueFactory = _ => 256 };
        var tau = new Option<float>("--tau") { Description = "pbs: block-score threshold in (0, 1].", DefaultValueFactory = _ => 0.9f };
        var seed = new Option<int>("--seed") { Description = "Seed of the random inputs and masks.", DefaultValueFactory = _ => 1 };
        var qFile = new Option<string?>("--q") { Description = "Queries from an .npy file, float32/float16 [B, S_q, H_q, D]." };
        var kFile = new Option<string?>("--k") { Description = "Keys from an .npy file, [B, S_k, H_kv, D]." };
        var vFile = new Option<string?>("--v") { Description = "Values from an .npy file, [B, S_k, H_kv, D]." };
        var reps = new Option<int>("--reps", "-n") { Description = "Timed repetitions (the median is reported).", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed repetitions first.", DefaultValueFactory = _ => 1 };
        var checkRows = new Option<int>("--check-rows") { Description = "CPU: query rows checked in double precision.", DefaultValueFactory = _ => 64 };
        var noCheck = new Option<bool>("--no-check") { Description = "Skip the reference check." };
        var output = new Option<string?>("--output", "-o") { Description = "Write the output to an .npy file." };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0: all).", DefaultValueFactory = _ => 0 };
        var noCompare = new Option<bool>("--no-compare") { Description = "Skip timing dense attention (causal where the run is) on the same shape." };
        var json = EstimateCommand.JsonOption();

        var command = new Command("run", "Run one operation on random (seeded) or .npy inputs, check it against a reference and time it.")
        {
            operation, device, dtype, batch, seq, seqK, heads, kvHeads, headDim, causal, alignment, comparePermutation, scale, grid, kernel, dilation, stride,
            causalDims, block, pattern, density, window, segment, tau, seed, qFile, kFile, vFile, reps, warmup, checkRows,
            noCheck, output, threads, noCompare, json,
        };
        command.SetAction(parse => CliApp.Guard(console, () =>
        {
            var (deviceKind, deviceIndex) = ParseDevice(parse.GetValue(device)!);
            var settings = new RunSettings
            {
                Operation = parse.GetValue(operation)!,
                Device = deviceKind,
                DeviceIndex = deviceIndex,
                DataType = parse.GetValue(dtype) switch
                {
                    "float32" => SparseAttn.DataType.Float32,
                    "float16" => SparseAttn.DataType.Float16,
                    "bfloat16" => SparseAttn.DataType.BFloat16,
                    _ => null,
                },
                Batch = parse.GetValue(batch),
                Seq = parse.GetValue(seq) ?? GridTokens(parse.GetValue(operation), parse.GetValue(grid)) ?? 1024,
                SeqK = parse.GetValue(seqK),
                Heads = parse.GetValue(heads),
                KvHeads = parse.GetValue(kvHeads),
                HeadDim = parse.GetValue(headDim),
                Causal = parse.GetValue(causal),
                CausalAlignment = parse.GetValue(alignment) == "top-left" ? SparseAttn.CausalAlignment.TopLeft : SparseAttn.CausalAlignment.BottomRight,
                ComparePermutation = parse.GetValue(comparePermutation),
                Scale = parse.GetValue(scale),
                Grid = parse.GetValue(grid),
                Kernel = parse.GetValue(kernel),
                Dilation = parse.GetValue(dilation),
                Stride = parse.GetValue(stride),
                CausalDims = parse.GetValue(causalDims),
                Block = parse.GetValue(block),
                Pattern = parse.GetValue(pattern)!,
                Density = parse.GetValue(density),
                Window = parse.GetValue(window),
                Segment = parse.GetValue(segment),
                Tau = parse.GetValue(tau),
                Seed = parse.GetValue(seed),
                QueryFile = parse.GetValue(qFile),
                KeyFile = parse.GetValue(kFile),
                ValueFile = parse.GetValue(vFile),
                Reps = parse.GetValue(reps),
                Warmup = parse.GetValue(warmup),
                CheckRows = parse.GetValue(checkRows),
                NoCheck = parse.GetValue(noCheck),
                OutputFile = parse.GetValue(output),
                Threads = parse.GetValue(threads),
                NoCompare = parse.GetValue(noCompare),
            };
            var asJson = parse.GetValue(json);
            var report = Execute(settings, console);
            if (asJson)
            {
                CliApp.WriteJson(console, report);
            }
            else
            {
                Print(console, report);
            }
            return report.Passed ? ExitCodes.Ok : ExitCodes.CheckFailed;
        }));
        return command;
    }

    /// <summary>The token count of --grid for a neighborhood run (null otherwise, or when it overflows int).</summary>
    private static int? GridTokens(string? operation, string? grid)
    {
        if (operation != "neighborhood" || grid is null)
        {
            return null;
        }
        long tokens = 1;
        foreach (var d in CliApp.ParseDims(grid, "--grid"))
        {
            tokens *= d;
            if (tokens > int.MaxValue)
            {
                throw new UsageException($"--grid {grid} has more than {int.MaxValue} tokens.");
            }
        }
        return (int)tokens;
    }

    internal static (DeviceKind Kind, int Index) ParseDevice(string text)
    {
        if (text == "cpu")
        {
            return (DeviceKind.Cpu, 0);
        }
        if (text == "cuda")
        {
            return (DeviceKind.Cuda, 0);
        }
        if (text.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(text.AsSpan(5), out var index) && index >= 0)
        {
            return (DeviceKind.Cuda, index);
        }
        throw new UsageException($"--device '{text}' must be cpu, cuda or cuda:N.");
    }

    /// <summary>Host memory a run may use: the GC's limit (the machine's or the container's memory); tests lower it.</summary>
    internal static Func<long> HostMemoryBytes { get; set; } = () => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    private static int ElementBytes(DataType dataType) => dataType == SparseAttn.DataType.Float32 ? 4 : 2;

    /// <summary>Runs the operation described by <paramref name="s"/>; writes progress to <paramref name="console"/>.</summary>
    internal static RunReport Execute(RunSettings s, IAnsiConsole console)
    {
        var dataType = s.DataType ?? (s.Device == DeviceKind.Cuda ? SparseAttn.DataType.Float16 : SparseAttn.DataType.Float32);
        if (s.Device == DeviceKind.Cuda && dataType == SparseAttn.DataType.Float32)
        {
            throw new UsageException("--dtype float32 runs on the CPU only; use float16 or bfloat16 with --device cuda.");
        }
        if (s.Reps < 1 || s.Warmup < 0 || s.CheckRows < 0 || s.Threads < 0)
        {
            throw new UsageException("--reps must be at least 1 and --warmup, --check-rows and --threads not negative.");
        }
        if (s.ComparePermutation && s.Operation != "pbs")
        {
            throw new UsageException("--compare-permutation applies to pbs runs only.");
        }
        if (s.ComparePermutation && s.NoCompare)
        {
            throw new UsageException("--compare-permutation compares against dense causal attention; drop --no-compare.");
        }
        if (s.Causal && s.Operation == "neighborhood")
        {
            throw new UsageException(
                "--causal applies to dense and block-sparse; neighborhood attention is causal per dimension: use --causal-dims (e.g. 1x0).");
        }
        if (s.Device == DeviceKind.Cuda)
        {
            if (!SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cuda))
            {
                throw new UsageException("--device cuda: the native library was built without the CUDA backend.");
            }
            if (s.DeviceIndex >= SparseAttnLibrary.CudaDeviceCount)
            {
                throw new UsageException(
                    $"--device cuda:{s.DeviceIndex}: there are {SparseAttnLibrary.CudaDeviceCount} CUDA devices.");
            }
        }
        var inputs = Inputs.Load(s, ElementBytes(dataType));
        return dataType switch
        {
            SparseAttn.DataType.Float16 => new Runner<Half>(s, inputs, dataType, console).Run(),
            SparseAttn.DataType.BFloat16 => new Runner<BFloat16>(s, inputs, dataType, console).Run(),
            _ => new Runner<float>(s, inputs, dataType, console).Run(),
        };
    }

    private static void Print(IAnsiConsole console, RunReport r)
    {
        var table = new Table { Title = new TableTitle(Markup.Escape($"{r.Operation} on {r.Device}")) }.AddColumns("", "");
        table.HideHeaders();
        void Row(string label, string value) => table.AddRow(new Text(label), new Text(value));
        Row("dtype", r.DataType.ToString());
        Row("q [B, S_q, H_q, D]", "[" + string.Join(", ", r.QueryShape) + "]");
        Row("k, v [B, S_k, H_kv, D]", "[" + string.Join(", ", r.KeyShape) + "]");
        Row("allowed pairs", $"{CliApp.Count(r.AllowedPairs)}, {(double)r.AllowedPairs / r.DensePairs:P2} of dense");
        if (r.PlanMilliseconds is { } plan)
        {
            Row("plan time", $"{plan:F3} ms");
        }
        Row("time", $"median {r.MedianMilliseconds:F3} ms, min {r.MinMilliseconds:F3} ms over {r.Reps} reps");
        Row("throughput", $"{r.Gflops:F1} GFLOP/s on allowed pairs");
        if (r.Baseline is not null && r.SpeedupOverBaseline is { } speedup)
        {
            var verdictText = speedup >= 1
                ? $"{speedup:F2}x faster than {r.Baseline} ({r.BaselineMedianMilliseconds:F3} ms)"
                : $"SLOWER than {r.Baseline}: {1 / speedup:F2}x its time ({r.BaselineMedianMilliseconds:F3} ms)";
            Row("against dense", verdictText);
        }
        void Accuracy(string label, PbsAccuracy? a)
        {
            if (a is null)
            {
                return;
            }
            var timing = a.PlanMilliseconds is { } planMs && a.RunMilliseconds is { } runMs
                ? $"; plan {planMs:F3} ms + run {runMs:F3} ms"
                : string.Empty;
            Row(label, $"blocks {a.CausalDensity:P1} of causal; attention mass mean {a.MassMean:P2}, min {a.MassMin:P2}, " +
                       $"rows below 90% {a.RowsBelow90Percent:P2}; relative L1 {a.RelativeL1:E2}, cosine {a.Cosine:F5}{timing}");
        }
        Accuracy("against dense causal", r.Accuracy);
        Accuracy("key permutation off", r.AccuracyWithoutPermutation);
        var verdict = r.MaxError is null ? "[grey]skipped[/]" : r.Passed ? "[green]passed[/]" : "[red]FAILED[/]";
        var detail = r.MaxError is { } error
            ? $": max error {error:E2} (tolerance {r.Tolerance:E1}) against {r.CheckedAgainst}"
            : string.Empty;
        table.AddRow(new Text("check"), new Markup(verdict + Markup.Escape(detail)));
        console.Write(table);
        if (r.SlowerThanBaseline)
        {
            console.MarkupLineInterpolated(
                $"[yellow]note:[/] {r.Operation} is slower than {r.Baseline} on this shape and device; dense attention is the better choice here.");
        }
    }

    /// <summary>Q, K and V as float32 host arrays [B, S, H, D], random or from files.</summary>
    internal sealed record Inputs(float[] Q, float[] K, float[] V, int Batch, int SeqQ, int SeqK, int Heads, int KvHeads, int HeadDim)
    {
        public static Inputs Load(RunSettings s, int elementBytes)
        {
            var files = new[] { s.QueryFile, s.KeyFile, s.ValueFile };
            if (files.Any(f => f is not null))
            {
                if (files.Any(f => f is null))
                {
                    throw new UsageException("--q, --k and --v must be given together.");
                }
                var q = Read(s.QueryFile!, "--q");
                var k = Read(s.KeyFile!, "--k");
                var v = Read(s.ValueFile!, "--v");
                if (!k.Shape.SequenceEqual(v.Shape))
                {
                    throw new UsageException(
                        $"--v has shape ({string.Join(", ", v.Shape)}) but --k has ({string.Join(", ", k.Shape)}); they must match.");
                }
                var inputs = new Inputs(q.Data, k.Data, v.Data, (int)q.Shape[0], (int)q.Shape[1], (int)k.Shape[1], (int)q.Shape[2],
                    (int)k.Shape[2], (int)q.Shape[3]);
                if (k.Shape[0] != q.Shape[0] || k.Shape[3] != q.Shape[3])
                {
                    throw new UsageException("--k must have the batch and head dim of --q.");
                }
                RequireHostMemory(q.Data.Length, k.Data.Length, elementBytes, inputsLoaded: true, "--q, --k and --v");
                return inputs;
            }
            var kv = s.KvHeads ?? s.Heads;
            var seqK = s.SeqK ?? s.Seq;
            foreach (var (value, name) in new[] { (s.Batch, "--batch"), (s.Seq, "--seq"), (seqK, "--seq-k"), (s.Heads, "--heads"),
                         (kv, "--kv-heads"), (s.HeadDim, "--head-dim") })
            {
                if (value < 1)
                {
                    throw new UsageException($"{name} {value} must be at least 1.");
                }
            }
            var random = new Random(s.Seed);
            float[] Fill(long count)
            {
                var data = new float[count];
                for (long i = 0; i < count; i++)
                {
                    data[i] = (float)(random.NextDouble() * 2 - 1);
                }
                return data;
            }
            long qCount = (long)s.Batch * s.Seq * s.Heads * s.HeadDim;
            long kCount = (long)s.Batch * seqK * kv * s.HeadDim;
            if (qCount > Array.MaxLength || kCount > Array.MaxLength)
            {
                throw new UsageException("the tensors are too large for one host array; lower --batch, --seq or --heads.");
            }
            RequireHostMemory(qCount, kCount, elementBytes, inputsLoaded: false, "--batch, --seq, --heads and --head-dim");
            return new Inputs(Fill(qCount), Fill(kCount), Fill(kCount), s.Batch, s.Seq, seqK, s.Heads, kv, s.HeadDim);
        }

        /// <summary>
        /// Refuses a run whose host arrays would not fit in memory, before allocating them: float32 Q, K, V,
        /// their copies in the element type, the output and one more output-sized array (reference or file).
        /// </summary>
        private static void RequireHostMemory(long qCount, long kCount, int elementBytes, bool inputsLoaded, string flags)
        {
            var inputs = (qCount + 2 * kCount) * (long)((inputsLoaded ? 0 : 4) + elementBytes);
            var needed = inputs + qCount * (elementBytes + 4L);
            var available = HostMemoryBytes();
            if (needed > available)
            {
                throw new UsageException(
                    $"{flags}: the run needs about {needed / (double)(1L << 30):F1} GiB of host memory but " +
                    $"{available / (double)(1L << 30):F1} GiB are available; make the tensors smaller.");
            }
        }

        private static NpyArray Read(string path, string option)
        {
            var array = Npy.Read(path);
            if (array.Shape.Length != 4 || array.Shape.Any(d => d < 1 || d > int.MaxValue))
            {
                throw new UsageException(
                    $"{option} {path} has shape ({string.Join(", ", array.Shape)}); it must be 4-D [B, S, H, D] with no empty dimension.");
            }
            return array;
        }
    }

    /// <summary>One run in element type T: prepare, time, check.</summary>
    private sealed class Runner<T> where T : unmanaged
    {
        private readonly RunSettings s;
        private readonly Inputs x;
        private readonly DataType dataType;
        private readonly IAnsiConsole console;
        private readonly T[] q;
        private readonly T[] k;
        private readonly T[] v;
        private readonly nint[] qShape;
        private readonly nint[] kShape;
        private NeighborhoodConfig? neighborhood;
        private BlockMask? mask;
        private PbsPlan? plan;
        private double? planMilliseconds;

        public Runner(RunSettings settings, Inputs inputs, DataType dataType, IAnsiConsole console)
        {
            s = settings;
            x = inputs;
            this.dataType = dataType;
            this.console = console;
            q = Convert(inputs.Q);
            k = Convert(inputs.K);
            v = Convert(inputs.V);
            qShape = [inputs.Batch, inputs.SeqQ, inputs.Heads, inputs.HeadDim];
            kShape = [inputs.Batch, inputs.SeqK, inputs.KvHeads, inputs.HeadDim];
        }

        private bool Causal => s.Operation == "pbs" || (s.Causal && s.Operation is "dense" or "block-sparse");

        /// <summary>A causal dense or block-sparse run whose diagonal is top-left and differs from bottom-right.</summary>
        private bool TopLeft => Causal && s.Operation != "pbs" && s.CausalAlignment == CausalAlignment.TopLeft && x.SeqQ != x.SeqK;

        /// <summary>The dense call a sparse run is compared with: causal when the run's mask is causal throughout.</summary>
        private bool BaselineCausal => Causal || (s.Operation == "neighborhood" && neighborhood!.Causal.ToArray().All(c => c));

        private bool Compare => s.Operation != "dense" && !s.NoCompare;

        private AttentionOptions BaselineOptions => new()
        {
            Causal = BaselineCausal,
            CausalAlignment = s.CausalAlignment,
            Scale = s.Scale == 0 ? null : s.Scale,
            NumThreads = s.Threads,
        };

        private AttentionOptions Options(KernelChoice kernel) => new()
        {
            Causal = Causal,
            CausalAlignment = s.CausalAlignment,
            Scale = s.Scale == 0 ? null : s.Scale,
            NumThreads = s.Threads,
            Kernel = kernel,
        };

        public RunReport Run()
        {
            PrepareOperation();
            var output = new T[q.Length];
            RunTimed timed;
            RunTimed? baseline = null;
            (double? Error, string Against) check;
            string deviceName;
            if (s.Device == DeviceKind.Cpu)
            {
                deviceName = $"cpu ({(s.Threads == 0 ? Environment.ProcessorCount : s.Threads)} threads)";
                timed = Time(() => RunHost(output), synchronize: null);
                check = s.NoCheck ? (null, "none") : (CheckSampledRows(output), $"a double-precision reference on {SampleCount()} rows");
                if (Compare)
                {
                    var scratch = new T[q.Length];
                    var o = scratch;
                    baseline = Time(() => Attention.Dense(Read(q, qShape), Read(k, kShape), Read(v, kShape),
                        new TensorSpan<T>(o, qShape, default), BaselineOptions), synchronize: null);
                }
            }
            else
            {
                var info = SparseAttnLibrary.GetCudaDeviceInfo(s.DeviceIndex);
                deviceName = $"cuda:{s.DeviceIndex} ({info.Name})";
                (timed, check, baseline) = RunDevice(output);
            }
            if (s.OutputFile is not null)
            {
                var data = output.Select(ToFloat).ToArray();
                Npy.Write(s.OutputFile, new NpyArray(qShape.Select(d => (long)d).ToArray(), data,
                    dataType == SparseAttn.DataType.Float16 ? NpyType.Float16 : NpyType.Float32));
            }
            var pairs = AllowedPairs();
            var dense = (long)x.Batch * x.Heads * x.SeqQ * x.SeqK;
            var flops = 4.0 * pairs * x.HeadDim;
            var tolerance = Tolerance() * (s.Device == DeviceKind.Cuda ? 2 : 1);
            var passed = check.Error is not { } e || e <= tolerance;
            return new RunReport(OperationName(), deviceName, dataType, qShape.Select(d => (long)d).ToArray(),
                kShape.Select(d => (long)d).ToArray(), pairs, dense, planMilliseconds, timed.Median, timed.Min, s.Reps,
                flops / (timed.Median * 1e-3) / 1e9, check.Error, tolerance, check.Against, passed)
            {
                Baseline = baseline is null ? null : BaselineCausal ? "dense, causal" : "dense",
                BaselineMedianMilliseconds = baseline?.Median,
                Accuracy = s.Operation == "pbs" && Compare ? MeasureAccuracy(plan!) : null,
                AccuracyWithoutPermutation = s.ComparePermutation ? PlanWithoutPermutation() : null,
            };
        }

        /// <summary>Plans on the run's device; the time excludes copying Q and K there.</summary>
        private (PbsPlan Plan, double Milliseconds) PlanTimed(bool permuteKeys)
        {
            var options = new PbsOptions
            {
                Block = s.Block, Segment = s.Segment, Tau = s.Tau, Scale = s.Scale == 0 ? null : s.Scale, PermuteKeys = permuteKeys,
            };
            if (s.Device == DeviceKind.Cpu)
            {
                var watch = Stopwatch.StartNew();
                var hostPlan = PermutedBlockSparse.Plan(Read(q, qShape), Read(k, kShape), options);
                return (hostPlan, watch.Elapsed.TotalMilliseconds);
            }
            using var dq = CudaTensor<T>.FromHost(q, qShape, s.DeviceIndex);
            using var dk = CudaTensor<T>.FromHost(k, kShape, s.DeviceIndex);
            var deviceWatch = Stopwatch.StartNew();
            var devicePlan = PermutedBlockSparse.Plan(dq, dk, options);
            return (devicePlan, deviceWatch.Elapsed.TotalMilliseconds);
        }

        /// <summary>Plans with the key permutation off, times plan and run, and measures the result.</summary>
        private PbsAccuracy PlanWithoutPermutation()
        {
            var (identity, planMs) = PlanTimed(permuteKeys: false);
            var output = new T[q.Length];
            double runMs;
            if (s.Device == DeviceKind.Cpu)
            {
                runMs = Time(() => PermutedBlockSparse.Run(Read(q, qShape), Read(k, kShape), Read(v, kShape),
                    new TensorSpan<T>(output, qShape, default), identity, Options(KernelChoice.Auto)), synchronize: null).Median;
            }
            else
            {
                using var dq = CudaTensor<T>.FromHost(q, qShape, s.DeviceIndex);
                using var dk = CudaTensor<T>.FromHost(k, kShape, s.DeviceIndex);
                using var dv = CudaTensor<T>.FromHost(v, kShape, s.DeviceIndex);
                using var dout = CudaTensor<T>.Allocate(s.DeviceIndex, qShape);
                using var deviceMask = identity.Mask.ToDevice(s.DeviceIndex);
                using var permutation = CudaTensor<int>.FromHost(identity.KeyPermutation,
                    [identity.Batch, identity.Heads, identity.SequenceLength], s.DeviceIndex);
                runMs = Time(() => Attention.BlockSparse(dq, dk, dv, dout, deviceMask, Options(KernelChoice.Auto), permutation),
                    () => SparseAttnLibrary.SynchronizeDevice(s.DeviceIndex)).Median;
            }
            return MeasureAccuracy(identity) with { PlanMilliseconds = planMs, RunMilliseconds = runMs };
        }

        /// <summary>Runs <paramref name="p"/> and dense causal attention with their LSEs and compares them.</summary>
        private PbsAccuracy MeasureAccuracy(PbsPlan p)
        {
            nint[] lseShape = [x.Batch, x.Heads, x.SeqQ];
            var lseCount = x.Batch * x.Heads * x.SeqQ;
            var sparse = new T[q.Length];
            var dense = new T[q.Length];
            var lseSparse = new float[lseCount];
            var lseDense = new float[lseCount];
            if (s.Device == DeviceKind.Cpu)
            {
                PermutedBlockSparse.Run(Read(q, qShape), Read(k, kShape), Read(v, kShape), new TensorSpan<T>(sparse, qShape, default),
                    new TensorSpan<float>(lseSparse, lseShape, default), p, Options(KernelChoice.Auto));
                Attention.Dense(Read(q, qShape), Read(k, kShape), Read(v, kShape), new TensorSpan<T>(dense, qShape, default),
                    new TensorSpan<float>(lseDense, lseShape, default), BaselineOptions);
            }
            else
            {
                var device = s.DeviceIndex;
                using var dq = CudaTensor<T>.FromHost(q, qShape, device);
                using var dk = CudaTensor<T>.FromHost(k, kShape, device);
                using var dv = CudaTensor<T>.FromHost(v, kShape, device);
                using var dout = CudaTensor<T>.Allocate(device, qShape);
                using var dlse = CudaTensor<float>.Allocate(device, lseShape);
                PermutedBlockSparse.Run(dq, dk, dv, dout, dlse, p, Options(KernelChoice.Auto));
                dout.CopyTo(sparse);
                dlse.CopyTo(lseSparse);
                Attention.Dense(dq, dk, dv, dout, dlse, BaselineOptions);
                SparseAttnLibrary.SynchronizeDevice(device);
                dout.CopyTo(dense);
                dlse.CopyTo(lseDense);
            }
            return PbsAccuracy.Measure(sparse.Select(ToFloat).ToArray(), dense.Select(ToFloat).ToArray(), lseSparse, lseDense,
                p.CausalDensity);
        }

        private string OperationName() => s.Operation switch
        {
            "dense" => s.Causal ? "dense, causal" : "dense",
            "neighborhood" => $"neighborhood ({CliApp.Describe(neighborhood!)})",
            "block-sparse" => $"block-sparse ({s.Pattern}{(s.Causal ? ", causal" : string.Empty)}, blocks of {s.Block}, density {mask!.Density:P1})",
            _ => $"pbs (block {s.Block}, segment {s.Segment}, tau {s.Tau}, density {plan!.Density:P1})",
        };

        private double Tolerance() => dataType switch
        {
            SparseAttn.DataType.Float32 => 1e-4,
            SparseAttn.DataType.Float16 => 2e-3,
            _ => 1.6e-2,
        };

        private void PrepareOperation()
        {
            switch (s.Operation)
            {
                case "neighborhood":
                    RequireSelfAttention();
                    neighborhood = CliApp.Neighborhood(s.Grid ?? x.SeqQ.ToString(), s.Kernel, s.Dilation, s.Stride, s.CausalDims);
                    if (neighborhood.SequenceLength != x.SeqQ)
                    {
                        throw new UsageException($"--grid {s.Grid} has {neighborhood.SequenceLength} tokens but S = {x.SeqQ}.");
                    }
                    break;
                case "block-sparse":
                    if (s.Block is not (64 or 128))
                    {
                        throw new UsageException($"--block {s.Block} must be 64 or 128.");
                    }
                    if (s.Pattern != "causal")
                    {
                        RequireSelfAttention();
                    }
                    try
                    {
                        mask = s.Pattern switch
                        {
                            "causal" => BlockMask.Causal(x.SeqQ, x.SeqK, s.Block, s.Block),
                            "window" => BlockMask.SlidingWindow(x.SeqQ, s.Window, s.Block, s.Causal),
                            _ => BlockMask.Random(x.SeqQ, s.Block, s.Density, s.Seed, x.Batch, x.Heads, s.Causal),
                        };
                    }
                    catch (ArgumentException ex)
                    {
                        throw new UsageException($"invalid block mask: {ex.Message}");
                    }
                    break;
                case "pbs":
                    RequireSelfAttention();
                    (plan, planMilliseconds) = PlanTimed(permuteKeys: true);
                    break;
                default:
                    if (s.Causal && x.SeqQ > x.SeqK && !TopLeft)
                    {
                        console.MarkupLine("[yellow]note:[/] causal with S_q > S_k leaves the first S_q - S_k queries without keys (output 0).");
                    }
                    break;
            }
        }

        private void RequireSelfAttention()
        {
            if (x.SeqQ != x.SeqK)
            {
                throw new UsageException($"{s.Operation} needs S_q == S_k but they are {x.SeqQ} and {x.SeqK}.");
            }
        }

        private static ReadOnlyTensorSpan<T> Read(T[] data, nint[] shape) => new(data, shape, default);

        private void RunHost(T[] output)
        {
            var o = new TensorSpan<T>(output, qShape, default);
            var options = Options(KernelChoice.Auto);
            switch (s.Operation)
            {
                case "dense":
                    Attention.Dense(Read(q, qShape), Read(k, kShape), Read(v, kShape), o, options);
                    break;
                case "neighborhood":
                    Attention.Neighborhood(Read(q, qShape), Read(k, kShape), Read(v, kShape), o, neighborhood!, options);
                    break;
                case "block-sparse":
                    Attention.BlockSparse(Read(q, qShape), Read(k, kShape), Read(v, kShape), o, mask!, options);
                    break;
                default:
                    PermutedBlockSparse.Run(Read(q, qShape), Read(k, kShape), Read(v, kShape), o, plan!, options);
                    break;
            }
        }

        private (RunTimed Timed, (double? Error, string Against) Check, RunTimed? Baseline) RunDevice(T[] output)
        {
            var device = s.DeviceIndex;
            using var dq = CudaTensor<T>.FromHost(q, qShape, device);
            using var dk = CudaTensor<T>.FromHost(k, kShape, device);
            using var dv = CudaTensor<T>.FromHost(v, kShape, device);
            using var dout = CudaTensor<T>.Allocate(device, qShape);
            using var deviceMask = (mask ?? plan?.Mask)?.ToDevice(device);
            using var permutation = plan is null
                ? null
                : CudaTensor<int>.FromHost(plan.KeyPermutation, [plan.Batch, plan.Heads, plan.SequenceLength], device);

            void Call(CudaTensor<T> destination, KernelChoice kernel)
            {
                var options = Options(kernel);
                switch (s.Operation)
                {
                    case "dense":
                        Attention.Dense(dq, dk, dv, destination, options);
                        break;
                    case "neighborhood":
                        Attention.Neighborhood(dq, dk, dv, destination, neighborhood!, options);
                        break;
                    default:
                        Attention.BlockSparse(dq, dk, dv, destination, deviceMask!, options, permutation);
                        break;
                }
            }

            dout.Fill(0xFF);
            var timed = Time(() => Call(dout, KernelChoice.Auto), () => SparseAttnLibrary.SynchronizeDevice(device));
            dout.CopyTo(output);
            RunTimed? baseline = null;
            if (Compare)
            {
                using var scratch = CudaTensor<T>.Allocate(device, qShape);
                baseline = Time(() => Attention.Dense(dq, dk, dv, scratch, BaselineOptions),
                    () => SparseAttnLibrary.SynchronizeDevice(device));
            }
            if (s.NoCheck)
            {
                return (timed, (null, "none"), baseline);
            }
            using var reference = CudaTensor<T>.Allocate(device, qShape);
            reference.Fill(0xFF);
            Call(reference, KernelChoice.Reference);
            SparseAttnLibrary.SynchronizeDevice(device);
            var expected = reference.ToArray();
            double error = 0;
            for (var i = 0; i < output.Length; i++)
            {
                var d = Math.Abs((double)ToFloat(output[i]) - ToFloat(expected[i]));
                error = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(error, d);
            }
            return (timed, (error, "the CUDA reference kernel (every element)"), baseline);
        }

        private readonly record struct RunTimed(double Median, double Min);

        private RunTimed Time(Action once, Action? synchronize)
        {
            var times = new double[s.Reps];
            void Measure(Action<int>? step)
            {
                for (var i = 0; i < s.Warmup; i++)
                {
                    once();
                    synchronize?.Invoke();
                }
                for (var i = 0; i < s.Reps; i++)
                {
                    var watch = Stopwatch.StartNew();
                    once();
                    synchronize?.Invoke();
                    times[i] = watch.Elapsed.TotalMilliseconds;
                    step?.Invoke(i);
                }
            }
            if (console.Profile.Capabilities.Interactive && s.Reps + s.Warmup > 1)
            {
                console.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(),
                        new PercentageColumn(), new ElapsedTimeColumn())
                    .Start(context =>
                    {
                        var task = context.AddTask($"{s.Operation}: {s.Warmup} warm-up + {s.Reps} timed", maxValue: s.Reps);
                        Measure(_ => task.Increment(1));
                    });
            }
            else
            {
                Measure(null);
            }
            Array.Sort(times);
            var median = times.Length % 2 == 1 ? times[times.Length / 2] : (times[times.Length / 2 - 1] + times[times.Length / 2]) / 2;
            return new RunTimed(median, times[0]);
        }

        // -----------------------------------------------------------------------------------------
        // Allowed pairs and the double-precision row check
        // -----------------------------------------------------------------------------------------

        private long AllowedPairs()
        {
            long perHeadGroups = (long)x.Batch * x.Heads;
            switch (s.Operation)
            {
                case "dense":
                    return perHeadGroups * (TopLeft ? CliApp.DensePairsTopLeft(x.SeqQ, x.SeqK) : CliApp.DensePairs(x.SeqQ, x.SeqK, s.Causal));
                case "neighborhood":
                    return perHeadGroups * neighborhood!.PairCount;
                case "block-sparse" when TopLeft:
                    long listed = 0;  // the mask's count is bottom-right; count the top-left pairs row by row
                    for (var b = 0; b < mask!.Batch; b++)
                    {
                        for (var h = 0; h < mask.Heads; h++)
                        {
                            for (var row = 0; row < x.SeqQ; row++)
                            {
                                listed += AllowedKeys(b, h, row).Count;
                            }
                        }
                    }
                    return listed * (perHeadGroups / ((long)mask.Batch * mask.Heads));
                case "block-sparse":
                    return mask!.PairCount(x.SeqQ, x.SeqK, s.Causal) * (perHeadGroups / ((long)mask.Batch * mask.Heads));
                default:
                    long pairs = 0;
                    for (var b = 0; b < plan!.Batch; b++)
                    {
                        for (var h = 0; h < plan.Heads; h++)
                        {
                            for (var i = 0; i < plan.Mask.QueryBlocks; i++)
                            {
                                for (var row = i * plan.Block; row < Math.Min((i + 1) * plan.Block, x.SeqQ); row++)
                                {
                                    pairs += AllowedKeys(b, h, row).Count;
                                }
                            }
                        }
                    }
                    return pairs;
            }
        }

        /// <summary>Original key indices that query <paramref name="row"/> of (b, h) may see, written from the semantics.</summary>
        private List<int> AllowedKeys(int b, int h, int row)
        {
            var keys = new List<int>();
            var offset = TopLeft ? 0 : x.SeqK - x.SeqQ;
            switch (s.Operation)
            {
                case "dense":
                    for (var t = 0; t < x.SeqK && (!s.Causal || t <= row + offset); t++)
                    {
                        keys.Add(t);
                    }
                    break;
                case "neighborhood":
                    var config = neighborhood!;
                    var grid = config.Grid.ToArray();
                    var qc = Coordinates(row, grid);
                    for (var t = 0; t < x.SeqK; t++)
                    {
                        var kc = Coordinates(t, grid);
                        var ok = true;
                        for (var a = 0; a < grid.Length && ok; a++)
                        {
                            var d = config.Dilation[a];
                            var (start, end) = config.Window(a, qc[a] / d, qc[a] % d);
                            ok = kc[a] % d == qc[a] % d && kc[a] / d >= start && kc[a] / d < end;
                        }
                        if (ok)
                        {
                            keys.Add(t);
                        }
                    }
                    break;
                case "block-sparse":
                    int mb = mask!.Batch == 1 ? 0 : b, mh = mask.Heads == 1 ? 0 : h;
                    for (var t = 0; t < x.SeqK; t++)
                    {
                        if (mask.IsListed(mb, mh, row / mask.BlockQ, t / mask.BlockK) && (!s.Causal || t <= row + offset))
                        {
                            keys.Add(t);
                        }
                    }
                    break;
                default:
                    var seq = plan!.SequenceLength;
                    var baseIndex = checked((int)(((long)b * plan.Heads + h) * seq));
                    for (var j = 0; j < seq; j++)
                    {
                        var t = plan.KeyPermutation[baseIndex + j];
                        if (t <= row && plan.Mask.IsListed(b, h, row / plan.Block, j / plan.Block))
                        {
                            keys.Add(t);
                        }
                    }
                    break;
            }
            return keys;
        }

        private static int[] Coordinates(int token, int[] grid)
        {
            var coords = new int[grid.Length];
            for (var a = grid.Length - 1; a >= 0; a--)
            {
                coords[a] = token % grid[a];
                token /= grid[a];
            }
            return coords;
        }

        private int SampleCount() => (int)Math.Min(s.CheckRows, (long)x.Batch * x.Heads * x.SeqQ);

        /// <summary>Max error over a sample of (b, h, row) rows against softmax attention in double precision.</summary>
        private double CheckSampledRows(T[] output)
        {
            var random = new Random(s.Seed + 1);
            var total = (long)x.Batch * x.Heads * x.SeqQ;
            var scale = s.Scale != 0 ? s.Scale : 1.0 / Math.Sqrt(x.HeadDim);
            var group = x.Heads / x.KvHeads;
            int D = x.HeadDim;
            double error = 0;
            var scores = new List<double>();
            var accumulator = new double[D];
            for (var n = 0; n < SampleCount(); n++)
            {
                // The first and last rows are always checked: causal edges and ragged blocks live there.
                var flat = n == 0 ? 0 : n == 1 ? total - 1 : random.NextInt64(total);
                var b = (int)(flat / ((long)x.Heads * x.SeqQ));
                var h = (int)(flat / x.SeqQ % x.Heads);
                var row = (int)(flat % x.SeqQ);
                var kvHead = h / group;
                var keys = AllowedKeys(b, h, row);
                var qOffset = (((long)b * x.SeqQ + row) * x.Heads + h) * D;
                scores.Clear();
                var max = double.NegativeInfinity;
                foreach (var t in keys)
                {
                    var kOffset = (((long)b * x.SeqK + t) * x.KvHeads + kvHead) * D;
                    double dot = 0;
                    for (var d = 0; d < D; d++)
                    {
                        dot += (double)ToFloat(q[qOffset + d]) * ToFloat(k[kOffset + d]);
                    }
                    scores.Add(dot * scale);
                    max = Math.Max(max, dot * scale);
                }
                Array.Clear(accumulator);
                double sum = 0;
                for (var i = 0; i < keys.Count; i++)
                {
                    var p = Math.Exp(scores[i] - max);
                    sum += p;
                    var vOffset = (((long)b * x.SeqK + keys[i]) * x.KvHeads + kvHead) * D;
                    for (var d = 0; d < D; d++)
                    {
                        accumulator[d] += p * ToFloat(v[vOffset + d]);
                    }
                }
                for (var d = 0; d < D; d++)
                {
                    var expected = keys.Count == 0 ? 0 : accumulator[d] / sum;
                    var diff = Math.Abs(ToFloat(output[qOffset + d]) - expected);
                    error = double.IsNaN(diff) ? double.PositiveInfinity : Math.Max(error, diff);
                }
            }
            return error;
        }

        // -----------------------------------------------------------------------------------------
        // Element conversions
        // -----------------------------------------------------------------------------------------

        private static T[] Convert(float[] source)
        {
            var result = new T[source.Length];
            for (var i = 0; i < source.Length; i++)
            {
                result[i] = FromFloat(source[i]);
            }
            return result;
        }

        private static T FromFloat(float value)
        {
            if (typeof(T) == typeof(Half))
            {
                var h = (Half)value;
                return Unsafe.As<Half, T>(ref h);
            }
            if (typeof(T) == typeof(BFloat16))
            {
                var b = (BFloat16)value;
                return Unsafe.As<BFloat16, T>(ref b);
            }
            return Unsafe.As<float, T>(ref value);
        }

        private static float ToFloat(T value)
        {
            if (typeof(T) == typeof(Half))
            {
                return (float)Unsafe.As<T, Half>(ref value);
            }
            if (typeof(T) == typeof(BFloat16))
            {
                return (float)Unsafe.As<T, BFloat16>(ref value);
            }
            return Unsafe.As<T, float>(ref value);
        }
    }
}
