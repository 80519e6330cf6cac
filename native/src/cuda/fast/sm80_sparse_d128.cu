// mma.sync block-sparse and neighborhood forward kernels for head dim 128 (fp16, bf16).
#include "cuda/fast/launch_sm80.cuh"

namespace sa::cuda::fast {
SA_INSTANTIATE_SM80(128, FamilyKind::BlockSparse)
SA_INSTANTIATE_SM80(128, FamilyKind::Neighborhood)
}  // namespace sa::cuda::fast
