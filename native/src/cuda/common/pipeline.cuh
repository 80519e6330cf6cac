// Synchronization primitives of the warp-specialized Hopper loop: shared-memory mbarriers
// (init, arrive, parity wait, and the arrive that fires when a thread's cp.async copies land),
// named barriers between warpgroups, and register reallocation between warpgroups. Each wraps
// one PTX instruction (a wait loops on one); mbarriers and named barriers exist from sm_80,
// the parity try-wait and setmaxnreg need sm_90 / sm_90a.
#pragma once
#include <cstdint>

#include "cuda/common/wgmma.cuh"

namespace sa::cuda::common {

__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// One arrival, with release semantics for this thread's earlier memory operations.
__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
    asm volatile(
        "{\n"
        ".reg .b64 state;\n"
        "mbarrier.arrive.shared::cta.b64 state, [%0];\n"
        "}\n" ::"r"(bar)
        : "memory");
}

// One arrival that happens when every cp.async this thread issued before it has completed;
// the barrier's expected count includes it (.noinc).
__device__ __forceinline__ void cp_async_mbarrier_arrive(uint32_t bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

// Waits until the phase with this parity has completed (acquire).
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
#ifdef SA_WGMMA_ENABLED
    asm volatile(
        "{\n"
        ".reg .pred done;\n"
        "wait_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra wait_%=;\n"
        "}\n" ::"r"(bar),
        "r"(parity)
        : "memory");
#endif
}

// Named barrier `id` (1..15; 0 is __syncthreads) over `threads` threads: sync waits for all of
// them, arrive counts this warp in and goes on.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Moves registers between warpgroups: every warp of the warpgroup runs it with the same count.
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
#ifdef SA_WGMMA_ENABLED
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
#endif
}
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
#ifdef SA_WGMMA_ENABLED
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
#endif
}

// This thread's warpgroup index, read from lane 0 so the compiler knows it is warp-uniform.
__device__ __forceinline__ int warpgroup_index() { return __shfl_sync(0xffffffffu, int(threadIdx.x) / 128, 0); }

}  // namespace sa::cuda::common
