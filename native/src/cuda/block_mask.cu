// Dense boolean block mask <-> block lists (ascending indices, unused entries -1).
#include <string>

#include "cuda/runtime.h"

namespace sa::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

// One warp per (batch, head, query block) row: a ballot compacts the set entries in order.
__global__ void __launch_bounds__(kWarpsPerBlock * 32) mask_to_lists_kernel(const MaskConversion c) {
    const int lane = static_cast<int>(threadIdx.x & 31);
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (row >= c.batch * c.heads * c.num_q_blocks) return;
    const int64_t width = c.num_k_blocks;
    const uint8_t* mask = c.mask_in + row * width;
    int32_t* indices = c.idx_out + row * width;
    const unsigned lower_lanes = (1u << lane) - 1u;
    int64_t count = 0;
    for (int64_t base = 0; base < width; base += 32) {
        const int64_t j = base + lane;
        const bool set = j < width && mask[j] != 0;
        const unsigned ballot = __ballot_sync(0xffffffffu, set);
        if (set) indices[count + __popc(ballot & lower_lanes)] = static_cast<int32_t>(j);
        count += __popc(ballot);
    }
    for (int64_t j = count + lane; j < width; j += 32) indices[j] = -1;
    if (lane == 0) c.num_out[row] = static_cast<int32_t>(count);
}

// One warp per row: clear the row, then set the listed blocks (entries outside [0, nK) skipped).
__global__ void __launch_bounds__(kWarpsPerBlock * 32) lists_to_mask_kernel(const MaskConversion c) {
    const int lane = static_cast<int>(threadIdx.x & 31);
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (row >= c.batch * c.heads * c.num_q_blocks) return;
    const int64_t width = c.num_k_blocks;
    uint8_t* mask = c.mask_out + row * width;
    for (int64_t j = lane; j < width; j += 32) mask[j] = 0;
    __syncwarp();
    int64_t count = c.num_in[row];
    if (count > c.idx_in_capacity) count = c.idx_in_capacity;
    const int32_t* indices = c.idx_in + row * c.idx_in_capacity;
    for (int64_t e = lane; e < count; e += 32) {
        const int32_t j = indices[e];
        if (j >= 0 && j < width) mask[j] = 1;
    }
}

template <typename Kernel>
void launch_rows(Kernel kernel, const MaskConversion& c, const char* name) {
    const int64_t rows = c.batch * c.heads * c.num_q_blocks;
    if (rows == 0) return;
    const int64_t blocks = ceil_div(rows, kWarpsPerBlock);
    if (blocks > 0x7fffffff)
        throw_invalid(std::string(name) + ": B*H*nQ = " + std::to_string(rows) +
                      " rows exceed one launch");
    DeviceGuard guard(c.device_id);
    kernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0,
             static_cast<cudaStream_t>(c.stream)>>>(c);
    check_kernel_launch(name);
}

}  // namespace

void block_mask_to_lists(const MaskConversion& c) {
    launch_rows(&mask_to_lists_kernel, c, "block mask to lists kernel");
}

void block_lists_to_mask(const MaskConversion& c) {
    launch_rows(&lists_to_mask_kernel, c, "block lists to mask kernel");
}

}  // namespace sa::cuda
