"""cuDNN SDPA dense (and FlexAttention with the same mask where it is tractable) on the token
counts of the sparse benchmark (bench_sparse.cpp): NATTEN's neighborhood shapes, the
block-sparse S32768 H32 shape and PBS causal prefill. One row per case: name, median ms,
TFLOP/s on the attended pairs. Usage: anchors_sparse.py [na|bs|pbs|all]."""
import sys, torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
from torch.nn.attention.flex_attention import flex_attention, create_block_mask
import triton.testing as tt

torch.manual_seed(0)
dev, dt = "cuda", torch.bfloat16
ONLY = sys.argv[1] if len(sys.argv) > 1 else "all"

def bench(fn):
    fn(); torch.cuda.synchronize()
    return tt.do_bench(fn, warmup=25, rep=200, return_mode="median")

def report(name, ms, pairs, B, H, D):
    print(f"{name:58s} {ms:9.3f} ms {4.0 * B * H * D * pairs / (ms * 1e-3) / 1e12:8.1f} TFLOP/s", flush=True)

def cudnn(B, H, S, D, causal=False):
    q, k, v = [torch.randn(B, H, S, D, device=dev, dtype=dt) for _ in range(3)]
    def f():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    pairs = S * S if not causal else S * (S + 1) / 2
    report(f"cudnn dense B{B} H{H} S{S} D{D} causal={causal}", bench(f), pairs, B, H, D)
    return q, k, v

print(torch.__version__, torch.cuda.get_device_name(), flush=True)
if ONLY in ("all", "na"):
    cudnn(1, 16, 32768, 128)
    q, k, v = cudnn(1, 24, 256 * 256, 128)
    X = Y = 256; KS = 80
    def na2d(b, h, qi, ki):
        qx, qy, kx, ky = qi // Y, qi % Y, ki // Y, ki % Y
        sx = torch.clamp(qx - KS // 2, 0, X - KS)
        sy = torch.clamp(qy - KS // 2, 0, Y - KS)
        return (kx >= sx) & (kx < sx + KS) & (ky >= sy) & (ky < sy + KS)
    bm = create_block_mask(na2d, None, None, X * Y, X * Y)
    flex = torch.compile(flex_attention, dynamic=False)
    report(f"flex NA2D {X}x{Y} k{KS} H24 D128 (row-major tokens)", bench(lambda: flex(q, k, v, block_mask=bm)),
           X * Y * KS * KS, 1, 24, 128)
    del q, k, v, bm
    cudnn(1, 24, 30 * 48 * 80, 128)
if ONLY in ("all", "bs"):
    cudnn(1, 32, 32768, 128)
    cudnn(1, 32, 32768, 128, causal=True)
if ONLY in ("all", "pbs"):
    for S in (32768, 131072):
        cudnn(1, 32, S, 128, causal=True)
