// Device management, memory, streams and the scratch cache of the CUDA backend.
#include "cuda/runtime.h"

#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cuda/fast/fast_attention.h"

namespace sa::cuda {

void check(cudaError_t status, const char* what) {
    if (status == cudaSuccess) return;
    // Clears the non-sticky error state so the next launch check reports only its own failure.
    (void)cudaGetLastError();
    const std::string message = std::string(what) + ": " + cudaGetErrorString(status);
    if (status == cudaErrorMemoryAllocation) throw Error(SA_ERROR_OUT_OF_MEMORY, message);
    throw Error(SA_ERROR_CUDA, message);
}

DeviceGuard::DeviceGuard(int32_t device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) {
        check(cudaSetDevice(device), "cudaSetDevice");
        restore_ = true;
    }
}

DeviceGuard::~DeviceGuard() {
    if (restore_) (void)cudaSetDevice(previous_);
}

int32_t device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();  // no driver or no device: not an error for the caller
        return 0;
    }
    return count;
}

void check_device(int32_t device) {
    const int32_t count = device_count();
    if (device < 0 || device >= count)
        throw_invalid("device: " + std::to_string(device) + " is out of range (" +
                      std::to_string(count) + " CUDA device(s) present)");
}

void device_info(int32_t device, sa_device_info* info) {
    check_device(device);
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    std::memset(info, 0, sizeof(*info));
    std::strncpy(info->name, prop.name, sizeof(info->name) - 1);
    info->compute_major = prop.major;
    info->compute_minor = prop.minor;
    info->multiprocessor_count = prop.multiProcessorCount;
    info->total_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
    info->l2_cache_bytes = static_cast<int64_t>(prop.l2CacheSize);
    info->max_shared_memory_per_block = static_cast<int64_t>(prop.sharedMemPerBlockOptin);
}

bool fast_path_covered(sa_operation op, int32_t device, sa_dtype dtype, int32_t head_dim) {
    return fast::covered(op, device, dtype, head_dim);
}

void* malloc_device(int32_t device, size_t bytes) {
    DeviceGuard guard(device);
    void* ptr = nullptr;
    check(cudaMalloc(&ptr, bytes), "cudaMalloc");
    return ptr;
}

void free_device(int32_t device, void* ptr) {
    DeviceGuard guard(device);
    check(cudaFree(ptr), "cudaFree");
}

void memcpy(void* dst, const void* src, size_t bytes, sa_copy_kind kind, void* stream) {
    cudaMemcpyKind cuda_kind = cudaMemcpyDeviceToDevice;
    if (kind == SA_COPY_HOST_TO_DEVICE) cuda_kind = cudaMemcpyHostToDevice;
    else if (kind == SA_COPY_DEVICE_TO_HOST) cuda_kind = cudaMemcpyDeviceToHost;
    auto s = static_cast<cudaStream_t>(stream);
    check(cudaMemcpyAsync(dst, src, bytes, cuda_kind, s), "cudaMemcpyAsync");
    // Host buffers may be reused as soon as the call returns.
    if (kind != SA_COPY_DEVICE_TO_DEVICE) check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

void memset(void* dst, int32_t value, size_t bytes, void* stream) {
    check(cudaMemsetAsync(dst, value, bytes, static_cast<cudaStream_t>(stream)), "cudaMemsetAsync");
}

void* stream_create(int32_t device) {
    DeviceGuard guard(device);
    cudaStream_t stream = nullptr;
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    return stream;
}

void stream_synchronize(void* stream) {
    check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

void stream_destroy(void* stream) {
    release_scratch(stream);
    check(cudaStreamDestroy(static_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
}

void device_synchronize(int32_t device) {
    DeviceGuard guard(device);
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

namespace {

struct ScratchBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
};

std::mutex& scratch_mutex() {
    static std::mutex m;
    return m;
}

struct ScratchEntry {
    int32_t device;
    void* stream;
    ScratchBuffer buffer;
};

// A short list (devices x streams in use); never destroyed, since the CUDA context may be gone
// at process exit.
std::vector<ScratchEntry>& scratch_entries() {
    static auto* entries = new std::vector<ScratchEntry>();
    return *entries;
}

ScratchBuffer& scratch_buffer(int32_t device, void* stream) {
    auto& entries = scratch_entries();
    for (auto& entry : entries)
        if (entry.device == device && entry.stream == stream) return entry.buffer;
    entries.push_back({device, stream, {}});
    return entries.back().buffer;
}

}  // namespace

ScratchLease scratch(int32_t device, void* stream, size_t bytes) {
    std::unique_lock<std::mutex> lock(scratch_mutex());
    ScratchBuffer& buffer = scratch_buffer(device, stream);
    if (buffer.bytes >= bytes && buffer.ptr != nullptr) return ScratchLease(std::move(lock), buffer.ptr);
    DeviceGuard guard(device);
    if (buffer.ptr != nullptr) {
        // cudaFree waits for queued work, so kernels still reading the old buffer finish first.
        check(cudaFree(buffer.ptr), "cudaFree (scratch)");
        buffer.ptr = nullptr;
        buffer.bytes = 0;
    }
    const size_t granule = size_t{1} << 20;
    const size_t rounded = (bytes + granule - 1) / granule * granule;
    check(cudaMalloc(&buffer.ptr, rounded), "cudaMalloc (scratch)");
    buffer.bytes = rounded;
    return ScratchLease(std::move(lock), buffer.ptr);
}

void release_scratch(void* stream) {
    std::lock_guard<std::mutex> lock(scratch_mutex());
    auto& entries = scratch_entries();
    for (size_t i = 0; i < entries.size();) {
        if (entries[i].stream == stream) {
            const ScratchEntry entry = entries[i];
            entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
            if (entry.buffer.ptr != nullptr) {
                DeviceGuard guard(entry.device);
                check(cudaFree(entry.buffer.ptr), "cudaFree (scratch)");
            }
        } else {
            ++i;
        }
    }
}

size_t enable_large_smem(const void* kernel, int32_t device) {
    struct Limit {
        const void* kernel;
        int32_t device;
        size_t bytes;
    };
    static std::mutex mutex;
    static std::vector<Limit> limits;
    std::lock_guard<std::mutex> lock(mutex);
    for (const Limit& limit : limits)
        if (limit.kernel == kernel && limit.device == device) return limit.bytes;
    int optin = 0;
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "cudaDeviceGetAttribute");
    cudaFuncAttributes attributes;
    check(cudaFuncGetAttributes(&attributes, kernel), "cudaFuncGetAttributes");
    const size_t dynamic_max = static_cast<size_t>(optin) - attributes.sharedSizeBytes;
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(dynamic_max)),
          "cudaFuncSetAttribute");
    limits.push_back({kernel, device, dynamic_max});
    return dynamic_max;
}

// Linear caches (std::map does not compile under nvcc 11.8 with libstdc++ 12); a handful of
// entries per process.
int device_attribute(int32_t device, cudaDeviceAttr attr) {
    struct Entry {
        int32_t device;
        cudaDeviceAttr attr;
        int value;
    };
    static std::mutex mutex;
    static std::vector<Entry> cache;
    std::lock_guard<std::mutex> lock(mutex);
    for (const Entry& e : cache)
        if (e.device == device && e.attr == attr) return e.value;
    int value = 0;
    check(cudaDeviceGetAttribute(&value, attr, device), "cudaDeviceGetAttribute");
    cache.push_back({device, attr, value});
    return value;
}

int prepare_kernel(const void* kernel, size_t smem_bytes, int threads, int32_t device) {
    struct Entry {
        const void* kernel;
        int32_t device;
        int blocks;
    };
    static std::mutex mutex;
    static std::vector<Entry> cache;
    std::lock_guard<std::mutex> lock(mutex);
    for (const Entry& e : cache)
        if (e.kernel == kernel && e.device == device) return e.blocks;
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_bytes)),
          "cudaFuncSetAttribute (fast attention shared memory)");
    int blocks = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, smem_bytes),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor (fast attention)");
    cache.push_back({kernel, device, blocks});
    return blocks;
}

}  // namespace sa::cuda
