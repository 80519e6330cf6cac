// Fast tensor-core dense attention (FlashAttention-2 class main loop). The dispatcher in
// dense_dispatch.cu sends covered problems here and everything else to the reference kernel.
#pragma once
#include "core/backend.h"

namespace sa::cuda::fast {
// True when the fast kernel handles this problem (dtype, head dim, device capability, ...).
bool dense_covered(const AttentionProblem& p);
// Same question before any tensor exists (capability query).
bool dense_covered(int32_t device, sa_dtype dtype, int32_t head_dim);
// Device scratch bytes split-KV needs for this problem (0 when it will not split).
size_t dense_workspace_size(const AttentionProblem& p);
// Runs the fast kernel; p.workspace may be null, then the library's per-device cache is used.
void dense_forward(const AttentionProblem& p);
}  // namespace sa::cuda::fast
