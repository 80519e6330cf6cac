// mma.sync dense forward kernels for head dim 64 (fp16, bf16; causal and not; both tile variants).
#include "cuda/fast/launch_sm80.cuh"

namespace sa::cuda::fast {
SA_INSTANTIATE_SM80(64, FamilyKind::Dense)
SA_INSTANTIATE_SM80(64, FamilyKind::DenseCausal)
}  // namespace sa::cuda::fast
