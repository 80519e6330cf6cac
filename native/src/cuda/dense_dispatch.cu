// Chooses the kernel for each attention family: the fast tiled kernel where it covers the
// problem and the caller allows it, the reference kernel otherwise.
#include "cuda/fast/fast_dense.h"
#include "cuda/reference/reference.h"

namespace sa::cuda {

namespace {
bool use_fast_dense(const AttentionProblem& p) {
    return p.kernel_choice != SA_KERNEL_REFERENCE && fast::dense_covered(p);
}
}  // namespace

size_t dense_workspace_size(const AttentionProblem& p) {
    return use_fast_dense(p) ? fast::dense_workspace_size(p) : 0;
}

void dense_forward(const AttentionProblem& p) {
    if (use_fast_dense(p))
        fast::dense_forward(p);
    else
        reference::dense_forward(p);
}

void neighborhood_forward(const AttentionProblem& p) { reference::neighborhood_forward(p); }

void block_sparse_forward(const AttentionProblem& p) { reference::block_sparse_forward(p); }

}  // namespace sa::cuda
