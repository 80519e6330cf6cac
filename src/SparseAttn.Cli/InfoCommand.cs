using System.CommandLine;
using Spectre.Console;

namespace SparseAttn.Cli;

/// <summary><c>sparseattn info</c>: version, backends, the CPU kernels' instruction set, CUDA devices and fast-path coverage.</summary>
internal static class InfoCommand
{
    private static readonly int[] HeadDims = [32, 64, 80, 96, 128, 160, 192, 256];

    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("info", "Library version, backends built, CUDA devices and which head dims the fast kernels cover.");
        command.SetAction(_ => CliApp.Guard(console, () => Execute(console)));
        return command;
    }

    private static int Execute(IAnsiConsole console)
    {
        console.MarkupLineInterpolated($"[bold]SparseAttn[/] {SparseAttnLibrary.Version}");
        console.MarkupLineInterpolated($"native library: {SparseAttnLibrary.NativeLibraryPath ?? "(not loaded)"}");
        var cuda = SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cuda);
        console.MarkupLineInterpolated(
            $"backends: CPU {(SparseAttnLibrary.IsBackendBuilt(DeviceKind.Cpu) ? "built" : "missing")}, CUDA {(cuda ? "built" : "not built")}");
        console.MarkupLine("CPU backend: float32, float16, bfloat16; head dims 1..512; every operation.");
        console.MarkupLineInterpolated(
            $"CPU kernels: {SparseAttnLibrary.CpuInstructionSet} (chosen from the CPU's features; SPARSEATTN_CPU_ISA=baseline|avx2|avx512 caps it)");
        var devices = cuda ? SparseAttnLibrary.CudaDeviceCount : 0;
        if (devices == 0)
        {
            console.MarkupLine(cuda ? "CUDA devices: none found." : "CUDA devices: none (the CUDA backend is not built).");
            return ExitCodes.Ok;
        }
        var table = new Table().AddColumns("device", "name", "compute capability", "SMs", "memory", "L2", "max shared/block");
        for (var d = 0; d < devices; d++)
        {
            var info = SparseAttnLibrary.GetCudaDeviceInfo(d);
            table.AddRow($"cuda:{d}", Markup.Escape(info.Name), $"{info.ComputeCapability.Major}.{info.ComputeCapability.Minor}",
                info.MultiprocessorCount.ToString(), $"{info.TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB",
                $"{info.L2CacheBytes / (1024.0 * 1024):F0} MiB", $"{info.MaxSharedMemoryPerBlock / 1024} KiB");
        }
        console.Write(table);
        for (var d = 0; d < devices; d++)
        {
            var coverage = new Table { Title = new TableTitle($"fast kernels on cuda:{d} (others run the reference kernel)") };
            coverage.AddColumns("operation", "float16 head dims", "bfloat16 head dims");
            foreach (var operation in Enum.GetValues<AttentionOperation>())
            {
                coverage.AddRow(operation.ToString(), Covered(operation, d, DataType.Float16), Covered(operation, d, DataType.BFloat16));
            }
            console.Write(coverage);
        }
        return ExitCodes.Ok;
    }

    private static string Covered(AttentionOperation operation, int device, DataType dataType)
    {
        var dims = HeadDims.Where(d => SparseAttnLibrary.IsFastPathCovered(operation, device, dataType, d)).ToArray();
        return dims.Length == 0 ? "none" : string.Join(", ", dims);
    }
}
