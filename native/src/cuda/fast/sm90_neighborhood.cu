// wgmma neighborhood forward kernels: 1-D, 2-D and 3-D windows, head dims 64 and 128, fp16
// and bf16.
#include "cuda/fast/launch_sm90.cuh"

namespace sa::cuda::fast {
SA_INSTANTIATE_SM90(64, FamilyKind::Neighborhood1)
SA_INSTANTIATE_SM90(64, FamilyKind::Neighborhood2)
SA_INSTANTIATE_SM90(64, FamilyKind::Neighborhood3)
SA_INSTANTIATE_SM90(128, FamilyKind::Neighborhood1)
SA_INSTANTIATE_SM90(128, FamilyKind::Neighborhood2)
SA_INSTANTIATE_SM90(128, FamilyKind::Neighborhood3)
}  // namespace sa::cuda::fast
