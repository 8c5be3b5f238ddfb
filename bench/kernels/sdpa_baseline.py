#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention on the shapes of bench_kernels.

A baseline for the GPU machine: dense (not paged) f16 K/V, Llama-3-8B attention
(32 query heads, 8 KV heads, head_dim 128). Decode: one query per sequence at
4k / 32k / 128k context, batch 1 and 16, reported as KV bytes/s against the
measured device-to-device copy bandwidth (read + write counted), exactly as
bench_kernels does. Prefill: one causal sequence of 1k / 4k / 16k tokens, TFLOP/s
(4 * n_head * head_dim * L(L+1)/2 flops). Prints a table, then one JSON line.

    python3 bench/kernels/sdpa_baseline.py [--quick]
"""
import json
import statistics
import sys

import torch
import torch.nn.functional as F

N_HEAD, N_HEAD_KV, HEAD_DIM = 32, 8, 128


def median_ms(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def sdpa(q, k, v, causal):
    try:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    except TypeError:  # torch < 2.5: no enable_gqa, expand the KV heads
        rep = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(
            q, k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1), is_causal=causal)


def main():
    quick = "--quick" in sys.argv
    if not torch.cuda.is_available():
        print("sdpa_baseline: no CUDA device, nothing measured")
        print(json.dumps({"bench": "sdpa_baseline", "skipped": True}))
        return
    iters = 5 if quick else 20
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)

    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    copy_ms = median_ms(lambda: dst.copy_(src), iters)
    copy_bw = 2.0 * n / (copy_ms * 1e-3)
    del src, dst

    print(f"device: {name}, copy bandwidth {copy_bw / 1e9:.1f} GB/s (D2D, read+write), torch {torch.__version__}")
    print(f"{'op':8s} {'batch':>6s} {'context':>8s} {'time_us':>10s} {'GB/s':>10s} {'of_copy':>8s}")
    result = {"bench": "sdpa_baseline", "device": name, "copy_gbps": copy_bw / 1e9, "decode": [], "prefill": []}
    contexts = [4096, 32768] if quick else [4096, 32768, 131072]
    for batch in (1, 16):
        for ctx in contexts:
            q = torch.randn(batch, N_HEAD, 1, HEAD_DIM, device=dev, dtype=torch.float16)
            k = torch.randn(batch, N_HEAD_KV, ctx, HEAD_DIM, device=dev, dtype=torch.float16)
            v = torch.randn_like(k)
            ms = median_ms(lambda: sdpa(q, k, v, False), iters)
            bw = batch * ctx * N_HEAD_KV * HEAD_DIM * 2 * 2 / (ms * 1e-3)
            print(f"{'decode':8s} {batch:6d} {ctx:8d} {ms * 1e3:10.1f} {bw / 1e9:10.1f} {100 * bw / copy_bw:7.1f}%")
            result["decode"].append({"batch": batch, "context": ctx, "us": ms * 1e3, "gbps": bw / 1e9,
                                     "of_copy": bw / copy_bw})
            del q, k, v
            torch.cuda.empty_cache()

    print(f"\n{'op':8s} {'batch':>6s} {'tokens':>8s} {'time_us':>10s} {'TFLOP/s':>10s}")
    lens = [1024, 4096] if quick else [1024, 4096, 16384]
    for length in lens:
        q = torch.randn(1, N_HEAD, length, HEAD_DIM, device=dev, dtype=torch.float16)
        k = torch.randn(1, N_HEAD_KV, length, HEAD_DIM, device=dev, dtype=torch.float16)
        v = torch.randn_like(k)
        ms = median_ms(lambda: sdpa(q, k, v, True), iters)
        tflops = 4.0 * N_HEAD * HEAD_DIM * (length * (length + 1) / 2) / (ms * 1e-3) / 1e12
        print(f"{'prefill':8s} {1:6d} {length:8d} {ms * 1e3:10.1f} {tflops:10.2f}")
        result["prefill"].append({"tokens": length, "us": ms * 1e3, "tflops": tflops})
        del q, k, v
    print()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
