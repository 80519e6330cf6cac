// Run-time choice of the CPU kernels' instruction set. The attention kernels (main loop,
// micro-kernels, softmax, conversions) are compiled once per level in their own translation
// unit; the level is chosen once, at the first call, from the CPU's features and the
// environment variable SPARSEATTN_CPU_ISA (baseline, avx2, avx512: at most that level).
#pragma once
#include "core/problem.h"

namespace sa {
namespace cpu {

enum class Isa { baseline = 0, avx2 = 1, avx512 = 2 };

struct AttentionKernels {
    void (*dense)(const AttentionProblem& p);
    void (*neighborhood)(const AttentionProblem& p);
    void (*block_sparse)(const AttentionProblem& p);
};

namespace isa_baseline { extern const AttentionKernels kAttentionKernels; }
#if defined(SA_CPU_BUILD_AVX2)
namespace isa_avx2 { extern const AttentionKernels kAttentionKernels; }
#endif
#if defined(SA_CPU_BUILD_AVX512)
namespace isa_avx512 { extern const AttentionKernels kAttentionKernels; }
#endif

Isa active_isa();            // the level the kernels run at
const char* isa_name(Isa isa);

}  // namespace cpu
}  // namespace sa
