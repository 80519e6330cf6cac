// Top-left causal alignment on CUDA against the CPU backend (which applies it directly): the
// dense dispatch runs it as bottom-right calls on a reshaped problem (S_q < S_k: the first S_q
// keys; S_q > S_k: the square part plus an unmasked rest). Varlen and block-sparse calls with
// S_q != S_k refuse it with SA_ERROR_UNSUPPORTED.
#include <cstring>
#include <string>

#include "test_cuda_util.h"

using namespace sa_test;

namespace {

struct AlignmentCase {
    sa_dtype dtype;
    int64_t b, sq, sk, hq, hkv, d;
    Layout layout;
    int32_t kernel;
    int32_t splits;
};

sa_status dense_call(const sa_tensor* q, const sa_tensor* k, const sa_tensor* v, sa_tensor* o, sa_tensor* l,
                     const sa_attention_options* opt) {
    return sa_dense_forward(q, k, v, o, l, opt);
}

}  // namespace

SA_TEST(cuda_dense_causal_top_left_matches_cpu) {
    SA_REQUIRE_CUDA_DEVICE();
    const AlignmentCase cases[] = {
        {SA_DTYPE_F16, 1, 130, 211, 2, 1, 64, Layout::Bshd, SA_KERNEL_AUTO, 0},
        {SA_DTYPE_BF16, 1, 200, 65, 3, 3, 128, Layout::Bhsd, SA_KERNEL_AUTO, 0},
        {SA_DTYPE_BF16, 2, 333, 200, 4, 2, 128, Layout::Padded, SA_KERNEL_AUTO, 0},
        {SA_DTYPE_F16, 2, 333, 200, 4, 2, 64, Layout::Bshd, SA_KERNEL_PORTABLE, 0},
        {SA_DTYPE_F16, 1, 4, 5000, 4, 2, 64, Layout::Bshd, SA_KERNEL_AUTO, 4},
        {SA_DTYPE_BF16, 1, 77, 40, 2, 2, 96, Layout::Bshd, SA_KERNEL_REFERENCE, 0},
        {SA_DTYPE_F16, 1, 96, 96, 2, 2, 32, Layout::Bshd, SA_KERNEL_AUTO, 0},
    };
    for (const AlignmentCase& c : cases) {
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
        options.causal = 1;
        options.causal_alignment = SA_CAUSAL_TOP_LEFT;
        options.kernel = c.kernel;
        options.num_splits = c.splits;
        const std::string label = std::string("top-left dense ") + dtype_label(c.dtype) + " Sq" + std::to_string(c.sq) +
                                  " Sk" + std::to_string(c.sk) + " D" + std::to_string(c.d) + " kernel " +
                                  std::to_string(c.kernel) + " splits " + std::to_string(c.splits);
        COMPARE_ATTENTION(q, k, v, out, &lse, options, dense_call, label);
    }
}

SA_TEST(cuda_dense_causal_top_left_workspace_covers_both_parts) {
    // S_q > S_k: the square part runs causal, the last S_q - S_k queries see every key. Those
    // few queries over many keys split the keys; the workspace must hold that part's partials.
    SA_REQUIRE_CUDA_DEVICE();
    HostTensor q = random_tensor(SA_DTYPE_F16, {1, 6004, 4, 64});
    HostTensor tail = random_tensor(SA_DTYPE_F16, {1, 4, 4, 64});
    HostTensor k = random_tensor(SA_DTYPE_F16, {1, 6000, 2, 64});
    DeviceTensor dq(q), dtail(tail), dk(k);
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.num_splits = 4;
    size_t tail_bytes = 0;
    REQUIRE_OK(sa_dense_workspace_size(dtail.d(), dk.d(), &options, &tail_bytes));
    CHECK(tail_bytes > 0);
    options.causal = 1;
    options.causal_alignment = SA_CAUSAL_TOP_LEFT;
    size_t bytes = 0;
    REQUIRE_OK(sa_dense_workspace_size(dq.d(), dk.d(), &options, &bytes));
    CHECK(bytes >= tail_bytes);
}

SA_TEST(cuda_varlen_causal_top_left_is_unsupported) {
    SA_REQUIRE_CUDA_DEVICE();
    HostTensor q = random_tensor(SA_DTYPE_F16, {20, 2, 32});
    HostTensor k = random_tensor(SA_DTYPE_F16, {30, 2, 32});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F16, {20, 2, 32});
    HostTensor cq = int_tensor({3}, {0, 8, 20});
    HostTensor ck = int_tensor({3}, {0, 10, 30});
    DeviceTensor dq(q), dk(k), dout(out), dcq(cq), dck(ck);
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = 1;
    options.causal_alignment = SA_CAUSAL_TOP_LEFT;
    CHECK_EQ(sa_dense_forward_varlen(dq.d(), dk.d(), dk.d(), dout.d(), nullptr, dcq.d(), dck.d(), 12, 20, &options),
             SA_ERROR_UNSUPPORTED);
    CHECK(std::strstr(sa_last_error(), "top-left") != nullptr);
    // Equal bounds do not make every sequence square: refused all the same.
    CHECK_EQ(sa_dense_forward_varlen(dq.d(), dk.d(), dk.d(), dout.d(), nullptr, dcq.d(), dck.d(), 20, 20, &options),
             SA_ERROR_UNSUPPORTED);
    options.causal_alignment = SA_CAUSAL_BOTTOM_RIGHT;
    CHECK_EQ(sa_dense_forward_varlen(dq.d(), dk.d(), dk.d(), dout.d(), nullptr, dcq.d(), dck.d(), 12, 20, &options), SA_OK);
}

SA_TEST(cuda_block_sparse_causal_top_left_unequal_lengths_is_unsupported) {
    SA_REQUIRE_CUDA_DEVICE();
    HostTensor q = random_tensor(SA_DTYPE_F16, {1, 100, 2, 64});
    HostTensor k = random_tensor(SA_DTYPE_F16, {1, 150, 2, 64});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F16, {1, 100, 2, 64});
    HostTensor num = int_tensor({1, 2, 2}, {3, 3, 3, 3});
    HostTensor idx = int_tensor({1, 2, 2, 3}, {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2});
    DeviceTensor dq(q), dk(k), dout(out), dnum(num), didx(idx);
    sa_block_sparse_params params;
    std::memset(&params, 0, sizeof params);
    params.block_q = 64;
    params.block_k = 64;
    params.kv_num_blocks = dnum.desc;
    params.kv_indices = didx.desc;
    sa_attention_options options;
    sa_attention_options_init(&options);
    options.causal = 1;
    options.causal_alignment = SA_CAUSAL_TOP_LEFT;
    CHECK_EQ(sa_block_sparse_forward(dq.d(), dk.d(), dk.d(), dout.d(), nullptr, &params, &options), SA_ERROR_UNSUPPORTED);
    CHECK(std::strstr(sa_last_error(), "top-left") != nullptr);
}
