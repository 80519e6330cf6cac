// Chooses the kernel for each attention family: the fast tiled kernel where it covers the
// problem and the caller allows it, the reference kernel otherwise.
#include "cuda/fast/fast_attention.h"
#include "cuda/reference/reference.h"

namespace sa::cuda {

namespace {
bool use_fast(const AttentionProblem& p) { return p.kernel_choice != SA_KERNEL_REFERENCE && fast::covered(p); }
}  // namespace

size_t dense_workspace_size(const AttentionProblem& p) { return use_fast(p) ? fast::workspace_size(p) : 0; }

void dense_forward(const AttentionProblem& p) {
    if (use_fast(p)) fast::forward(p);
    else reference::dense_forward(p);
}

void neighborhood_forward(const AttentionProblem& p) {
    if (use_fast(p)) fast::forward(p);
    else reference::neighborhood_forward(p);
}

void block_sparse_forward(const AttentionProblem& p) {
    if (use_fast(p)) fast::forward(p);
    else reference::block_sparse_forward(p);
}

}  // namespace sa::cuda
