// Chooses the kernel for each attention family: the fast tiled kernel where it covers the
// problem and the caller allows it, the reference kernel otherwise.
#include <algorithm>

#include "core/backend.h"
#include "core/tensor_checks.h"
#include "cuda/fast/fast_attention.h"
#include "cuda/reference/reference.h"

namespace sa::cuda {

namespace {
bool use_fast(const AttentionProblem& p) { return p.kernel_choice != SA_KERNEL_REFERENCE && fast::covered(p); }

// The kernels apply bottom-right causal masks (j <= i + S_k - S_q). Top-left (j <= i) is the
// same mask on a reshaped problem: with S_q <= S_k no query sees a key past S_q - 1, so it is
// bottom-right over the first S_q keys; with S_q > S_k queries [0, S_k) are the square case
// and queries [S_k, S_q) see every key. At most two bottom-right calls, no kernel change.
struct BottomRightParts {
    AttentionProblem part[2];
    int count = 0;
};

BottomRightParts as_bottom_right(const AttentionProblem& p) {
    BottomRightParts r;
    AttentionProblem a = p;
    a.causal_top_left = false;
    // Varlen: seqlen_q/k are only bounds and each sequence's lengths live on the device.
    if (p.causal_top_left && p.cu_seqlens_q != nullptr)
        throw Error(SA_ERROR_UNSUPPORTED,
                    "top-left causal alignment is not supported for packed variable-length calls "
                    "on CUDA (the sequence lengths live on the device); use bottom-right alignment "
                    "or the CPU backend");
    if (!p.causal_top_left || p.seqlen_q == p.seqlen_k) {
        r.part[r.count++] = a;
        return r;
    }
    if (p.seqlen_q < p.seqlen_k) {
        a.seqlen_k = p.seqlen_q;
        r.part[r.count++] = a;
        return r;
    }
    a.seqlen_q = p.seqlen_k;  // the square part, queries [0, S_k)
    r.part[r.count++] = a;
    AttentionProblem rest = p;  // queries [S_k, S_q): every key, no mask
    const int64_t skip = p.seqlen_k, element = check::dtype_size(p.dtype);
    rest.causal = false;
    rest.causal_top_left = false;
    rest.seqlen_q = p.seqlen_q - skip;
    rest.q = static_cast<const char*>(p.q) + skip * p.q_strides.seq * element;
    rest.out = static_cast<char*>(p.out) + skip * p.out_strides.seq * element;
    if (p.lse != nullptr) rest.lse = p.lse + skip * p.lse_strides.seq;
    r.part[r.count++] = rest;
    return r;
}

void dense_part(const AttentionProblem& p) {
    if (use_fast(p)) fast::forward(p);
    else reference::dense_forward(p);
}
}  // namespace

size_t dense_workspace_size(const AttentionProblem& p) {
    const BottomRightParts parts = as_bottom_right(p);
    size_t bytes = 0;  // the parts run one after the other on one stream and share the workspace
    for (int i = 0; i < parts.count; ++i)
        if (use_fast(parts.part[i])) bytes = std::max(bytes, fast::workspace_size(parts.part[i]));
    return bytes;
}

void dense_forward(const AttentionProblem& p) {
    const BottomRightParts parts = as_bottom_right(p);
    for (int i = 0; i < parts.count; ++i) dense_part(parts.part[i]);
}

void neighborhood_forward(const AttentionProblem& p) {
    if (use_fast(p)) fast::forward(p);
    else reference::neighborhood_forward(p);
}

void block_sparse_forward(const AttentionProblem& p) {
    if (p.causal_top_left && p.seqlen_q != p.seqlen_k)
        throw Error(SA_ERROR_UNSUPPORTED,
                    "top-left causal alignment with S_q != S_k is not supported for block-sparse "
                    "calls on CUDA; use bottom-right alignment (or S_q == S_k, where the two agree) "
                    "or the CPU backend");
    if (use_fast(p)) fast::forward(p);
    else reference::block_sparse_forward(p);
}

}  // namespace sa::cuda
