// The fast main loops (wgmma where built and present, mma.sync otherwise and under PORTABLE) on
// the block-sparse and neighborhood schedules, against the CPU backend on fresh random inputs
// with poisoned outputs: every head dim and dtype they cover, both block sizes, permutations
// of either side, full lists, causal, GQA, ragged sizes, skewed and empty lists, 1-3-D windows
// with dilation, stride and causality, and tiles that need no mask.
#include <string>
#include <vector>

#include "test_cuda_util.h"

using namespace sa_test;

namespace {

// The fast path rounds P to the input precision before P V, the CPU backend keeps fp32.
double fast_tolerance(sa_dtype dtype) { return dtype == SA_DTYPE_BF16 ? 3e-2 : 4e-3; }

const char* kernel_label(int32_t kernel) { return kernel == SA_KERNEL_PORTABLE ? " portable" : " auto"; }

void require_fast(sa_operation op, sa_dtype dtype, int64_t d) {
    int32_t covered = 0;
    REQUIRE_OK(sa_fast_path_covered(op, 0, dtype, int32_t(d), &covered));
    if (!covered) SA_SKIP("skipped: fast path not covered on this device");
}

struct BlockCase {
    sa_dtype dtype;
    int64_t b, sq, sk, hq, hkv, d;
    int32_t block_q, block_k, causal;
    bool key_perm, query_perm, full;
    double density;
    int skew;  // 1: query block 0 lists every key block, the others one each; 2: every list empty
};

void run_block_case(const BlockCase& c, int32_t kernel, const std::string& name) {
    const int64_t nq = (c.sq + c.block_q - 1) / c.block_q;
    const int64_t nk = (c.sk + c.block_k - 1) / c.block_k;
    HostTensor q = random_tensor(c.dtype, {c.b, c.sq, c.hq, c.d});
    HostTensor k = random_tensor(c.dtype, {c.b, c.sk, c.hkv, c.d});
    HostTensor v = random_tensor(c.dtype, {c.b, c.sk, c.hkv, c.d});
    HostTensor out = HostTensor::contiguous(c.dtype, {c.b, c.sq, c.hq, c.d});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {c.b, c.hq, c.sq});
    RandomLists lists = random_lists(c.b, c.hq, nq, nk, c.density);
    if (c.skew != 0) {
        auto* num = reinterpret_cast<int32_t*>(lists.num.storage.data());
        auto* idx = reinterpret_cast<int32_t*>(lists.idx.storage.data());
        auto* full_num = reinterpret_cast<int32_t*>(lists.full_num.storage.data());
        for (int64_t row = 0; row < c.b * c.hq * nq; ++row) {
            full_num[row] = 0;
            if (c.skew == 2) {
                num[row] = 0;
                continue;
            }
            const bool heavy = row % nq == 0;
            num[row] = heavy ? int32_t(nk) : 1;
            const std::vector<int32_t> order = random_permutation(nk);
            for (int64_t j = 0; j < nk; ++j) idx[row * nk + j] = order[size_t(j)];
        }
    }
    HostTensor key_perm = permutations(c.b, c.hq, c.sk);
    HostTensor query_perm = permutations(c.b, c.hq, c.sq);
    DeviceTensor dnum(lists.num), didx(lists.idx), dfnum(lists.full_num), dfidx(lists.full_idx), dkp(key_perm),
        dqp(query_perm);
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = c.causal;
    options.kernel = kernel;
    COMPARE_ATTENTION_TOL(
        q, k, v, out, &lse, options,
        [&](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_, sa_tensor* o_, sa_tensor* l_,
            const sa_attention_options* opt) {
            const bool gpu = q_->device_type == SA_DEVICE_CUDA;
            sa_block_sparse_params params;
            std::memset(&params, 0, sizeof params);
            params.block_q = c.block_q;
            params.block_k = c.block_k;
            params.kv_num_blocks = gpu ? dnum.desc : lists.num.desc;
            params.kv_indices = gpu ? didx.desc : lists.idx.desc;
            if (c.full) {
                params.full_kv_num_blocks = gpu ? dfnum.desc : lists.full_num.desc;
                params.full_kv_indices = gpu ? dfidx.desc : lists.full_idx.desc;
            }
            if (c.key_perm) params.key_perm = gpu ? dkp.desc : key_perm.desc;
            if (c.query_perm) params.query_perm = gpu ? dqp.desc : query_perm.desc;
            return sa_block_sparse_forward(q_, k_, v_, o_, l_, &params, opt);
        },
        name + kernel_label(kernel), fast_tolerance(c.dtype));
}

struct WindowCase {
    int32_t rank;
    int32_t grid[3], kernel[3], dilation[3], stride[3], causal[3];
    int64_t d;
};

void run_window_case(const WindowCase& c, sa_dtype dtype, int64_t hq, int64_t hkv, int32_t kernel,
                     const std::string& name) {
    sa_neighborhood_params params;
    sa_neighborhood_params_init(&params, c.rank);
    int64_t s = 1;
    for (int d = 0; d < c.rank; ++d) {
        params.grid[d] = c.grid[d];
        params.kernel[d] = c.kernel[d];
        params.dilation[d] = c.dilation[d];
        params.stride[d] = c.stride[d];
        params.causal[d] = c.causal[d];
        s *= c.grid[d];
    }
    const int64_t b = 1 + (c.grid[0] % 2);
    HostTensor q = random_tensor(dtype, {b, s, hq, c.d});
    HostTensor k = random_tensor(dtype, {b, s, hkv, c.d});
    HostTensor v = random_tensor(dtype, {b, s, hkv, c.d});
    HostTensor out = HostTensor::contiguous(dtype, {b, s, hq, c.d});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {b, hq, s});
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.kernel = kernel;
    COMPARE_ATTENTION_TOL(q, k, v, out, &lse, options,
                          [&](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_, sa_tensor* o_,
                              sa_tensor* l_, const sa_attention_options* opt) {
                              return sa_neighborhood_forward(q_, k_, v_, o_, l_, &params, opt);
                          },
                          name + kernel_label(kernel), fast_tolerance(dtype));
}

}  // namespace

SA_TEST(fast_block_sparse_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    require_fast(SA_OP_BLOCK_SPARSE, SA_DTYPE_BF16, 128);
    const std::vector<BlockCase> cases = {
        // 128 x 128 blocks (the wgmma loop's), every permutation mix, causal and not.
        {SA_DTYPE_BF16, 1, 1000, 1000, 2, 1, 128, 128, 128, 1, false, false, true, 0.5, 0},
        {SA_DTYPE_F16, 2, 700, 900, 4, 2, 128, 128, 128, 0, true, false, true, 0.4, 0},
        {SA_DTYPE_BF16, 1, 777, 777, 2, 2, 64, 128, 128, 1, true, true, false, 0.6, 0},
        {SA_DTYPE_F16, 1, 513, 640, 3, 1, 128, 128, 128, 1, false, true, true, 0.7, 0},
        {SA_DTYPE_BF16, 2, 300, 1200, 2, 1, 128, 128, 128, 0, false, false, false, 1.0, 0},
        // 64-row blocks and mixed sizes (the mma.sync 64 x 64 tile), every head dim.
        {SA_DTYPE_F16, 1, 333, 517, 4, 2, 64, 64, 64, 1, true, true, true, 0.5, 0},
        {SA_DTYPE_BF16, 1, 517, 333, 2, 1, 32, 128, 64, 1, true, false, true, 0.6, 0},
        {SA_DTYPE_F16, 1, 300, 300, 2, 2, 96, 64, 128, 0, false, true, false, 0.4, 0},
        {SA_DTYPE_BF16, 1, 260, 260, 2, 1, 256, 128, 128, 1, true, true, true, 0.8, 0},
        {SA_DTYPE_F16, 2, 200, 260, 2, 1, 256, 64, 64, 0, false, false, true, 0.5, 0},
        {SA_DTYPE_BF16, 1, 400, 400, 2, 2, 32, 128, 128, 1, false, false, false, 0.9, 0},
        // Skewed lists (one heavy query block) and empty lists (output 0, LSE -inf).
        {SA_DTYPE_BF16, 1, 1024, 1024, 2, 1, 128, 128, 128, 0, true, false, false, 0.0, 1},
        {SA_DTYPE_F16, 1, 450, 450, 2, 1, 64, 64, 64, 1, false, false, false, 0.0, 1},
        {SA_DTYPE_BF16, 1, 300, 300, 2, 1, 128, 128, 128, 1, false, false, true, 0.0, 2},
    };
    int index = 0;
    for (int32_t kernel : {int32_t(SA_KERNEL_AUTO), int32_t(SA_KERNEL_PORTABLE)})
        for (const BlockCase& c : cases)
            run_block_case(c, kernel, "fast block-sparse case " + std::to_string(index++ % int(cases.size())));
}

SA_TEST(fast_neighborhood_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    require_fast(SA_OP_NEIGHBORHOOD, SA_DTYPE_BF16, 128);
    const std::vector<WindowCase> cases = {
        {1, {1000, 1, 1}, {127, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 128},
        {1, {1000, 1, 1}, {63, 1, 1}, {3, 1, 1}, {8, 1, 1}, {0, 0, 0}, 64},
        {1, {777, 1, 1}, {100, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 0, 0}, 128},
        {1, {1024, 1, 1}, {256, 1, 1}, {1, 1, 1}, {256, 1, 1}, {0, 0, 0}, 128},  // blocked: no mask
        {2, {37, 45, 1}, {13, 7, 1}, {1, 2, 1}, {1, 3, 1}, {0, 0, 0}, 128},
        {2, {32, 32, 1}, {8, 16, 1}, {1, 1, 1}, {8, 16, 1}, {0, 0, 0}, 64},     // blocked 2-D
        {2, {40, 24, 1}, {9, 9, 1}, {2, 1, 1}, {2, 2, 1}, {1, 0, 0}, 32},
        {2, {20, 30, 1}, {20, 5, 1}, {1, 1, 1}, {1, 1, 1}, {0, 1, 0}, 96},
        {3, {12, 10, 14}, {5, 3, 7}, {1, 2, 1}, {2, 1, 3}, {0, 0, 1}, 128},
        {3, {8, 16, 16}, {4, 8, 8}, {1, 1, 1}, {4, 8, 8}, {0, 0, 0}, 64},       // blocked 3-D
        {3, {9, 7, 11}, {3, 3, 3}, {3, 1, 2}, {1, 3, 2}, {1, 1, 0}, 256},
    };
    int index = 0;
    for (int32_t kernel : {int32_t(SA_KERNEL_AUTO), int32_t(SA_KERNEL_PORTABLE)})
        for (const WindowCase& c : cases) {
            const sa_dtype dtype = index % 2 ? SA_DTYPE_F16 : SA_DTYPE_BF16;
            const int64_t hkv = 1 + index % 2, hq = hkv * (1 + (index / 2) % 2);
            run_window_case(c, dtype, hq, hkv, kernel, "fast neighborhood case " + std::to_string(index % int(cases.size())));
            ++index;
        }
}

// Neighborhood attention with additional keys on the GPU (the window part on the fast loop,
// the additional keys on the dense kernels, merged by LSE on the stream) against the same call
// on the CPU; without a device workspace the call is refused.
SA_TEST(cuda_neighborhood_additional_keys_match_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    sa_neighborhood_params params;
    sa_neighborhood_params_init(&params, 2);
    params.grid[0] = 24;
    params.grid[1] = 20;
    params.kernel[0] = 7;
    params.kernel[1] = 5;
    const int64_t b = 2, s = 24 * 20, hq = 4, hkv = 2, d = 128, s_extra = 77;
    for (int32_t kernel : {int32_t(SA_KERNEL_AUTO), int32_t(SA_KERNEL_PORTABLE)}) {
        HostTensor q = random_tensor(SA_DTYPE_BF16, {b, s, hq, d});
        HostTensor k = random_tensor(SA_DTYPE_BF16, {b, s, hkv, d});
        HostTensor v = random_tensor(SA_DTYPE_BF16, {b, s, hkv, d});
        HostTensor ek = random_tensor(SA_DTYPE_BF16, {b, s_extra, 1, d});
        HostTensor ev = random_tensor(SA_DTYPE_BF16, {b, s_extra, 1, d});
        HostTensor out = HostTensor::contiguous(SA_DTYPE_BF16, {b, s, hq, d});
        HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {b, hq, s});
        HostTensor out_gpu = HostTensor::contiguous(SA_DTYPE_BF16, {b, s, hq, d});
        HostTensor lse_gpu = HostTensor::contiguous(SA_DTYPE_F32, {b, hq, s});
        sa_attention_options options;
        sa_attention_options_init(&options);
        options.kernel = kernel;
        REQUIRE_OK(sa_neighborhood_forward_extra_kv(q.d(), k.d(), v.d(), ek.d(), ev.d(), out.d(), lse.d(), &params, &options));
        DeviceTensor dq(q), dk(k), dv(v), dek(ek), dev(ev), dout(out_gpu), dlse(lse_gpu);
        CHECK_ERROR(sa_neighborhood_forward_extra_kv(dq.d(), dk.d(), dv.d(), dek.d(), dev.d(), dout.d(), dlse.d(),
                                                     &params, &options),
                    SA_ERROR_INVALID_ARGUMENT, "workspace");
        size_t bytes = 0;
        REQUIRE_OK(sa_neighborhood_extra_kv_workspace_size(dq.d(), &bytes));
        void* workspace = nullptr;
        REQUIRE_OK(sa_cuda_malloc(0, bytes, &workspace));
        options.workspace = workspace;
        options.workspace_bytes = bytes;
        out_gpu.poison();
        lse_gpu.poison();
        dout.upload(out_gpu);
        dlse.upload(lse_gpu);
        const sa_status st = sa_neighborhood_forward_extra_kv(dq.d(), dk.d(), dv.d(), dek.d(), dev.d(), dout.d(),
                                                              dlse.d(), &params, &options);
        CHECK_OK(st);
        CHECK_OK(sa_cuda_device_synchronize(0));
        sa_cuda_free(0, workspace);
        dout.download(out_gpu);
        dlse.download(lse_gpu);
        CHECK_VIEWS(out_gpu, out, fast_tolerance(SA_DTYPE_BF16), 0.0, std::string("additional keys out") + kernel_label(kernel));
        CHECK_VIEWS(lse_gpu, lse, 2e-4, 1e-5, std::string("additional keys lse") + kernel_label(kernel));
    }
}

// The block-list schedule with a gathered row address reproduces the dense schedule when the
// lists hold every block and the permutations are the identity: the same loop under two
// families gives the same causal attention.
SA_TEST(fast_block_lists_with_identity_gather_equal_dense) {
    SA_REQUIRE_CUDA_DEVICE();
    require_fast(SA_OP_BLOCK_SPARSE, SA_DTYPE_BF16, 128);
    const int64_t b = 1, s = 640, h = 2, d = 128, block = 128, n = (s + block - 1) / block;
    for (int32_t kernel : {int32_t(SA_KERNEL_AUTO), int32_t(SA_KERNEL_PORTABLE)}) {
        HostTensor q = random_tensor(SA_DTYPE_BF16, {b, s, h, d});
        HostTensor k = random_tensor(SA_DTYPE_BF16, {b, s, h, d});
        HostTensor v = random_tensor(SA_DTYPE_BF16, {b, s, h, d});
        std::vector<int32_t> counts(size_t(b * h * n)), indices(size_t(b * h * n * n)), identity;
        for (int64_t row = 0; row < b * h * n; ++row) {
            counts[size_t(row)] = int32_t(row % n + 1);  // causal: blocks 0..i
            for (int64_t j = 0; j < n; ++j) indices[size_t(row * n + j)] = int32_t(j);
        }
        for (int64_t i = 0; i < b * h; ++i)
            for (int64_t t = 0; t < s; ++t) identity.push_back(int32_t(t));
        HostTensor num = int_tensor({b, h, n}, counts), idx = int_tensor({b, h, n, n}, indices);
        HostTensor perm = int_tensor({b, h, s}, identity);
        DeviceTensor dq(q), dk(k), dv(v), dnum(num), didx(idx), dperm(perm);
        HostTensor dense_out = HostTensor::contiguous(SA_DTYPE_BF16, {b, s, h, d});
        HostTensor sparse_out = poisoned_like(dense_out);
        DeviceTensor ddense(dense_out), dsparse(sparse_out);
        sa_attention_options options;
        sa_attention_options_init(&options);
        options.causal = 1;
        options.kernel = kernel;
        REQUIRE_OK(sa_dense_forward(dq.d(), dk.d(), dv.d(), ddense.d(), nullptr, &options));
        sa_block_sparse_params params;
        std::memset(&params, 0, sizeof params);
        params.block_q = params.block_k = int32_t(block);
        params.kv_num_blocks = dnum.desc;
        params.kv_indices = didx.desc;
        params.key_perm = dperm.desc;
        params.query_perm = dperm.desc;
        REQUIRE_OK(sa_block_sparse_forward(dq.d(), dk.d(), dv.d(), dsparse.d(), nullptr, &params, &options));
        REQUIRE_OK(sa_cuda_device_synchronize(0));
        ddense.download(dense_out);
        dsparse.download(sparse_out);
        CHECK_VIEWS(sparse_out, dense_out, 2e-2, 0.0, std::string("identity-gathered block lists") + kernel_label(kernel));
    }
}
