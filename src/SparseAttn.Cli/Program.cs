using Spectre.Console;

namespace SparseAttn.Cli;

/// <summary>Entry point of the sparseattn tool.</summary>
public static class Program
{
    /// <summary>Runs the tool; the exit code is one of <see cref="ExitCodes"/>.</summary>
    /// <param name="args">Command-line arguments.</param>
    public static int Main(string[] args)
    {
        var console = AnsiConsole.Console;
        if (Console.IsOutputRedirected)
        {
            CliApp.UnwrapForRedirectedOutput(console);
        }
        return CliApp.Run(args, console);
    }
}
