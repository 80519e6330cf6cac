// The CPU forward entry points: each runs the kernels of the instruction set chosen once per
// process (isa.h).
#include <cctype>
#include <cstdlib>
#include <string>
#include "core/backend.h"
#include "isa.h"

namespace sa {
namespace cpu {
namespace {

// The highest level both built into this library and supported by the CPU and the OS.
Isa best_supported_isa() {
    Isa best = Isa::baseline;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
#if defined(SA_CPU_BUILD_AVX2)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
#endif
#if defined(SA_CPU_BUILD_AVX512)
    if (best == Isa::avx2 && __builtin_cpu_supports("avx512f")) best = Isa::avx512;
#endif
#endif
    return best;
}

Isa choose_isa() {
    const Isa best = best_supported_isa();
    const char* env = std::getenv("SPARSEATTN_CPU_ISA");
    if (!env) return best;
    std::string level(env);
    for (char& ch : level) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    Isa wanted = best;
    if (level == "baseline") wanted = Isa::baseline;
    else if (level == "avx2") wanted = Isa::avx2;
    else if (level == "avx512") wanted = Isa::avx512;
    // A level the CPU cannot run is lowered to the best one it can.
    return static_cast<int>(wanted) < static_cast<int>(best) ? wanted : best;
}

const AttentionKernels& active_kernels() {
    switch (active_isa()) {
#if defined(SA_CPU_BUILD_AVX512)
        case Isa::avx512: return isa_avx512::kAttentionKernels;
#endif
#if defined(SA_CPU_BUILD_AVX2)
        case Isa::avx2: return isa_avx2::kAttentionKernels;
#endif
        default: return isa_baseline::kAttentionKernels;
    }
}

}  // namespace

Isa active_isa() {
    static const Isa isa = choose_isa();
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
        default: return "baseline";
    }
}

const char* active_isa_name() { return isa_name(active_isa()); }

void dense_forward(const AttentionProblem& p) { active_kernels().dense(p); }

void neighborhood_forward(const AttentionProblem& p) { active_kernels().neighborhood(p); }

void block_sparse_forward(const AttentionProblem& p) { active_kernels().block_sparse(p); }

}  // namespace cpu
}  // namespace sa
