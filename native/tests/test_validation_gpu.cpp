// Validation rules that only apply to CUDA tensors (skipped without a device).
#include "test_util.h"

using namespace sa_test;

namespace {

// Device buffers for q/k/v/out of shape [1, 16, 2, D]; freed on scope exit.
struct DeviceDense {
    void* buffers[4] = {nullptr, nullptr, nullptr, nullptr};
    sa_tensor q{}, k{}, v{}, out{};
    DeviceDense(sa_dtype dtype, int64_t D) {
        sa_tensor* ts[4] = {&q, &k, &v, &out};
        const size_t bytes = static_cast<size_t>(16 * 2 * D) * dtype_bytes(dtype);
        for (int i = 0; i < 4; ++i) {
            REQUIRE_OK(sa_cuda_malloc(0, bytes, &buffers[i]));
            REQUIRE_OK(sa_cuda_memset(buffers[i], 0, bytes, nullptr));
            sa_tensor& t = *ts[i];
            t.data = buffers[i];
            t.dtype = dtype;
            t.device_type = SA_DEVICE_CUDA;
            t.device_id = 0;
            t.rank = 4;
            const int64_t shape[4] = {1, 16, 2, D}, strides[4] = {16 * 2 * D, 2 * D, D, 1};
            for (int d = 0; d < 4; ++d) {
                t.shape[d] = shape[d];
                t.strides[d] = strides[d];
            }
        }
        REQUIRE_OK(sa_cuda_device_synchronize(0));
    }
    ~DeviceDense() {
        for (void* p : buffers)
            if (p) sa_cuda_free(0, p);
    }
    sa_status run() { return sa_dense_forward(&q, &k, &v, &out, nullptr, nullptr); }
};

}  // namespace

SA_TEST(validation_gpu_dtype_f16_bf16_only) {
    SA_REQUIRE_CUDA_DEVICE();
    DeviceDense f32(SA_DTYPE_F32, 64);
    CHECK_ERROR(f32.run(), SA_ERROR_INVALID_ARGUMENT, "q: dtype f32 is not supported on the CUDA backend");
    DeviceDense f16(SA_DTYPE_F16, 64);
    CHECK_OK(f16.run());
    CHECK_OK(sa_cuda_device_synchronize(0));
}

SA_TEST(validation_gpu_head_dim_multiple_of_8_up_to_256) {
    SA_REQUIRE_CUDA_DEVICE();
    DeviceDense odd(SA_DTYPE_BF16, 12);
    CHECK_ERROR(odd.run(), SA_ERROR_INVALID_ARGUMENT, "q: unsupported head dim D = 12");
    DeviceDense big(SA_DTYPE_BF16, 264);
    CHECK_ERROR(big.run(), SA_ERROR_INVALID_ARGUMENT, "q: unsupported head dim D = 264");
}

SA_TEST(validation_gpu_device_ordinal_and_mixing) {
    SA_REQUIRE_CUDA_DEVICE();
    int32_t count = 0;
    REQUIRE_OK(sa_cuda_device_count(&count));
    DeviceDense d(SA_DTYPE_F16, 32);
    d.q.device_id = count;  // one past the last device
    d.k.device_id = count;
    d.v.device_id = count;
    d.out.device_id = count;
    CHECK_STATUS(d.run(), SA_ERROR_INVALID_ARGUMENT);
    DeviceDense m(SA_DTYPE_F16, 32);
    HostTensor host = HostTensor::contiguous(SA_DTYPE_F16, {1, 16, 2, 32});
    CHECK_ERROR(sa_dense_forward(&m.q, &m.k, &m.v, host.d(), nullptr, nullptr),
                SA_ERROR_INVALID_ARGUMENT, "out: device cpu differs from q's device cuda:0");
    sa_device_info info;
    CHECK_OK(sa_cuda_device_info(0, &info));
    CHECK(info.compute_major >= 1);
    int32_t covered = -1;
    CHECK_OK(sa_fast_path_covered(SA_OP_DENSE, 0, SA_DTYPE_F16, 128, &covered));
    CHECK(covered == 0 || covered == 1);
}

namespace {
// One device allocation of `bytes`, freed on scope exit.
struct DeviceBuffer {
    void* ptr = nullptr;
    explicit DeviceBuffer(size_t bytes) {
        REQUIRE_OK(sa_cuda_malloc(0, bytes, &ptr));
        REQUIRE_OK(sa_cuda_memset(ptr, 0, bytes, nullptr));
    }
    ~DeviceBuffer() {
        if (ptr) sa_cuda_free(0, ptr);
    }
    unsigned char* at(size_t offset) const { return static_cast<unsigned char*>(ptr) + offset; }
};

sa_tensor device_tensor(void* data, sa_dtype dtype, std::initializer_list<int64_t> shape) {
    sa_tensor t{};
    t.data = data;
    t.dtype = dtype;
    t.device_type = SA_DEVICE_CUDA;
    t.device_id = 0;
    t.rank = static_cast<int32_t>(shape.size());
    int64_t stride = 1;
    int32_t i = t.rank;
    for (auto it = shape.end(); it != shape.begin();) {
        --it;
        --i;
        t.shape[i] = *it;
        t.strides[i] = stride;
        stride *= *it;
    }
    return t;
}
}  // namespace

// The overlap rules hold for CUDA calls too, checked on the host from the descriptors alone
// (the contents of device index tensors are never read for it).
SA_TEST(validation_gpu_index_tensors_inside_outputs) {
    SA_REQUIRE_CUDA_DEVICE();
    const size_t qkv = 1 * 128 * 2 * 64 * 2;  // [1, 128, 2, 64] f16
    DeviceBuffer memory(4 * qkv + 4096);
    sa_tensor q = device_tensor(memory.at(0), SA_DTYPE_F16, {1, 128, 2, 64});
    sa_tensor k = device_tensor(memory.at(qkv), SA_DTYPE_F16, {1, 128, 2, 64});
    sa_tensor v = device_tensor(memory.at(2 * qkv), SA_DTYPE_F16, {1, 128, 2, 64});
    sa_tensor out = device_tensor(memory.at(3 * qkv), SA_DTYPE_F16, {1, 128, 2, 64});
    sa_block_sparse_params params;
    std::memset(&params, 0, sizeof params);
    params.block_q = 64;
    params.block_k = 64;
    params.kv_num_blocks = device_tensor(memory.at(4 * qkv), SA_DTYPE_I32, {1, 2, 2});
    params.kv_indices = device_tensor(memory.at(4 * qkv + 64), SA_DTYPE_I32, {1, 2, 2, 2});
    params.key_perm = device_tensor(memory.at(4 * qkv - 1024), SA_DTYPE_I32, {1, 2, 128});
    CHECK_ERROR(sa_block_sparse_forward(&q, &k, &v, &out, nullptr, &params, nullptr),
                SA_ERROR_INVALID_ARGUMENT, "out: memory overlaps params->key_perm");
    params.key_perm = device_tensor(memory.at(4 * qkv + 1024), SA_DTYPE_I32, {1, 2, 128});
    params.kv_indices.data = memory.at(3 * qkv + 16);
    CHECK_ERROR(sa_block_sparse_forward(&q, &k, &v, &out, nullptr, &params, nullptr),
                SA_ERROR_INVALID_ARGUMENT, "out: memory overlaps params->kv_indices");

    sa_tensor vq = device_tensor(memory.at(0), SA_DTYPE_F16, {128, 2, 64});
    sa_tensor vk = device_tensor(memory.at(qkv), SA_DTYPE_F16, {128, 2, 64});
    sa_tensor vv = device_tensor(memory.at(2 * qkv), SA_DTYPE_F16, {128, 2, 64});
    sa_tensor vo = device_tensor(memory.at(3 * qkv), SA_DTYPE_F16, {128, 2, 64});
    sa_tensor cu_q = device_tensor(memory.at(3 * qkv), SA_DTYPE_I32, {2});
    sa_tensor cu_k = device_tensor(memory.at(4 * qkv), SA_DTYPE_I32, {2});
    CHECK_ERROR(sa_dense_forward_varlen(&vq, &vk, &vv, &vo, nullptr, &cu_q, &cu_k, 128, 128, nullptr),
                SA_ERROR_INVALID_ARGUMENT, "out: memory overlaps cu_seqlens_q");
    CHECK_OK(sa_cuda_device_synchronize(0));
}
