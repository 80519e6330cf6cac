// Fast tensor-core forward attention for every family (dense, neighborhood, block-sparse) on
// one main loop per instruction set. The dispatcher (cuda/dispatch.cu) sends covered problems
// here and everything else to the reference kernels.
#pragma once
#include "core/backend.h"

namespace sa::cuda::fast {
// True when a fast kernel handles this problem (family, dtype, head dim, alignment, device).
bool covered(const AttentionProblem& p);
// The same question before any tensor exists (capability query).
bool covered(sa_operation op, int32_t device, sa_dtype dtype, int32_t head_dim);
// Device scratch bytes split-KV needs for this problem (0 when it will not split).
size_t workspace_size(const AttentionProblem& p);
// Runs the fast kernel; p.workspace may be null, then the runtime's per-stream scratch is used.
void forward(const AttentionProblem& p);
}  // namespace sa::cuda::fast
