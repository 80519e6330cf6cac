// CUDA backend against the CPU backend through the C ABI: every CUDA function runs on fresh
// random inputs with poisoned outputs, and its result is compared element by element with the
// CPU backend's result for the same call. Skipped when no CUDA device is present.
#include <algorithm>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "test_cuda_util.h"

using namespace sa_test;

SA_TEST(cuda_runtime_memory_streams_and_info) {
    SA_REQUIRE_CUDA_DEVICE();
    int32_t count = 0;
    REQUIRE_OK(sa_cuda_device_count(&count));
    CHECK(count >= 1);
    sa_device_info info;
    REQUIRE_OK(sa_cuda_device_info(0, &info));
    CHECK(std::strlen(info.name) > 0);
    CHECK(info.compute_major >= 5);
    CHECK(info.multiprocessor_count > 0);
    CHECK(info.total_memory_bytes > 0);
    CHECK(info.max_shared_memory_per_block >= 48 * 1024);
    CHECK_ERROR(sa_cuda_device_info(count, &info), SA_ERROR_INVALID_ARGUMENT, "device");
    CHECK_ERROR(sa_cuda_malloc(-1, 16, nullptr), SA_ERROR_INVALID_ARGUMENT);

    const size_t bytes = 1000;
    void* a = nullptr;
    void* b = nullptr;
    REQUIRE_OK(sa_cuda_malloc(0, bytes, &a));
    REQUIRE_OK(sa_cuda_malloc(0, bytes, &b));
    void* stream = nullptr;
    REQUIRE_OK(sa_cuda_stream_create(0, &stream));
    std::vector<unsigned char> host(bytes), back(bytes, 0);
    for (size_t i = 0; i < bytes; ++i) host[i] = static_cast<unsigned char>(uniform_int(0, 255));
    CHECK_OK(sa_cuda_memset(b, 0xAB, bytes, stream));
    CHECK_OK(sa_cuda_memcpy(back.data(), b, bytes, SA_COPY_DEVICE_TO_HOST, stream));
    CHECK(std::all_of(back.begin(), back.end(), [](unsigned char c) { return c == 0xAB; }));
    CHECK_OK(sa_cuda_memcpy(a, host.data(), bytes, SA_COPY_HOST_TO_DEVICE, stream));
    CHECK_OK(sa_cuda_memcpy(b, a, bytes, SA_COPY_DEVICE_TO_DEVICE, stream));
    CHECK_OK(sa_cuda_stream_synchronize(stream));
    CHECK_OK(sa_cuda_memcpy(back.data(), b, bytes, SA_COPY_DEVICE_TO_HOST, nullptr));
    CHECK(back == host);
    CHECK_OK(sa_cuda_device_synchronize(0));
    CHECK_OK(sa_cuda_stream_destroy(stream));
    CHECK_OK(sa_cuda_free(0, a));
    CHECK_OK(sa_cuda_free(0, b));

    // Every family runs on the same fast main loops: the same head dims are covered for each.
    int32_t covered = -1, dense_covered = -1;
    CHECK_OK(sa_fast_path_covered(SA_OP_DENSE, 0, SA_DTYPE_F16, 128, &dense_covered));
    CHECK_OK(sa_fast_path_covered(SA_OP_BLOCK_SPARSE, 0, SA_DTYPE_F16, 128, &covered));
    CHECK_EQ(covered, dense_covered);
    CHECK_OK(sa_fast_path_covered(SA_OP_NEIGHBORHOOD, 0, SA_DTYPE_F16, 128, &covered));
    CHECK_EQ(covered, dense_covered);
    for (sa_operation op : {SA_OP_DENSE, SA_OP_NEIGHBORHOOD, SA_OP_BLOCK_SPARSE}) {
        CHECK_OK(sa_fast_path_covered(op, 0, SA_DTYPE_F16, 136, &covered));
        CHECK_EQ(covered, 0);
    }
}

SA_TEST(cuda_reference_dense_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    struct Case {
        sa_dtype dtype;
        int64_t b, sq, sk, hq, hkv, d;
        int32_t causal;
        Layout layout;
        bool lse;
        int32_t kernel;
    };
    std::vector<Case> cases = {
        {SA_DTYPE_F16, 2, 77, 77, 4, 2, 64, 0, Layout::Bshd, true, SA_KERNEL_REFERENCE},
        {SA_DTYPE_BF16, 1, 33, 129, 6, 3, 40, 1, Layout::Bhsd, true, SA_KERNEL_REFERENCE},
        {SA_DTYPE_F16, 2, 100, 37, 2, 1, 128, 1, Layout::Padded, true, SA_KERNEL_REFERENCE},
        {SA_DTYPE_BF16, 1, 5, 300, 8, 1, 256, 0, Layout::Bshd, false, SA_KERNEL_REFERENCE},
        {SA_DTYPE_F16, 3, 1, 1, 1, 1, 8, 1, Layout::Bshd, true, SA_KERNEL_REFERENCE},
        {SA_DTYPE_BF16, 2, 130, 95, 4, 4, 136, 1, Layout::Bhsd, true, SA_KERNEL_AUTO},
        {SA_DTYPE_F16, 1, 200, 200, 2, 1, 64, 1, Layout::Padded, true, SA_KERNEL_AUTO},
        {SA_DTYPE_BF16, 2, 67, 190, 4, 2, 128, 0, Layout::Bshd, true, SA_KERNEL_AUTO},
    };
    for (int extra = 0; extra < 3; ++extra) {  // fresh random shapes each run
        const int64_t hkv = uniform_int(1, 3);
        cases.push_back({uniform_int(0, 1) ? SA_DTYPE_F16 : SA_DTYPE_BF16, uniform_int(1, 2),
                         uniform_int(1, 150), uniform_int(1, 150), hkv * uniform_int(1, 3), hkv,
                         8 * uniform_int(1, 32), static_cast<int32_t>(uniform_int(0, 1)),
                         static_cast<Layout>(uniform_int(0, 2)), uniform_int(0, 1) == 1,
                         static_cast<int32_t>(uniform_int(0, 1))});
    }
    for (const Case& c : cases) {
        HostTensor q = make_attention_tensor(c.dtype, c.b, c.sq, c.hq, c.d, c.layout);
        HostTensor k = make_attention_tensor(c.dtype, c.b, c.sk, c.hkv, c.d, c.layout);
        HostTensor v = make_attention_tensor(c.dtype, c.b, c.sk, c.hkv, c.d, c.layout);
        q.fill_random();
        k.fill_random();
        v.fill_random();
        HostTensor out = make_attention_tensor(c.dtype, c.b, c.sq, c.hq, c.d, c.layout);
        HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {c.b, c.hq, c.sq});
        sa_attention_options options;
        sa_attention_options_init(&options);
        options.causal = c.causal;
        options.kernel = c.kernel;
        if (uniform_int(0, 1)) options.scale = static_cast<float>(uniform(0.05, 0.5));
        const std::string label = std::string("dense ") + dtype_label(c.dtype) + " B" +
                                  std::to_string(c.b) + " Sq" + std::to_string(c.sq) + " Sk" +
                                  std::to_string(c.sk) + " Hq" + std::to_string(c.hq) + " Hkv" +
                                  std::to_string(c.hkv) + " D" + std::to_string(c.d) +
                                  (c.causal ? " causal" : "") +
                                  (c.kernel == SA_KERNEL_AUTO ? " auto" : " reference");
        COMPARE_ATTENTION(q, k, v, out, c.lse ? &lse : nullptr, options,
                          [](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_,
                             sa_tensor* o_, sa_tensor* l_, const sa_attention_options* opt) {
                              return sa_dense_forward(q_, k_, v_, o_, l_, opt);
                          },
                          label);
    }
}

SA_TEST(cuda_reference_varlen_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    for (int round = 0; round < 3; ++round) {
        const sa_dtype dtype = round % 2 ? SA_DTYPE_BF16 : SA_DTYPE_F16;
        const int64_t batch = uniform_int(2, 5), hkv = uniform_int(1, 2),
                      hq = hkv * uniform_int(1, 3), d = 8 * uniform_int(1, 24);
        std::vector<int32_t> cu_q{0}, cu_k{0};
        int32_t max_q = 0, max_k = 0;
        for (int64_t b = 0; b < batch; ++b) {
            // Zero-length query and key sequences included.
            const int32_t lq = static_cast<int32_t>(uniform_int(0, 90));
            const int32_t lk = b == 1 ? 0 : static_cast<int32_t>(uniform_int(0, 120));
            cu_q.push_back(cu_q.back() + lq);
            cu_k.push_back(cu_k.back() + lk);
            max_q = std::max(max_q, lq);
            max_k = std::max(max_k, lk);
        }
        if (cu_q.back() == 0) {  // keep at least one query row
            for (size_t i = 1; i < cu_q.size(); ++i) cu_q[i] += 1;
            max_q = std::max(max_q, 1);
        }
        if (cu_k.back() == 0) {
            cu_k.back() += 1;
            max_k = std::max(max_k, 1);
        }
        const int64_t tq = cu_q.back(), tk = cu_k.back();
        HostTensor q = random_tensor(dtype, {tq, hq, d});
        HostTensor k = random_tensor(dtype, {tk, hkv, d});
        HostTensor v = random_tensor(dtype, {tk, hkv, d});
        HostTensor out_shape = HostTensor::contiguous(dtype, {tq, hq, d});
        HostTensor lse_shape = HostTensor::contiguous(SA_DTYPE_F32, {hq, tq});
        HostTensor cuq = int_tensor({batch + 1}, cu_q);
        HostTensor cuk = int_tensor({batch + 1}, cu_k);
        DeviceTensor dcuq(cuq), dcuk(cuk);
        sa_attention_options options;
        sa_attention_options_init(&options);
        options.causal = round != 1;
        options.kernel = round == 2 ? SA_KERNEL_AUTO : SA_KERNEL_REFERENCE;
        COMPARE_ATTENTION(
            q, k, v, out_shape, &lse_shape, options,
            [&](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_, sa_tensor* o_,
                sa_tensor* l_, const sa_attention_options* opt) {
                const bool on_gpu = q_->device_type == SA_DEVICE_CUDA;
                return sa_dense_forward_varlen(q_, k_, v_, o_, l_, on_gpu ? dcuq.d() : cuq.d(),
                                               on_gpu ? dcuk.d() : cuk.d(), max_q, max_k, opt);
            },
            std::string("varlen round ") + std::to_string(round));
    }
}

SA_TEST(cuda_reference_neighborhood_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    struct Case {
        int32_t rank;
        int32_t grid[3], kernel[3], dilation[3], stride[3], causal[3];
    };
    const std::vector<Case> cases = {
        {1, {37, 1, 1}, {7, 1, 1}, {2, 1, 1}, {3, 1, 1}, {0, 0, 0}},
        {1, {37, 1, 1}, {7, 1, 1}, {2, 1, 1}, {3, 1, 1}, {1, 0, 0}},
        {1, {13, 1, 1}, {4, 1, 1}, {1, 1, 1}, {4, 1, 1}, {0, 0, 0}},
        {2, {9, 13, 1}, {3, 5, 1}, {2, 1, 1}, {1, 2, 1}, {0, 1, 0}},
        {2, {8, 8, 1}, {8, 8, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
        {3, {4, 6, 5}, {3, 3, 2}, {1, 2, 2}, {2, 1, 2}, {1, 0, 0}},
        {3, {5, 4, 6}, {2, 4, 3}, {2, 1, 2}, {2, 3, 1}, {0, 1, 1}},
    };
    int index = 0;
    for (const Case& c : cases) {
        const sa_dtype dtype = index % 2 ? SA_DTYPE_BF16 : SA_DTYPE_F16;
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
        const int64_t b = uniform_int(1, 2), hkv = uniform_int(1, 2), hq = hkv * uniform_int(1, 2),
                      d = 8 * uniform_int(1, 16);
        const Layout layout = static_cast<Layout>(index % 3);
        HostTensor q = make_attention_tensor(dtype, b, s, hq, d, layout);
        HostTensor k = make_attention_tensor(dtype, b, s, hkv, d, layout);
        HostTensor v = make_attention_tensor(dtype, b, s, hkv, d, layout);
        q.fill_random();
        k.fill_random();
        v.fill_random();
        HostTensor out = make_attention_tensor(dtype, b, s, hq, d, layout);
        HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {b, hq, s});
        sa_attention_options options;
        sa_attention_options_init(&options);
        options.kernel = SA_KERNEL_REFERENCE;
        COMPARE_ATTENTION(q, k, v, out, &lse, options,
                          [&](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_,
                              sa_tensor* o_, sa_tensor* l_, const sa_attention_options* opt) {
                              return sa_neighborhood_forward(q_, k_, v_, o_, l_, &params, opt);
                          },
                          "neighborhood case " + std::to_string(index));
        ++index;
    }
}


SA_TEST(cuda_reference_block_sparse_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    struct Case {
        sa_dtype dtype;
        int64_t b, sq, sk, hq, hkv, d;
        int32_t block_q, block_k, causal;
        bool key_perm, query_perm, full;
        double density;
    };
    const std::vector<Case> cases = {
        {SA_DTYPE_F16, 2, 333, 517, 4, 2, 64, 64, 64, 1, true, true, true, 0.5},
        {SA_DTYPE_BF16, 1, 517, 333, 2, 1, 40, 128, 64, 1, true, false, true, 0.6},
        {SA_DTYPE_F16, 1, 300, 300, 2, 2, 128, 64, 128, 0, false, true, false, 0.4},
        {SA_DTYPE_BF16, 2, 200, 260, 3, 1, 256, 128, 128, 0, true, true, true, 1.0},
        {SA_DTYPE_F16, 1, 129, 129, 1, 1, 8, 64, 64, 1, false, false, false, 0.3},
    };
    int index = 0;
    for (const Case& c : cases) {
        const int64_t nq = (c.sq + c.block_q - 1) / c.block_q;
        const int64_t nk = (c.sk + c.block_k - 1) / c.block_k;
        HostTensor q = random_tensor(c.dtype, {c.b, c.sq, c.hq, c.d});
        HostTensor k = random_tensor(c.dtype, {c.b, c.sk, c.hkv, c.d});
        HostTensor v = random_tensor(c.dtype, {c.b, c.sk, c.hkv, c.d});
        HostTensor out = HostTensor::contiguous(c.dtype, {c.b, c.sq, c.hq, c.d});
        HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {c.b, c.hq, c.sq});
        RandomLists lists = random_lists(c.b, c.hq, nq, nk, c.density);
        HostTensor key_perm = permutations(c.b, c.hq, c.sk);
        HostTensor query_perm = permutations(c.b, c.hq, c.sq);
        DeviceTensor dnum(lists.num), didx(lists.idx), dfnum(lists.full_num),
            dfidx(lists.full_idx), dkp(key_perm), dqp(query_perm);

        sa_attention_options options;
        sa_attention_options_init(&options);
        options.causal = c.causal;
        options.kernel = SA_KERNEL_REFERENCE;
        COMPARE_ATTENTION(
            q, k, v, out, &lse, options,
            [&](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_, sa_tensor* o_,
                sa_tensor* l_, const sa_attention_options* opt) {
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
            "block-sparse case " + std::to_string(index));
        ++index;
    }
}

SA_TEST(cuda_block_sparse_broadcast_lists_match_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    // One list row per query block shared by every batch and head (strides 0).
    const int64_t b = 2, s = 250, h = 3, d = 64, block = 64, n = 4;
    HostTensor q = random_tensor(SA_DTYPE_BF16, {b, s, h, d});
    HostTensor k = random_tensor(SA_DTYPE_BF16, {b, s, h, d});
    HostTensor v = random_tensor(SA_DTYPE_BF16, {b, s, h, d});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_BF16, {b, s, h, d});
    HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {b, h, s});
    HostTensor num = HostTensor::strided(SA_DTYPE_I32, {b, h, n}, {0, 0, 1}, n);
    HostTensor idx = HostTensor::strided(SA_DTYPE_I32, {b, h, n, n}, {0, 0, n, 1}, n * n);
    const int32_t counts[n] = {1, 2, 0, 3};
    const int32_t lists[n][n] = {{0, -1, -1, -1}, {1, 0, -1, -1}, {-1, -1, -1, -1}, {3, 0, 2, -1}};
    std::memcpy(num.storage.data(), counts, sizeof counts);
    std::memcpy(idx.storage.data(), lists, sizeof lists);
    DeviceTensor dnum(num), didx(idx);
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = 1;
    options.kernel = SA_KERNEL_REFERENCE;
    COMPARE_ATTENTION(q, k, v, out, &lse, options,
                      [&](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_,
                          sa_tensor* o_, sa_tensor* l_, const sa_attention_options* opt) {
                          const bool gpu = q_->device_type == SA_DEVICE_CUDA;
                          sa_block_sparse_params params;
                          std::memset(&params, 0, sizeof params);
                          params.block_q = block;
                          params.block_k = block;
                          params.kv_num_blocks = gpu ? dnum.desc : num.desc;
                          params.kv_indices = gpu ? didx.desc : idx.desc;
                          return sa_block_sparse_forward(q_, k_, v_, o_, l_, &params, opt);
                      },
                      "block-sparse broadcast lists");
}

SA_TEST(cuda_lse_merge_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    const sa_dtype dtypes[3][3] = {{SA_DTYPE_F16, SA_DTYPE_F16, SA_DTYPE_F16},
                                   {SA_DTYPE_BF16, SA_DTYPE_F16, SA_DTYPE_BF16},
                                   {SA_DTYPE_F16, SA_DTYPE_BF16, SA_DTYPE_F16}};
    for (int round = 0; round < 3; ++round) {
        const int64_t b = uniform_int(1, 3), s = uniform_int(1, 70), h = uniform_int(1, 4),
                      d = 8 * uniform_int(1, 20);
        HostTensor o1 = random_tensor(dtypes[round][0], {b, s, h, d});
        HostTensor o2 = random_tensor(dtypes[round][1], {b, s, h, d});
        HostTensor lse1 = random_tensor(SA_DTYPE_F32, {b, h, s});
        HostTensor lse2 = random_tensor(SA_DTYPE_F32, {b, h, s});
        for (int64_t n = 0; n < b * h * s; ++n) {
            lse1.set_at(n, uniform(-4, 4));
            lse2.set_at(n, uniform(-4, 4));
            const int64_t pick = uniform_int(0, 5);  // rows with one or both partials empty
            if (pick == 0 || pick == 2) lse1.set_at(n, -INFINITY);
            if (pick == 1 || pick == 2) lse2.set_at(n, -INFINITY);
        }
        HostTensor cpu_out = HostTensor::contiguous(dtypes[round][2], {b, s, h, d});
        HostTensor cpu_lse = HostTensor::contiguous(SA_DTYPE_F32, {b, h, s});
        cpu_out.poison();
        cpu_lse.poison();
        REQUIRE_OK(sa_lse_merge(o1.d(), lse1.d(), o2.d(), lse2.d(), cpu_out.d(), cpu_lse.d(), nullptr));

        DeviceTensor d1(o1), d2(o2), dl1(lse1), dl2(lse2);
        HostTensor gpu_out = poisoned_like(cpu_out);
        HostTensor gpu_lse = poisoned_like(cpu_lse);
        const std::string label = "merge round " + std::to_string(round);
        if (round == 0) {
            // out and lse_out alias o1 and lse1.
            REQUIRE_OK(sa_lse_merge(d1.d(), dl1.d(), d2.d(), dl2.d(), d1.d(), dl1.d(), nullptr));
            d1.download(gpu_out);
            dl1.download(gpu_lse);
        } else {
            DeviceTensor dout(gpu_out), dlse(gpu_lse);
            REQUIRE_OK(sa_lse_merge(d1.d(), dl1.d(), d2.d(), dl2.d(), dout.d(), dlse.d(), nullptr));
            dout.download(gpu_out);
            dlse.download(gpu_lse);
        }
        CHECK_VIEWS(gpu_out, cpu_out, output_tolerance_vs_cpu(cpu_out.dtype), 0.0, label + " out");
        CHECK_VIEWS(gpu_lse, cpu_lse, 1e-5, 1e-6, label + " lse");
    }
}

SA_TEST(cuda_block_mask_conversion_round_trip) {
    SA_REQUIRE_CUDA_DEVICE();
    const int64_t b = 2, h = 3, nq = 7, nk = 45;  // nK past one warp's width; row 1 has every block, row 2 none
    HostTensor mask = HostTensor::contiguous(SA_DTYPE_BOOL, {b, h, nq, nk});
    for (int64_t n = 0; n < mask.numel(); ++n)
        mask.u8()[n] = uniform(0, 1) < 0.3 ? static_cast<uint8_t>(uniform_int(1, 255)) : 0;
    for (int64_t j = 0; j < nk; ++j) {
        mask.u8()[1 * nk + j] = 1;
        mask.u8()[2 * nk + j] = 0;
    }
    HostTensor cpu_num = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nq});
    HostTensor cpu_idx = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nq, nk});
    REQUIRE_OK(sa_block_mask_to_lists(mask.d(), cpu_num.d(), cpu_idx.d(), nullptr));

    HostTensor gpu_num = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nq});
    HostTensor gpu_idx = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nq, nk});
    std::memset(gpu_num.storage.data(), 0x7f, gpu_num.storage.size());
    std::memset(gpu_idx.storage.data(), 0x7f, gpu_idx.storage.size());
    DeviceTensor dmask(mask), dnum(gpu_num), didx(gpu_idx);
    REQUIRE_OK(sa_block_mask_to_lists(dmask.d(), dnum.d(), didx.d(), nullptr));
    dnum.download(gpu_num);
    didx.download(gpu_idx);
    CHECK(gpu_num.storage == cpu_num.storage);
    CHECK(gpu_idx.storage == cpu_idx.storage);
    for (int64_t row = 0; row < b * h * nq; ++row) {  // ascending, -1 fill
        int32_t count = 0;
        for (int64_t j = 0; j < nk; ++j) count += mask.u8()[row * nk + j] != 0;
        CHECK_EQ(gpu_num.i32()[row], count);
        for (int64_t e = 0; e < nk; ++e) {
            const int32_t got = gpu_idx.i32()[row * nk + e];
            if (e >= count) CHECK_EQ(got, -1);
            else if (e > 0) CHECK(got > gpu_idx.i32()[row * nk + e - 1]);
        }
    }

    HostTensor gpu_mask = HostTensor::contiguous(SA_DTYPE_BOOL, {b, h, nq, nk});
    std::memset(gpu_mask.storage.data(), 0x55, gpu_mask.storage.size());
    DeviceTensor dmask_out(gpu_mask);
    REQUIRE_OK(sa_block_lists_to_mask(dnum.d(), didx.d(), dmask_out.d(), nullptr));
    dmask_out.download(gpu_mask);
    int bad = 0;
    for (int64_t n = 0; n < mask.numel(); ++n)
        bad += gpu_mask.u8()[n] != (mask.u8()[n] != 0 ? 1 : 0);
    CHECK_EQ(bad, 0);

    // Lists with a capacity below nK, counts past it clipped, junk beyond each count.
    const int64_t cap = 5;
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nq});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nq, cap});
    for (int64_t row = 0; row < b * h * nq; ++row) {
        std::vector<int32_t> perm = random_permutation(nk);
        num.i32()[row] = static_cast<int32_t>(uniform_int(0, cap));
        for (int64_t e = 0; e < cap; ++e)
            idx.i32()[row * cap + e] = e < num.i32()[row] ? perm[e] : 9999;
    }
    HostTensor cpu_mask = HostTensor::contiguous(SA_DTYPE_BOOL, {b, h, nq, nk});
    REQUIRE_OK(sa_block_lists_to_mask(num.d(), idx.d(), cpu_mask.d(), nullptr));
    DeviceTensor dnum2(num), didx2(idx);
    std::memset(gpu_mask.storage.data(), 0x55, gpu_mask.storage.size());
    dmask_out.upload(gpu_mask);
    REQUIRE_OK(sa_block_lists_to_mask(dnum2.d(), didx2.d(), dmask_out.d(), nullptr));
    dmask_out.download(gpu_mask);
    bad = 0;
    for (int64_t n = 0; n < mask.numel(); ++n)
        bad += (gpu_mask.u8()[n] != 0) != (cpu_mask.u8()[n] != 0) || gpu_mask.u8()[n] > 1;
    CHECK_EQ(bad, 0);
}

namespace {

struct PbsCase {
    sa_dtype dtype;
    int64_t b, s, hq, hkv, d;
    int32_t block, segment;
    float tau;
    int32_t permute_keys = 1;
};

// Double-precision key importance for one (b, h): the semantics' step 2, used only to tell a
// near tie (importances equal within fp32 rounding) from a real ordering difference.
std::vector<double> importance_fp64(const HostTensor& q, const HostTensor& k, int64_t b,
                                    int64_t h, const PbsCase& c, double scale) {
    const int64_t keys = c.s / c.segment * c.segment;
    const int64_t hk = h / (c.hq / c.hkv);
    std::vector<double> importance(static_cast<size_t>(keys), 0.0), row(static_cast<size_t>(keys));
    const int64_t first = c.s - std::min<int64_t>(c.block, c.s);
    for (int64_t r = first; r < c.s; ++r) {
        double m = -INFINITY, sum = 0;
        for (int64_t t = 0; t < keys; ++t) {
            double dot = 0;
            for (int64_t e = 0; e < c.d; ++e) dot += q.get({b, r, h, e}) * k.get({b, t, hk, e});
            row[t] = dot * scale;
            m = std::max(m, row[t]);
        }
        for (int64_t t = 0; t < keys; ++t) sum += std::exp(row[t] - m);
        for (int64_t t = 0; t < keys; ++t) importance[t] += std::exp(row[t] - m) / sum;
    }
    for (double& x : importance) x /= static_cast<double>(c.s - first);
    return importance;
}

// Plans must agree exactly, except that keys whose fp64 importances agree to within fp32
// rounding may swap places (their fp32 order is not determined); the lists of such a head are
// then compared only when every permuted block still holds the same keys.
void compare_plans(const PbsCase& c, const HostTensor& q, const HostTensor& k,
                   HostTensor& cpu_perm, HostTensor& cpu_num, HostTensor& cpu_idx,
                   HostTensor& gpu_perm, HostTensor& gpu_num, HostTensor& gpu_idx,
                   const std::string& label) {
    const int64_t nb = (c.s + c.block - 1) / c.block;
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
    for (int64_t b = 0; b < c.b; ++b)
        for (int64_t h = 0; h < c.hq; ++h) {
            const int64_t bh = b * c.hq + h;
            const int32_t* gp = gpu_perm.i32() + bh * c.s;
            const int32_t* cp = cpu_perm.i32() + bh * c.s;
            bool near_tie_only = true, perm_equal = true;
            std::vector<double> importance;
            for (int64_t t = 0; t < c.s; ++t) {
                if (gp[t] == cp[t]) continue;
                perm_equal = false;
                // A swap is acceptable only between keys whose fp64 importances agree to
                // within fp32 rounding: the fp32 order of such keys is not determined.
                if (importance.empty()) importance = importance_fp64(q, k, b, h, c, scale);
                const int64_t keys = static_cast<int64_t>(importance.size());
                if (t >= keys || gp[t] < 0 || gp[t] >= keys || cp[t] < 0 || cp[t] >= keys) {
                    near_tie_only = false;
                    continue;
                }
                const double a = importance[gp[t]], w = importance[cp[t]];
                if (std::fabs(a - w) > 1e-5 * std::max(a, w)) near_tie_only = false;
            }
            if (!perm_equal) {
                if (!near_tie_only) {
                    report_failure(__FILE__, __LINE__,
                                   label + ": key_perm differs for b" + std::to_string(b) +
                                       " h" + std::to_string(h));
                    continue;
                }
                std::printf("%s: b%lld h%lld key_perm differs only at near ties\n",
                            label.c_str(), static_cast<long long>(b), static_cast<long long>(h));
                // Lists are comparable while every permuted block holds the same keys.
                bool same_blocks = true;
                for (int64_t j = 0; j < nb && same_blocks; ++j) {
                    const int64_t first = j * c.block, last = std::min(c.s, first + c.block);
                    std::vector<int32_t> a(gp + first, gp + last), w(cp + first, cp + last);
                    std::sort(a.begin(), a.end());
                    std::sort(w.begin(), w.end());
                    same_blocks = a == w;
                }
                if (!same_blocks) continue;
            }
            for (int64_t i = 0; i < nb; ++i) {
                const int64_t row = bh * nb + i;
                const bool same_count = gpu_num.i32()[row] == cpu_num.i32()[row];
                const bool same_list = std::equal(gpu_idx.i32() + row * nb,
                                                  gpu_idx.i32() + (row + 1) * nb,
                                                  cpu_idx.i32() + row * nb);
                if (!same_count || !same_list)
                    report_failure(__FILE__, __LINE__,
                                   label + ": block list differs for b" + std::to_string(b) +
                                       " h" + std::to_string(h) + " query block " +
                                       std::to_string(i) + " (counts " +
                                       std::to_string(gpu_num.i32()[row]) + " vs CPU " +
                                       std::to_string(cpu_num.i32()[row]) + ")");
            }
        }
}

// The plan of the same Q, K and options on the CPU and on the GPU (whose outputs are poisoned
// first), the GPU's downloaded.
struct PlanPair {
    HostTensor cpu_perm, cpu_num, cpu_idx, gpu_perm, gpu_num, gpu_idx;
};

PlanPair plan_on_cpu_and_gpu(HostTensor& q, HostTensor& k, const sa_pbs_options& options, int64_t b, int64_t h,
                             int64_t s, int64_t nb) {
    PlanPair r;
    r.cpu_perm = HostTensor::contiguous(SA_DTYPE_I32, {b, h, s});
    r.cpu_num = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nb});
    r.cpu_idx = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nb, nb});
    REQUIRE_OK(sa_pbs_plan(q.d(), k.d(), &options, r.cpu_perm.d(), r.cpu_num.d(), r.cpu_idx.d()));
    r.gpu_perm = HostTensor::contiguous(SA_DTYPE_I32, {b, h, s});
    r.gpu_num = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nb});
    r.gpu_idx = HostTensor::contiguous(SA_DTYPE_I32, {b, h, nb, nb});
    for (HostTensor* t : {&r.gpu_perm, &r.gpu_num, &r.gpu_idx})
        std::memset(t->storage.data(), 0x7f, t->storage.size());
    DeviceTensor dq(q), dk(k), dperm(r.gpu_perm), dnum(r.gpu_num), didx(r.gpu_idx);
    REQUIRE_OK(sa_pbs_plan(dq.d(), dk.d(), &options, dperm.d(), dnum.d(), didx.d()));
    dperm.download(r.gpu_perm);
    dnum.download(r.gpu_num);
    didx.download(r.gpu_idx);
    return r;
}

}  // namespace

SA_TEST(cuda_pbs_plan_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    const std::vector<PbsCase> cases = {
        {SA_DTYPE_BF16, 1, 1000, 4, 2, 64, 64, 256, 0.9f},   // tail past the last segment
        {SA_DTYPE_F16, 2, 1024, 2, 2, 128, 128, 256, 1.0f},  // tau 1 keeps every candidate
        {SA_DTYPE_F16, 1, 200, 2, 1, 32, 64, 256, 0.9f},     // one segment: dense causal
        {SA_DTYPE_F16, 1, 256, 2, 2, 64, 128, 256, 0.9f},    // exactly one segment
        {SA_DTYPE_BF16, 1, 2100, 2, 1, 64, 64, 512, 0.5f},
        {SA_DTYPE_F16, 1, 1500, 3, 3, 96, 128, 384, 0.7f},   // segment not a power of two
        {SA_DTYPE_BF16, 1, 2100, 2, 1, 64, 64, 512, 0.5f, 0},  // keys not permuted
        {SA_DTYPE_BF16, 1, 1100, 2, 2, 256, 64, 256, 0.9f},  // head dim 256 (tensor-core path)
        {SA_DTYPE_F16, 1, 900, 2, 1, 40, 64, 128, 0.9f},     // head dim 40: padded tiles
    };
    int index = 0;
    for (const PbsCase& c : cases) {
        const std::string label = "pbs case " + std::to_string(index++);
        const int64_t nb = (c.s + c.block - 1) / c.block;
        HostTensor q = random_tensor(c.dtype, {c.b, c.s, c.hq, c.d});
        HostTensor k = random_tensor(c.dtype, {c.b, c.s, c.hkv, c.d});
        sa_pbs_options options;
        sa_pbs_options_init(&options);
        options.block = c.block;
        options.segment = c.segment;
        options.tau = c.tau;
        options.permute_keys = c.permute_keys;
        PlanPair plans = plan_on_cpu_and_gpu(q, k, options, c.b, c.hq, c.s, nb);
        HostTensor &cpu_perm = plans.cpu_perm, &cpu_num = plans.cpu_num, &cpu_idx = plans.cpu_idx;
        HostTensor &gpu_perm = plans.gpu_perm, &gpu_num = plans.gpu_num, &gpu_idx = plans.gpu_idx;

        compare_plans(c, q, k, cpu_perm, cpu_num, cpu_idx, gpu_perm, gpu_num, gpu_idx, label);

        // The GPU plan drives both the GPU block-sparse kernel and the CPU backend (plans may
        // differ at near ties, compared above).
        DeviceTensor dperm(gpu_perm), dnum(gpu_num), didx(gpu_idx);
        HostTensor v = random_tensor(c.dtype, {c.b, c.s, c.hkv, c.d});
        HostTensor out = HostTensor::contiguous(c.dtype, {c.b, c.s, c.hq, c.d});
        HostTensor lse = HostTensor::contiguous(SA_DTYPE_F32, {c.b, c.hq, c.s});
        sa_attention_options attention;
        sa_attention_options_init(&attention);
        attention.causal = 1;
        COMPARE_ATTENTION(q, k, v, out, &lse, attention,
                          [&](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_,
                              sa_tensor* o_, sa_tensor* l_, const sa_attention_options* opt) {
                              const bool gpu = q_->device_type == SA_DEVICE_CUDA;
                              sa_block_sparse_params params;
                              std::memset(&params, 0, sizeof params);
                              params.block_q = c.block;
                              params.block_k = c.block;
                              params.kv_num_blocks = gpu ? dnum.desc : gpu_num.desc;
                              params.kv_indices = gpu ? didx.desc : gpu_idx.desc;
                              params.key_perm = gpu ? dperm.desc : gpu_perm.desc;
                              return sa_block_sparse_forward(q_, k_, v_, o_, l_, &params, opt);
                          },
                          label + " attention");
    }
}

SA_TEST(cuda_pbs_plan_long_sequence_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    // Over 4096 candidate blocks: the selection kernel needs more than 48 KB of shared memory.
    // tau 1 keeps every candidate, so thousands of fp32 cumulative sums cannot land on either
    // side of tau by rounding alone.
    const PbsCase c{SA_DTYPE_BF16, 1, 4200 * 64 + 37, 1, 1, 32, 64, 256, 1.0f};
    const int64_t nb = (c.s + c.block - 1) / c.block;
    HostTensor q = random_tensor(c.dtype, {c.b, c.s, c.hq, c.d});
    HostTensor k = random_tensor(c.dtype, {c.b, c.s, c.hkv, c.d});
    sa_pbs_options options;
    sa_pbs_options_init(&options);
    options.block = c.block;
    options.segment = c.segment;
    options.tau = c.tau;
    PlanPair plans = plan_on_cpu_and_gpu(q, k, options, c.b, c.hq, c.s, nb);
    HostTensor &cpu_perm = plans.cpu_perm, &cpu_num = plans.cpu_num, &cpu_idx = plans.cpu_idx;
    HostTensor &gpu_perm = plans.gpu_perm, &gpu_num = plans.gpu_num, &gpu_idx = plans.gpu_idx;
    compare_plans(c, q, k, cpu_perm, cpu_num, cpu_idx, gpu_perm, gpu_num, gpu_idx,
                  "long pbs plan");
}

// Block scores under control: every query row is 4 * e0 and every key row of block j is
// c_j * e0 (head dim 16, scale 1/4), so query block i scores block j with c_j exactly, on the
// CPU and the GPU alike. Expected plans follow the rule in fp64: candidates by descending
// probability, ties lower block first, the shortest prefix whose sum reaches tau. Rows whose
// fp64 prefix sums come within 1e-5 of tau (where fp32 rounding may decide) are exempt, unless
// the row's probabilities are powers of two (all partial sums exact in fp32).
namespace {

struct SelectionCase {
    int64_t s;
    int32_t block, segment;
    float tau;
    int32_t permute_keys;
    std::vector<double> levels;  // c_j = levels[j % levels.size()]
    const char* what;
};

void check_selection_case(const SelectionCase& c, const std::string& label) {
    const int64_t d = 16, nb = (c.s + c.block - 1) / c.block, bps = c.segment / c.block;
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F16, {1, c.s, 1, d});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F16, {1, c.s, 1, d});
    std::vector<double> level(static_cast<size_t>(nb));
    for (int64_t j = 0; j < nb; ++j) level[j] = c.levels[j % c.levels.size()];
    for (int64_t t = 0; t < c.s; ++t) {
        q.set({0, t, 0, 0}, 4.0);
        k.set({0, t, 0, 0}, level[t / c.block]);
    }
    sa_pbs_options options;
    sa_pbs_options_init(&options);
    options.block = c.block;
    options.segment = c.segment;
    options.tau = c.tau;
    options.scale = 0.25f;
    options.permute_keys = c.permute_keys;
    PlanPair plans = plan_on_cpu_and_gpu(q, k, options, 1, 1, c.s, nb);
    HostTensor &cpu_perm = plans.cpu_perm, &cpu_num = plans.cpu_num, &cpu_idx = plans.cpu_idx;
    HostTensor &gpu_perm = plans.gpu_perm, &gpu_num = plans.gpu_num, &gpu_idx = plans.gpu_idx;
    // Keys of a block are all alike, so every importance ties and the stable sort keeps the
    // identity: the sink is block 0 and block j holds keys of level c_j.
    for (int64_t t = 0; t < c.s; ++t) {
        CHECK_EQ(gpu_perm.i32()[t], static_cast<int32_t>(t));
        CHECK_EQ(cpu_perm.i32()[t], static_cast<int32_t>(t));
    }
    int64_t checked = 0, exempt = 0, partial = 0;
    std::vector<int32_t> order;
    std::vector<float> prob;
    for (int64_t i = 0; i < nb; ++i) {
        const int64_t own = (i * c.block) / c.segment, n = own * bps;
        std::vector<uint8_t> keep(static_cast<size_t>(nb), 0);
        bool near = false, uniform = true, dyadic = true;
        if (n > 0) {
            // fp32 probabilities as both planners form them; their prefix sums in fp64 (exact).
            double top = -INFINITY;
            for (int64_t j = 0; j < n; ++j) top = std::max(top, level[j]);
            prob.assign(static_cast<size_t>(n), 0.0f);
            float sum = 0.0f;
            for (int64_t j = 0; j < n; ++j) {
                prob[j] = std::exp(static_cast<float>(level[j] - top));
                sum += prob[j];
            }
            for (int64_t j = 0; j < n; ++j) {
                prob[j] /= sum;
                int exponent = 0;
                dyadic = dyadic && std::frexp(prob[j], &exponent) == 0.5f;
                uniform = uniform && level[j] == level[0];
            }
            order.resize(static_cast<size_t>(n));
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(),
                             [&](int32_t x, int32_t y) { return prob[x] > prob[y]; });
            double cumulative = 0;
            int64_t kept = 0;
            for (int64_t e = 0; e < n; ++e) {
                keep[order[e]] = 1;
                ++kept;
                cumulative += prob[order[e]];
                near = near || std::fabs(cumulative - c.tau) < 1e-5;
                if (c.tau < 1.0f && cumulative >= c.tau) break;
            }
            if (kept < n) ++partial;
        }
        keep[0] = 1;
        const bool own_full = c.permute_keys && (own + 1) * c.segment <= c.s;
        const int64_t own_last = own_full ? (own + 1) * bps - 1 : i;
        for (int64_t j = own * bps; j <= own_last; ++j) keep[j] = 1;
        // Equal scores give bitwise-known probabilities, and the GPU sums prefixes exactly;
        // the CPU's fp32 running sum is exact only for powers of two.
        const bool check_gpu = !near || uniform, check_cpu = !near || dyadic;
        if (!check_gpu) {
            ++exempt;
            continue;
        }
        ++checked;
        std::vector<int32_t> expected;
        for (int64_t j = 0; j < nb; ++j)
            if (keep[j]) expected.push_back(static_cast<int32_t>(j));
        const auto expected_count = static_cast<int32_t>(expected.size());
        expected.resize(static_cast<size_t>(nb), -1);
        const int64_t row = i;
        if (gpu_num.i32()[row] != expected_count ||
            !std::equal(expected.begin(), expected.end(), gpu_idx.i32() + row * nb))
            report_failure(__FILE__, __LINE__,
                           label + ": GPU list of query block " + std::to_string(i) + " (" +
                               std::to_string(n) + " candidates, count " +
                               std::to_string(gpu_num.i32()[row]) + ", expected " +
                               std::to_string(expected_count) + ") is not the expected one");
        if (check_cpu && (cpu_num.i32()[row] != expected_count ||
                          !std::equal(expected.begin(), expected.end(), cpu_idx.i32() + row * nb)))
            report_failure(__FILE__, __LINE__,
                           label + ": CPU list of query block " + std::to_string(i) +
                               " is not the expected one");
    }
    std::printf("%s: %lld rows checked, %lld exempt, %lld keep a strict prefix\n", label.c_str(),
                static_cast<long long>(checked), static_cast<long long>(exempt),
                static_cast<long long>(partial));
    CHECK(exempt * 20 <= checked);
    CHECK(partial * 2 >= nb);  // most rows stop short of keeping every candidate
}

}  // namespace

SA_TEST(cuda_pbs_selection_ties_and_exact_tau) {
    SA_REQUIRE_CUDA_DEVICE();
    const std::vector<SelectionCase> cases = {
        // All scores equal: tau 0.5 is reached exactly after half of a power-of-two count,
        // and the lowest blocks must be the ones kept. Candidates 1, 2, ..., 39 (one block per
        // segment), permuted and not.
        {64 * 40, 64, 64, 0.5f, 0, {1.0}, "uniform, tau on a partial sum"},
        {64 * 40, 64, 64, 0.5f, 1, {1.0}, "uniform, permuted keys"},
        {64 * 40, 64, 64, 0.75f, 0, {1.0}, "uniform, tau 0.75"},
        // Two or three score levels, each shared by many blocks: the order inside a level is
        // the block index. Candidates in steps of 3 (not powers of two).
        {64 * 60 + 17, 64, 192, 0.6f, 0, {0.0, 1.0, 0.5, 1.0, 0.0}, "three levels"},
        {64 * 60, 64, 192, 0.9f, 1, {1.0, 0.0, 0.0}, "two levels, permuted keys"},
        // Up to 1099 candidates: past the 1024 a warp holds in registers.
        {64 * 1100, 64, 64, 0.9f, 0, {0.0, 0.5, 1.0, 0.5, 1.0, 1.0, 0.0}, "1100 blocks"},
        {64 * 1100, 64, 64, 0.5f, 0, {1.0}, "1100 blocks, uniform"},
    };
    int index = 0;
    for (const SelectionCase& c : cases)
        check_selection_case(c, "selection case " + std::to_string(index++) + " (" + c.what + ")");
}

SA_TEST(cuda_pbs_plan_rejects_large_segment) {
    SA_REQUIRE_CUDA_DEVICE();
    const int64_t s = 9000, d = 32;
    HostTensor q = random_tensor(SA_DTYPE_F16, {1, s, 1, d});
    HostTensor k = random_tensor(SA_DTYPE_F16, {1, s, 1, d});
    const int64_t nb = (s + 127) / 128;
    HostTensor perm = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, s});
    HostTensor num = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, nb});
    HostTensor idx = HostTensor::contiguous(SA_DTYPE_I32, {1, 1, nb, nb});
    DeviceTensor dq(q), dk(k), dperm(perm), dnum(num), didx(idx);
    sa_pbs_options options;
    sa_pbs_options_init(&options);
    options.segment = 8192;
    CHECK_ERROR(sa_pbs_plan(dq.d(), dk.d(), &options, dperm.d(), dnum.d(), didx.d()),
                SA_ERROR_INVALID_ARGUMENT, "segment");
}

SA_TEST(cuda_reference_runs_on_a_created_stream) {
    SA_REQUIRE_CUDA_DEVICE();
    void* stream = nullptr;
    REQUIRE_OK(sa_cuda_stream_create(0, &stream));
    HostTensor q = random_tensor(SA_DTYPE_F16, {1, 50, 2, 72});
    HostTensor k = random_tensor(SA_DTYPE_F16, {1, 61, 2, 72});
    HostTensor v = random_tensor(SA_DTYPE_F16, {1, 61, 2, 72});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F16, {1, 50, 2, 72});
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = 1;
    options.kernel = SA_KERNEL_REFERENCE;
    options.stream = stream;
    COMPARE_ATTENTION(q, k, v, out, nullptr, options,
                      [](const sa_tensor* q_, const sa_tensor* k_, const sa_tensor* v_,
                         sa_tensor* o_, sa_tensor* l_, const sa_attention_options* opt) {
                          return sa_dense_forward(q_, k_, v_, o_, l_, opt);
                      },
                      "dense on a created stream");
    CHECK_OK(sa_cuda_stream_destroy(stream));
}
