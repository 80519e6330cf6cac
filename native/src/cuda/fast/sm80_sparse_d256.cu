// mma.sync block-sparse and neighborhood forward kernels for head dim 256 (fp16, bf16).
#include "cuda/fast/launch_sm80.cuh"

namespace sa::cuda::fast {
SA_INSTANTIATE_SM80(256, FamilyKind::BlockSparse)
SA_INSTANTIATE_SM80(256, FamilyKind::Neighborhood1)
SA_INSTANTIATE_SM80(256, FamilyKind::Neighborhood2)
SA_INSTANTIATE_SM80(256, FamilyKind::Neighborhood3)
}  // namespace sa::cuda::fast
