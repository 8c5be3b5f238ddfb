// Paged attention on the GPU: decode (split-K flash decoding) at 4k / 32k /
// 128k context for batch 1 and 16, as achieved KV bytes/s against the
// device's measured copy bandwidth (cudaMemcpy device-to-device, read + write
// counted); prefill (causal flash attention) as TFLOP/s. Shape: Llama-3-8B
// attention (32 query heads, 8 KV heads, head_dim 128, f16 KV, 16-token
// pages), one layer. Prints a table, then one JSON line. Without a device it
// says so and prints {"skipped": true}.
//
// bench_kernels [--quick]   (--quick: 4k and 32k only, fewer iterations)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_kernels.h"

namespace kc = mnemos::kernels::cuda;
using mnemos::kernels::attention_shape;
using mnemos::kernels::paged_kv_view;

namespace {

#define BENCH_CHECK(call)                                                                               \
    do {                                                                                                \
        const cudaError_t e_ = (call);                                                                  \
        if (e_ != cudaSuccess) {                                                                        \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            std::exit(1);                                                                               \
        }                                                                                               \
    } while (0)

struct fill_args {
    uint16_t* p;
    size_t n;
    uint32_t seed;
};

// Pseudo-random f16 values in [-1, 1) (a hash of the index; no cuRAND).
__global__ void fill_f16(fill_args a) {
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ a.seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        const float v = static_cast<float>(h & 0xffff) / 32768.0f - 1.0f;
        a.p[i] = __half_as_ushort(__float2half_rn(v));
    }
}

struct fill_f32_args {
    float* p;
    size_t n;
};
__global__ void fill_f32(fill_f32_args a) {
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n;
         i += static_cast<size_t>(gridDim.x) * blockDim.x)
        a.p[i] = static_cast<float>((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
}

template <class F>
double median_ms(int iters, F&& f) {
    cudaEvent_t e0, e1;
    BENCH_CHECK(cudaEventCreate(&e0));
    BENCH_CHECK(cudaEventCreate(&e1));
    for (int i = 0; i < 3; ++i) f();  // warm up
    BENCH_CHECK(cudaDeviceSynchronize());
    std::vector<float> t;
    for (int i = 0; i < iters; ++i) {
        BENCH_CHECK(cudaEventRecord(e0));
        f();
        BENCH_CHECK(cudaEventRecord(e1));
        BENCH_CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        BENCH_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        t.push_back(ms);
    }
    BENCH_CHECK(cudaEventDestroy(e0));
    BENCH_CHECK(cudaEventDestroy(e1));
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// One layer's pool holding n_seq sequences of kv_len tokens each, pages in order.
struct pool {
    paged_kv_view view{};
    uint16_t* data = nullptr;
    int32_t *indptr = nullptr, *indices = nullptr, *lens = nullptr;
    kc::paged_batch batch{};

    pool(int n_seq, int32_t kv_len, int kv_dim, int page_size) {
        const int32_t pages_per_seq = (kv_len + page_size - 1) / page_size;
        const int64_t n_pages = static_cast<int64_t>(n_seq) * pages_per_seq;
        view.layer_stride = 2LL * page_size * kv_dim;
        view.v_offset = static_cast<int64_t>(page_size) * kv_dim;
        view.page_stride = view.layer_stride;
        view.page_size = page_size;
        view.kv_dim = kv_dim;
        const size_t n = static_cast<size_t>(n_pages * view.page_stride);
        BENCH_CHECK(cudaMalloc(&data, n * sizeof(uint16_t)));
        fill_f16<<<1024, 256>>>(fill_args{data, n, 12345u});
        BENCH_CHECK(cudaGetLastError());
        view.base = data;
        std::vector<int32_t> h_indptr{0}, h_indices, h_lens(static_cast<size_t>(n_seq), kv_len);
        for (int s = 0; s < n_seq; ++s) {
            for (int32_t i = 0; i < pages_per_seq; ++i) h_indices.push_back(s * pages_per_seq + i);
            h_indptr.push_back(static_cast<int32_t>(h_indices.size()));
        }
        BENCH_CHECK(cudaMalloc(&indptr, h_indptr.size() * 4));
        BENCH_CHECK(cudaMalloc(&indices, h_indices.size() * 4));
        BENCH_CHECK(cudaMalloc(&lens, h_lens.size() * 4));
        BENCH_CHECK(cudaMemcpy(indptr, h_indptr.data(), h_indptr.size() * 4, cudaMemcpyHostToDevice));
        BENCH_CHECK(cudaMemcpy(indices, h_indices.data(), h_indices.size() * 4, cudaMemcpyHostToDevice));
        BENCH_CHECK(cudaMemcpy(lens, h_lens.data(), h_lens.size() * 4, cudaMemcpyHostToDevice));
        batch = {n_seq, indptr, indices, lens, kv_len};
    }
    ~pool() {
        cudaFree(data);
        cudaFree(indptr);
        cudaFree(indices);
        cudaFree(lens);
    }
};

float* device_f32(size_t n) {
    float* p = nullptr;
    BENCH_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(float)));
    fill_f32<<<256, 256>>>(fill_f32_args{p, n});
    BENCH_CHECK(cudaGetLastError());
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
        std::printf(
            "usage: bench_kernels [--quick]\n\n"
            "The CUDA kernels on the first GPU (one device, no CPU threads involved): device copy bandwidth, then\n"
            "paged attention (decode and prefill chunks) in time and GB/s beside the copy bandwidth. Prints a\n"
            "table, then one JSON line; without a CUDA device it says so and measures nothing.\n"
            "  --quick   5 iterations per case instead of 20\n");
        return 0;
    }
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    if (kc::device_count() == 0) {
        std::printf("bench_kernels: no CUDA device, nothing measured\n");
        std::printf("{\"bench\": \"kernels\", \"skipped\": true}\n");
        return 0;
    }
    cudaDeviceProp prop{};
    BENCH_CHECK(cudaGetDeviceProperties(&prop, 0));
    const int iters = quick ? 5 : 20;

    // Device copy bandwidth: 1 GiB device-to-device, read + write counted.
    const size_t copy_bytes = size_t(1) << 30;
    void *src = nullptr, *dst = nullptr;
    BENCH_CHECK(cudaMalloc(&src, copy_bytes));
    BENCH_CHECK(cudaMalloc(&dst, copy_bytes));
    BENCH_CHECK(cudaMemset(src, 1, copy_bytes));
    const double copy_ms =
        median_ms(iters, [&] { BENCH_CHECK(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice)); });
    const double copy_bw = 2.0 * copy_bytes / (copy_ms * 1e-3);
    BENCH_CHECK(cudaFree(src));
    BENCH_CHECK(cudaFree(dst));

    const int n_head = 32, n_head_kv = 8, head_dim = 128, page_size = 16, kv_dim = n_head_kv * head_dim;
    const attention_shape shape{n_head, n_head_kv, head_dim, 1.0f / std::sqrt(static_cast<float>(head_dim))};

    std::printf("device: %s (%d SMs), copy bandwidth %.1f GB/s (D2D, read+write)\n", prop.name,
                prop.multiProcessorCount, copy_bw / 1e9);
    std::printf("shape: n_head %d, n_head_kv %d, head_dim %d, page_size %d, f16 KV, 1 layer\n\n", n_head, n_head_kv,
                head_dim, page_size);
    std::printf("%-8s %6s %8s %8s %10s %10s %8s\n", "op", "batch", "context", "chunk", "time_us", "GB/s", "of_copy");

    std::string json = "{\"bench\": \"kernels\", \"device\": \"" + std::string(prop.name) +
                       "\", \"copy_gbps\": " + std::to_string(copy_bw / 1e9) + ", \"decode\": [";
    bool first = true;
    std::vector<int32_t> contexts = {4096, 32768, 131072};
    if (quick) contexts.pop_back();
    for (int batch : {1, 16}) {
        for (int32_t ctx : contexts) {
            pool pl(batch, ctx, kv_dim, page_size);
            float* q = device_f32(static_cast<size_t>(batch) * n_head * head_dim);
            float* out = device_f32(static_cast<size_t>(batch) * n_head * head_dim);
            kc::decode_params p;
            p.shape = shape;
            p.kv = pl.view;
            p.batch = pl.batch;
            p.q = q;
            p.out = out;
            const size_t ws = kc::decode_workspace_bytes(p);
            void* wsp = nullptr;
            if (ws) BENCH_CHECK(cudaMalloc(&wsp, ws));
            p.workspace = wsp;
            p.workspace_bytes = ws;
            const double ms = median_ms(iters, [&] { BENCH_CHECK(kc::attention_decode(p, nullptr)); });
            const double bytes = static_cast<double>(batch) * ctx * kv_dim * 2 /* K, V */ * 2 /* f16 */;
            const double bw = bytes / (ms * 1e-3);
            std::printf("%-8s %6d %8d %8d %10.1f %10.1f %7.1f%%\n", "decode", batch, ctx, kc::decode_chunk_tokens(p),
                        ms * 1e3, bw / 1e9, 100.0 * bw / copy_bw);
            json += std::string(first ? "" : ", ") + "{\"batch\": " + std::to_string(batch) +
                    ", \"context\": " + std::to_string(ctx) + ", \"us\": " + std::to_string(ms * 1e3) +
                    ", \"gbps\": " + std::to_string(bw / 1e9) + ", \"of_copy\": " + std::to_string(bw / copy_bw) + "}";
            first = false;
            cudaFree(wsp);
            cudaFree(q);
            cudaFree(out);
        }
    }
    json += "], \"prefill\": [";

    std::printf("\n%-8s %6s %8s %10s %10s\n", "op", "batch", "tokens", "time_us", "TFLOP/s");
    first = true;
    std::vector<int32_t> lens = {1024, 4096, 16384};
    if (quick) lens.pop_back();
    for (int32_t len : lens) {
        pool pl(1, len, kv_dim, page_size);
        float* q = device_f32(static_cast<size_t>(len) * n_head * head_dim);
        float* out = device_f32(static_cast<size_t>(len) * n_head * head_dim);
        int32_t* q_indptr = nullptr;
        const int32_t h_qi[2] = {0, len};
        BENCH_CHECK(cudaMalloc(&q_indptr, sizeof h_qi));
        BENCH_CHECK(cudaMemcpy(q_indptr, h_qi, sizeof h_qi, cudaMemcpyHostToDevice));
        kc::prefill_params p;
        p.shape = shape;
        p.kv = pl.view;
        p.batch = pl.batch;
        p.q_indptr = q_indptr;
        p.max_q_len = len;
        p.q = q;
        p.out = out;
        const double ms = median_ms(iters, [&] { BENCH_CHECK(kc::attention_prefill(p, nullptr)); });
        // Causal: query i sees i + 1 keys; 2 matmuls of 2 flops per multiply-add.
        const double flops = 4.0 * n_head * head_dim * (static_cast<double>(len) * (len + 1) / 2);
        const double tflops = flops / (ms * 1e-3) / 1e12;
        std::printf("%-8s %6d %8d %10.1f %10.2f\n", "prefill", 1, len, ms * 1e3, tflops);
        json += std::string(first ? "" : ", ") + "{\"tokens\": " + std::to_string(len) +
                ", \"us\": " + std::to_string(ms * 1e3) + ", \"tflops\": " + std::to_string(tflops) + "}";
        first = false;
        cudaFree(q);
        cudaFree(out);
        cudaFree(q_indptr);
    }
    json += "]}";
    std::printf("\n%s\n", json.c_str());
    return 0;
}
