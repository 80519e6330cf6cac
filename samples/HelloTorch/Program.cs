using SparseAttn;
using SparseAttn.TorchSharp;
using TorchSharp;
using static TorchSharp.torch;

// Hello, torch: SparseAttn on TorchSharp tensors in torch's own [B, H, S, D] order, checked against
// torch's scaled_dot_product_attention (causal is top-left there, so the options ask for it).
// Exit code 0 when every check passes.
Console.WriteLine($"SparseAttn.TorchSharp from {typeof(TorchAttention).Assembly.Location}");
torch.manual_seed(7);
var ok = true;
foreach (var (seqQ, seqK) in new[] { (128, 128), (96, 160), (160, 96) })
{
    using var scope = torch.NewDisposeScope();
    var q = torch.randn(1, 4, seqQ, 64);
    var k = torch.randn(1, 2, seqK, 64);
    var v = torch.randn(1, 2, seqK, 64);
    var options = new AttentionOptions { Causal = true, CausalAlignment = CausalAlignment.TopLeft };

    var actual = TorchAttention.Dense(q, k, v, options);

    // torch has no GQA flag here: repeat the key/value heads for it.
    var expected = nn.functional.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1),
        null, 0.0, true);
    var error = (actual - expected).abs().max().item<float>();
    var pass = error <= 1e-4;
    ok &= pass;
    Console.WriteLine($"causal dense [B 1, H 4/2, S_q {seqQ}, S_k {seqK}, D 64] against torch SDPA: max error {error:E2} {(pass ? "ok" : "FAILED")}");
}
Console.WriteLine($"native library {SparseAttnLibrary.NativeLibraryPath}");
Console.WriteLine(ok ? "result check: ok" : "result check: FAILED");
return ok ? 0 : 1;
