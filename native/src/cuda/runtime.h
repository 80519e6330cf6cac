// CUDA runtime plumbing shared by the backend's .cu files: error checks that throw sa::Error,
// a scoped current-device guard, and the per-(device, stream) scratch cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <cuda_runtime.h>

#include "core/backend.h"

namespace sa::cuda {

// Throws sa::Error (SA_ERROR_CUDA, or SA_ERROR_OUT_OF_MEMORY for allocation failures) with
// "<what>: <cuda error string>" when status is not cudaSuccess.
void check(cudaError_t status, const char* what);

// Checks the launch just made (configuration errors surface through cudaGetLastError).
inline void check_kernel_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Makes `device` current for the scope and restores the caller's current device after.
class DeviceGuard {
public:
    explicit DeviceGuard(int32_t device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = -1;
    bool restore_ = false;
};

// Device scratch private to the library, cached per (device, stream) so work queued on one
// stream never shares bytes with another; it grows (reallocates) only when a call needs more.
// The lease holds the cache lock: keep it while enqueuing the work that uses the bytes, so two
// host threads on one stream cannot interleave their kernels over the same scratch.
class ScratchLease {
public:
    ScratchLease(std::unique_lock<std::mutex> lock, void* data)
        : lock_(std::move(lock)), data_(data) {}
    void* data() const { return data_; }

private:
    std::unique_lock<std::mutex> lock_;
    void* data_;
};
ScratchLease scratch(int32_t device, void* stream, size_t bytes);
// Frees the scratch held for a stream (called when the library destroys that stream).
void release_scratch(void* stream);

// Raises a kernel's dynamic shared memory limit to the device's opt-in maximum, once per
// (kernel, device); returns that maximum in bytes.
size_t enable_large_smem(const void* kernel, int32_t device);

// A device attribute, read once per (device, attribute).
int device_attribute(int32_t device, cudaDeviceAttr attr);

// Raises `kernel`'s dynamic shared-memory limit to smem_bytes on `device` once and returns its
// resident blocks per multiprocessor at `threads` threads (cached per kernel and device).
int prepare_kernel(const void* kernel, size_t smem_bytes, int threads, int32_t device);

// Integer ceil division for launch geometry.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace sa::cuda
