// The interface between core (validation, dispatch) and the backends. Backends receive only
// validated problems: shapes, strides, dtypes, devices, the overlap of read and written buffers
// and, for host tensors, the contents of block lists, permutations and cu_seqlens are checked in
// core and not re-checked here. Backends report their own failures by throwing sa::Error.
#pragma once
#include <stdexcept>
#include <string>
#include "problem.h"

namespace sa {

class Error : public std::runtime_error {
public:
    Error(sa_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    sa_status status() const noexcept { return status_; }

private:
    sa_status status_;
};

[[noreturn]] inline void throw_invalid(const std::string& message) {
    throw Error(SA_ERROR_INVALID_ARGUMENT, message);
}

namespace cpu {
void dense_forward(const AttentionProblem& p);  // dense and varlen
void neighborhood_forward(const AttentionProblem& p);
void block_sparse_forward(const AttentionProblem& p);
void lse_merge(const MergeProblem& m);
void block_mask_to_lists(const MaskConversion& c);
void block_lists_to_mask(const MaskConversion& c);
void pbs_plan(const PbsProblem& p);
const char* active_isa_name();  // "baseline", "avx2" or "avx512": the level the kernels run at
}  // namespace cpu

#if defined(SPARSEATTN_WITH_CUDA)
namespace cuda {
int32_t device_count();  // 0 when no driver or device; never throws
void device_info(int32_t device, sa_device_info* info);
bool fast_path_covered(sa_operation op, int32_t device, sa_dtype dtype, int32_t head_dim);
void check_device(int32_t device);  // throws invalid argument when out of range

void* malloc_device(int32_t device, size_t bytes);
void free_device(int32_t device, void* ptr);
void memcpy(void* dst, const void* src, size_t bytes, sa_copy_kind kind, void* stream);
void memset(void* dst, int32_t value, size_t bytes, void* stream);
void* stream_create(int32_t device);
void stream_synchronize(void* stream);
void stream_destroy(void* stream);
void device_synchronize(int32_t device);

size_t dense_workspace_size(const AttentionProblem& p);
void dense_forward(const AttentionProblem& p);  // dense and varlen
void neighborhood_forward(const AttentionProblem& p);
void block_sparse_forward(const AttentionProblem& p);
void lse_merge(const MergeProblem& m);
void block_mask_to_lists(const MaskConversion& c);
void block_lists_to_mask(const MaskConversion& c);
void pbs_plan(const PbsProblem& p);
}  // namespace cuda
#endif

}  // namespace sa
