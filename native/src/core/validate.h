// Argument validation: turns ABI tensor descriptors into the normalized problems of
// problem.h, or throws sa::Error naming the offending argument and its value. One file per
// family (validate_*.cpp) over the shared checks of tensor_checks.h (descriptors, index tensors,
// overlap of read and written buffers) and attention_checks.h. Checks run in a fixed order
// (pointers, ranks, devices, dtypes, shapes, options, memory overlap, then host-side contents)
// and build messages only on failure, so the success path allocates nothing.
#pragma once
#include "problem.h"

namespace sa {

AttentionProblem validate_dense(const sa_tensor* q, const sa_tensor* k, const sa_tensor* v,
                                const sa_tensor* out, const sa_tensor* lse,
                                const sa_attention_options* options);

AttentionProblem validate_dense_varlen(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse, const sa_tensor* cu_seqlens_q,
                                       const sa_tensor* cu_seqlens_k, int32_t max_seqlen_q,
                                       int32_t max_seqlen_k,
                                       const sa_attention_options* options);

// q and k only (v is taken to be shaped like k, out like q): for workspace queries.
AttentionProblem validate_dense_shapes(const sa_tensor* q, const sa_tensor* k,
                                       const sa_attention_options* options);

AttentionProblem validate_neighborhood(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse,
                                       const sa_neighborhood_params* params,
                                       const sa_attention_options* options);

AttentionProblem validate_block_sparse(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse,
                                       const sa_block_sparse_params* params,
                                       const sa_attention_options* options);

MergeProblem validate_merge(const sa_tensor* o1, const sa_tensor* lse1, const sa_tensor* o2,
                            const sa_tensor* lse2, const sa_tensor* out,
                            const sa_tensor* lse_out, void* stream);

MaskConversion validate_mask_to_lists(const sa_tensor* dense_mask,
                                      const sa_tensor* kv_num_blocks,
                                      const sa_tensor* kv_indices, void* stream);

MaskConversion validate_lists_to_mask(const sa_tensor* kv_num_blocks,
                                      const sa_tensor* kv_indices, const sa_tensor* dense_mask,
                                      void* stream);

PbsProblem validate_pbs(const sa_tensor* q, const sa_tensor* k, const sa_pbs_options* options,
                        const sa_tensor* key_perm, const sa_tensor* kv_num_blocks,
                        const sa_tensor* kv_indices);

// Validates a neighborhood configuration on its own (grid sizes, kernels, strides, ...).
NeighborhoodGeometry validate_neighborhood_params(const sa_neighborhood_params* params);

// Block-list pair count for host tensors (validation of shapes and contents included).
int64_t block_sparse_pair_count(int64_t s_q, int64_t s_k, int32_t block_q, int32_t block_k,
                                int32_t causal, const sa_tensor* kv_num_blocks,
                                const sa_tensor* kv_indices);

// Throws unsupported when the CUDA backend is not built, invalid argument for a bad ordinal.
void require_cuda_device(int32_t device, const char* what);

}  // namespace sa
