// Checks shared by the attention calls (dense, varlen, neighborhood, block-sparse): q/k/v/out/lse
// against each other, head dims, options, and the problem they fill.
#pragma once
#include "tensor_checks.h"

namespace sa {
namespace check {

void check_head_dim(const View& q, int64_t head_dim);
float resolve_scale(float scale, int64_t head_dim, const char* name);
void apply_options(AttentionProblem& p, const sa_attention_options* options);
void init_geometry(NeighborhoodGeometry& g);
AttentionProblem blank_problem(Family family);

struct AttentionViews {
    View q, k, v, out, lse;
    bool has_lse = false;
    CallBuffers buffers;  // q, k, v read; out, lse written
};

// q/k/v/out/lse checks shared by the batched ([B, S, H, D]) and varlen ([T, H, D]) layouts.
AttentionViews check_attention_tensors(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse, bool varlen);

// The batched layout's checks; the caller adds its index tensors to buffers and then checks
// them for overlap.
AttentionProblem validate_batched(Family family, const sa_tensor* q, const sa_tensor* k,
                                  const sa_tensor* v, const sa_tensor* out, const sa_tensor* lse,
                                  const sa_attention_options* options, CallBuffers* buffers);

// options->workspace is scratch the CUDA backend writes: one more output, as a byte range.
void add_workspace(CallBuffers& b, const sa_attention_options* options);

}  // namespace check
}  // namespace sa
