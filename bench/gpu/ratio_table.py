"""Prints our dense TFLOP/s next to the anchors measured in the same device call.
Usage: ratio_table.py OURS.json ANCHORS.txt [DECODE.json]"""
import json, re, sys

ours = json.load(open(sys.argv[1]))["results"]
anchors = {}
pat = re.compile(r"^(sdpa (\w+)|flex) B(\d+) H(\d+) S(\d+) D(\d+) causal=(\w+)\s+([\d.]+) ms\s+([\d.]+) TFLOP/s")
for line in open(sys.argv[2]):
    m = pat.match(line.strip())
    if m:
        kind = {"FLASH_ATTENTION": "fa2", "CUDNN_ATTENTION": "cudnn"}.get(m.group(2), "flex")
        key = (int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(6)), m.group(7) == "True")
        anchors.setdefault(key, {})[kind] = float(m.group(9))

print(f"{'case (bf16)':40s} {'ours':>8s} {'FA2':>8s} {'cuDNN':>8s} {'flex':>8s} {'/FA2':>6s} {'/cuDNN':>7s}")
for r in ours:
    if r["dtype"] != "bf16" or r["heads"] != r["heads_kv"] or r["seqlen_q"] != r["seqlen_k"]:
        continue
    key = (r["batch"], r["heads"], r["seqlen_q"], r["dim"], bool(r["causal"]))
    a = anchors.get(key)
    if not a:
        continue
    fa2, cudnn, flex = a.get("fa2", 0), a.get("cudnn", 0), a.get("flex", 0)
    name = f"B{key[0]} H{key[1]} S{key[2]} D{key[3]} {'causal' if key[4] else 'full'}"
    print(f"{name:40s} {r['tflops']:8.1f} {fa2:8.1f} {cudnn:8.1f} {flex:8.1f} "
          f"{r['tflops'] / fa2 if fa2 else 0:6.2f} {r['tflops'] / cudnn if cudnn else 0:7.2f}")

if len(sys.argv) > 3:
    dec = json.load(open(sys.argv[3]))
    print(f"\ndecode (copy bandwidth {dec['copy_gbps']:.0f} GB/s read+write; floor = K+V bytes at that rate)")
    for r in dec["results"]:
        print(f"{r['name']:52s} {r['ms']:8.4f} ms  {r['gbps']:7.0f} GB/s  {r['floor_ratio']:5.2f}x floor  {'ok' if r['ok'] else 'FAIL'}")
