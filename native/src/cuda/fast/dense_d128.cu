// Fast dense forward kernels for head dim 128 (fp16, bf16; causal and not; both tile variants).
#include "cuda/fast/dense_launch.cuh"

namespace sa::cuda::fast {
SA_INSTANTIATE_DENSE_HEAD_DIM(128)
}  // namespace sa::cuda::fast
