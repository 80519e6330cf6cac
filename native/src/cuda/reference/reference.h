// Simple, obviously correct CUDA kernels: the GPU-side oracle and the fallback for shapes the
// fast kernels do not cover. One thread block per (query row tile, head, batch); fp32 math.
#pragma once
#include "core/backend.h"

namespace sa::cuda::reference {
void dense_forward(const AttentionProblem& p);  // dense and varlen
void neighborhood_forward(const AttentionProblem& p);
void block_sparse_forward(const AttentionProblem& p);
}  // namespace sa::cuda::reference
