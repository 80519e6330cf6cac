// wgmma dense forward kernels: head dims 64, 128 and 256, fp16 and bf16, causal and not.
#include "cuda/fast/launch_sm90.cuh"

namespace sa::cuda::fast {

bool sm90_compiled() {
#ifdef SPARSEATTN_HAVE_SM90A
    return true;
#else
    return false;
#endif
}

SA_INSTANTIATE_SM90(64, FamilyKind::Dense)
SA_INSTANTIATE_SM90(64, FamilyKind::DenseCausal)
SA_INSTANTIATE_SM90(128, FamilyKind::Dense)
SA_INSTANTIATE_SM90(128, FamilyKind::DenseCausal)
SA_INSTANTIATE_SM90(256, FamilyKind::Dense)
SA_INSTANTIATE_SM90(256, FamilyKind::DenseCausal)
}  // namespace sa::cuda::fast
