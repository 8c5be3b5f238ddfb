// Run-time ISA selection and dispatch of the vector kernels.
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstdlib>
#include <cstring>

#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

namespace {

#if defined(__x86_64__) || defined(__i386__)
// CPUID.1:ECX.F16C (Clang before 16 has no "f16c" in __builtin_cpu_supports).
bool cpu_has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
    return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return false;
#endif
}

bool cpu_has_vnni() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}

isa detect_best() {
    isa level = cpu_has_avx512() ? isa::avx512 : cpu_has_avx2() ? isa::avx2 : isa::scalar;
    if (const char* env = std::getenv("MNEMOS_ISA")) {
        isa want = level;
        if (std::strcmp(env, "scalar") == 0)
            want = isa::scalar;
        else if (std::strcmp(env, "avx2") == 0)
            want = isa::avx2;
        else if (std::strcmp(env, "avx512") == 0)
            want = isa::avx512;
        if (static_cast<int>(want) < static_cast<int>(level)) level = want;  // only lowers
    }
    return level;
}

// Whether the AVX-512 kernels may run for a request of `level`.
inline bool use_avx512(isa level) { return level == isa::avx512 && isa_supported(isa::avx512); }

// Whether the AVX2 kernels may run for a request of `level` (AVX-512 requests on a CPU without it use them).
inline bool use_avx2(isa level) { return level != isa::scalar && isa_supported(isa::avx2); }

}  // namespace

isa best_isa() {
    static const isa level = detect_best();
    return level;
}

const char* isa_name(isa level) {
    switch (level) {
        case isa::scalar:
            return "scalar";
        case isa::avx2:
            return "avx2";
        case isa::avx512:
            return "avx512";
    }
    return "unknown";
}

bool cpu_has_avx512_vnni() {
    static const bool has_vnni = cpu_has_vnni();
    return has_vnni;
}

bool isa_avx512_vnni() { return cpu_has_avx512_vnni(); }

bool isa_amx() { return isa_supported(isa::avx512) && amx_enabled(); }

bool isa_supported(isa level) {
    static const bool has_avx2 = cpu_has_avx2();
    static const bool has_avx512 = cpu_has_avx512();
    switch (level) {
        case isa::scalar:
            return true;
        case isa::avx2:
            return has_avx2;
        case isa::avx512:
            return has_avx512;
    }
    return false;
}

float vec_dot(isa level, ggml_type wt, int64_t n, const void* w, const void* x) {
    if (use_avx512(level)) return vec_dot_avx512(wt, n, w, x, cpu_has_avx512_vnni());
    if (use_avx2(level)) return vec_dot_avx2(wt, n, w, x);
    return vec_dot_ref(wt, n, w, x);
}

float dot_f16_f32(isa level, int64_t n, const uint16_t* a, const float* b) {
    if (use_avx512(level)) return dot_f16_f32_avx512(n, a, b);
    if (use_avx2(level)) return dot_f16_f32_avx2(n, a, b);
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += fp16_to_fp32(a[i]) * b[i];
    return s;
}

void axpy_f16(isa level, int64_t n, float alpha, const uint16_t* x, float* y) {
    if (use_avx512(level)) return axpy_f16_avx512(n, alpha, x, y);
    if (use_avx2(level)) return axpy_f16_avx2(n, alpha, x, y);
    for (int64_t i = 0; i < n; ++i) y[i] += alpha * fp16_to_fp32(x[i]);
}

void convert_f32_to_f16(isa level, int64_t n, const float* src, uint16_t* dst) {
    if (use_avx512(level)) return convert_f32_to_f16_avx512(n, src, dst);
    if (use_avx2(level)) return convert_f32_to_f16_avx2(n, src, dst);
    for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

}  // namespace mnemos::kernels
