"""Anchors for bench/gpu/sweep.sh on the same shapes: torch SDPA (flash, cuDNN) and FlexAttention
dense over sequence lengths, and block-sparse at several densities for FlexAttention and for
SparseAttn itself (through the C ABI with ctypes, on the same torch tensors).
Writes {"device", "date", "software", "results": [...]} with results in the
sparseattn-bench-sweep/1 form (bench/results/README.md).
Usage: sweep_anchors.py --out FILE [--lib libsparseattn.so] [--budget-s SECONDS]"""
import argparse, ctypes, datetime, json, math, time
import torch
import torch._dynamo
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
from torch.nn.attention.flex_attention import flex_attention, create_block_mask, BlockMask
import triton.testing as tt

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--lib", default=None)
ap.add_argument("--budget-s", type=float, default=150)
args = ap.parse_args()
deadline = time.time() + args.budget_s - 10  # room to write the file

torch._dynamo.config.cache_size_limit = 256
if hasattr(torch._dynamo.config, "recompile_limit"):
    torch._dynamo.config.recompile_limit = 256
torch.manual_seed(0)
dev, dt = "cuda", torch.bfloat16
H, D = 16, 128
LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768]
BS_SEQ, BS_BLOCK, DENSITIES = 16384, 128, [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
flex = torch.compile(flex_attention, dynamic=False)
results = []


def bench(fn):
    fn(); torch.cuda.synchronize()
    return tt.do_bench(fn, warmup=25, rep=100, return_mode="median")


def add(impl, family, B, S, causal, ms, pairs, density=None, ok=None):
    tflops = 4.0 * B * H * D * pairs / (ms * 1e-3) / 1e12
    results.append({"impl": impl, "family": family, "batch": B, "heads": H, "heads_kv": H, "seqlen_q": S,
                    "seqlen_k": S, "dim": D, "dtype": "bf16", "causal": causal, "density": density,
                    "block": BS_BLOCK if family == "block_sparse" else None, "ms": ms, "tflops": tflops, "ok": ok})
    print(f"{impl:11s} {family:12s} B{B} H{H} S{S} D{D} {'causal' if causal else 'full'}"
          f"{'' if density is None else f' density={density:.3f}'} {ms:9.3f} ms {tflops:7.1f} TFLOP/s", flush=True)


def qkv(B, S):
    return [torch.randn(B, H, S, D, device=dev, dtype=dt) for _ in range(3)]


def sdpa(be, q, k, v, causal):
    def f():
        with sdpa_kernel(be):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return f


def batch_for(S):
    return 1 if S >= 16384 else 16384 // S


class SaTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("device_type", ctypes.c_int32),
                ("device_id", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("shape", ctypes.c_int64 * 6), ("strides", ctypes.c_int64 * 6)]


class SaOptions(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("causal", ctypes.c_int32), ("stream", ctypes.c_void_p),
                ("kernel", ctypes.c_int32), ("num_splits", ctypes.c_int32), ("workspace", ctypes.c_void_p),
                ("workspace_bytes", ctypes.c_size_t), ("num_threads", ctypes.c_int32), ("reserved", ctypes.c_int32)]


class SaBlockSparse(ctypes.Structure):
    _fields_ = [("block_q", ctypes.c_int32), ("block_k", ctypes.c_int32), ("kv_num_blocks", SaTensor),
                ("kv_indices", SaTensor), ("full_kv_num_blocks", SaTensor), ("full_kv_indices", SaTensor),
                ("key_perm", SaTensor), ("query_perm", SaTensor)]


def sa_view(t, bshd_from_bhsd=False):
    """Describes a torch CUDA tensor; [B, H, S, D] memory is passed as a [B, S, H, D] view."""
    x = SaTensor()
    x.data = t.data_ptr()
    x.dtype = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.int32: 3}[t.dtype]
    x.device_type, x.device_id = 1, t.device.index or 0
    shape, strides = list(t.shape), list(t.stride())
    if bshd_from_bhsd:
        shape = [shape[0], shape[2], shape[1], shape[3]]
        strides = [strides[0], strides[2], strides[1], strides[3]]
    x.rank = len(shape)
    for i, (n, s) in enumerate(zip(shape, strides)):
        x.shape[i], x.strides[i] = n, s
    return x


def load_sparseattn(path):
    if not path:
        return None
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        print(f"sparseattn library not loaded ({e}): its block-sparse cases are skipped")
        return None
    lib.sa_last_error.restype = ctypes.c_char_p
    lib.sa_attention_options_init.argtypes = [ctypes.POINTER(SaOptions)]
    for fn in (lib.sa_dense_forward, lib.sa_block_sparse_forward):
        fn.restype = ctypes.c_int
    return lib


def sa_call(lib, status):
    if status != 0:
        raise RuntimeError(f"sparseattn: {lib.sa_last_error().decode()}")


t0 = time.time()
print(torch.__version__, torch.cuda.get_device_name(), flush=True)

# 1. SDPA flash and cuDNN over all lengths (fast to run, no compilation).
for causal in (False, True):
    for S in LENGTHS:
        B = batch_for(S)
        q, k, v = qkv(B, S)
        pairs = S * (S + 1) / 2 if causal else S * S
        for be, impl in ((SDPBackend.FLASH_ATTENTION, "sdpa-flash"), (SDPBackend.CUDNN_ATTENTION, "sdpa-cudnn")):
            try:
                add(impl, "dense", B, S, causal, bench(sdpa(be, q, k, v, causal)), pairs)
            except RuntimeError as e:
                print(f"{impl} S{S}: {e}".splitlines()[0])
        del q, k, v

# 2. Block-sparse densities at one shape: FlexAttention and SparseAttn, each over its own dense.
lib = load_sparseattn(args.lib)
B, S = 1, BS_SEQ
q, k, v = qkv(B, S)
nb = S // BS_BLOCK
add("flex", "dense", B, S, False, bench(lambda: flex(q, k, v)), S * S)
stream = torch.cuda.current_stream().cuda_stream
if lib is not None:
    opt = SaOptions(); lib.sa_attention_options_init(ctypes.byref(opt)); opt.stream = stream
    out = torch.empty_like(q)
    tq, tk, tv, to = (sa_view(t, True) for t in (q, k, v, out))
    dense = lambda: sa_call(lib, lib.sa_dense_forward(ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv),
                                                        ctypes.byref(to), None, ctypes.byref(opt)))
    add("sparseattn", "dense", B, S, False, bench(dense), S * S)
for dens in DENSITIES:
    if time.time() > deadline:
        print("budget reached: remaining densities skipped"); break
    g = torch.Generator(device=dev).manual_seed(1)
    blk = torch.rand(B, H, nb, nb, device=dev, generator=g) < dens
    blk |= torch.eye(nb, dtype=torch.bool, device=dev)
    num = blk.sum(-1).to(torch.int32).contiguous()
    idx = torch.argsort(blk.to(torch.int8), dim=-1, descending=True, stable=True).to(torch.int32).contiguous()
    density = blk.float().mean().item()
    pairs = blk.float().sum().item() * BS_BLOCK * BS_BLOCK / (B * H)
    bm = BlockMask.from_kv_blocks(num, idx, BLOCK_SIZE=BS_BLOCK)
    add("flex", "block_sparse", B, S, False, bench(lambda: flex(q, k, v, block_mask=bm)), pairs, density)
    if lib is not None:
        params = SaBlockSparse()
        params.block_q = params.block_k = BS_BLOCK
        params.kv_num_blocks, params.kv_indices = sa_view(num), sa_view(idx)
        run = lambda: sa_call(lib, lib.sa_block_sparse_forward(ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv),
                                                                 ctypes.byref(to), None, ctypes.byref(params),
                                                                 ctypes.byref(opt)))
        try:
            run(); torch.cuda.synchronize()
            ref = flex(q, k, v, block_mask=bm)
            ok = ((out.float() - ref.float()).norm() / ref.float().norm()).item() < 2e-2
            add("sparseattn", "block_sparse", B, S, False, bench(run), pairs, density, ok)
        except RuntimeError as e:
            print(f"sparseattn block-sparse density {dens}: {e}")
del q, k, v

# 3. FlexAttention dense over the lengths while the budget lasts (each shape compiles).
for causal in (False, True):
    for S in LENGTHS:
        if time.time() > deadline:
            print(f"budget reached: flex dense from S{S} {'causal' if causal else 'full'} on skipped"); break
        B = batch_for(S)
        q, k, v = qkv(B, S)
        bm = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, S, S) if causal else None
        add("flex", "dense", B, S, causal, bench(lambda: flex(q, k, v, block_mask=bm)), S * (S + 1) / 2 if causal else S * S)
        del q, k, v

import triton
json.dump({"device": torch.cuda.get_device_name(), "date": datetime.date.today().isoformat(),
           "software": {"torch": torch.__version__, "triton": triton.__version__, "cuda": str(torch.version.cuda)},
           "results": results}, open(args.out, "w"), indent=1)
print(f"anchors: {len(results)} results in {time.time() - t0:.0f} s", flush=True)
