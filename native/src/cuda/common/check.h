// CUDA status checks that turn failures into sa::Error carrying cudaGetErrorString.
#pragma once
#include <cuda_runtime.h>
#include <string>
#include "core/backend.h"

namespace sa::cuda {
inline void check_cuda(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        const sa_status code =
            status == cudaErrorMemoryAllocation ? SA_ERROR_OUT_OF_MEMORY : SA_ERROR_CUDA;
        throw Error(code, std::string(what) + ": " + cudaGetErrorString(status));
    }
}
// Call right after a launch: reports a bad configuration without synchronizing.
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }
}  // namespace sa::cuda
