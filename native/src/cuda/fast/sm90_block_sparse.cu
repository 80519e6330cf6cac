// wgmma block-sparse forward kernels: head dims 64 and 128, fp16 and bf16.
#include "cuda/fast/launch_sm90.cuh"

namespace sa::cuda::fast {
SA_INSTANTIATE_SM90(64, FamilyKind::BlockSparse)
SA_INSTANTIATE_SM90(128, FamilyKind::BlockSparse)
}  // namespace sa::cuda::fast
