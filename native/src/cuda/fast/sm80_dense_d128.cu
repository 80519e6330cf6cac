// mma.sync dense forward kernels for head dim 128 (fp16, bf16; causal and not; both tile variants).
#include "cuda/fast/launch_sm80.cuh"

namespace sa::cuda::fast {
SA_INSTANTIATE_SM80(128, FamilyKind::Dense)
SA_INSTANTIATE_SM80(128, FamilyKind::DenseCausal)
}  // namespace sa::cuda::fast
