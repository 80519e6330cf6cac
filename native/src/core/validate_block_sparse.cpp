// Block-sparse calls, block-mask conversions and the pair count: list shapes and, on the
// host, list and permutation contents.
#include "validate.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "attention_checks.h"
#include "checked_math.h"
#include "errors.h"

namespace sa {
using namespace check;

namespace {

// Reusable per-thread marks for duplicate and permutation checks on host tensors.
std::vector<uint8_t>& scratch_marks(size_t n) {
    thread_local std::vector<uint8_t> marks;
    if (marks.size() < n) marks.assign(n, 0);
    return marks;
}

// Host-side list contents: counts in 0..C, indices in [0, nK) and, with check_repeats, no
// block listed twice across the partial and full lists of a row.
void check_list_contents(const IndexView& num, const IndexView& idx, const IndexView* full_num,
                         const IndexView* full_idx, int64_t batch, int64_t heads, int64_t rows,
                         int64_t num_k_blocks, bool check_repeats) {
    // Marks cost one byte per key block; past this many blocks (a pair count for a huge s_k)
    // repeats are found by sorting each row instead.
    constexpr int64_t kMaxMarkedBlocks = int64_t{1} << 24;
    const bool sort_rows = check_repeats && num_k_blocks > kMaxMarkedBlocks;
    std::vector<uint8_t>& marks =
        scratch_marks(check_repeats && !sort_rows ? static_cast<size_t>(num_k_blocks) : 0);
    std::vector<int32_t> row_entries;
    struct Lists { const IndexView* num; const IndexView* idx; };
    const Lists lists[2] = {{&num, &idx}, {full_num, full_idx}};
    const int64_t capacity[2] = {idx.view.t->shape[3], full_idx ? full_idx->view.t->shape[3] : 0};
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h)
            for (int64_t r = 0; r < rows; ++r) {
                for (int li = 0; li < 2; ++li) {
                    if (lists[li].num == nullptr) continue;
                    const int32_t count = *index_row(*lists[li].num, b, h, r);
                    if (count < 0 || count > capacity[li]) {
                        std::fill(marks.begin(), marks.end(), 0);
                        fail_invalid("%s[%lld, %lld, %lld] = %d must be in 0..%lld (the capacity "
                                     "C of %s)", lists[li].num->view.name, ll(b), ll(h), ll(r),
                                     count, ll(capacity[li]), lists[li].idx->view.name);
                    }
                    const int32_t* entries = index_row(*lists[li].idx, b, h, r);
                    for (int32_t c = 0; c < count; ++c) {
                        const int32_t j = entries[c];
                        if (j < 0 || j >= num_k_blocks) {
                            std::fill(marks.begin(), marks.end(), 0);
                            fail_invalid("%s[%lld, %lld, %lld, %d] = %d must be a key block in "
                                         "[0, %lld)", lists[li].idx->view.name, ll(b), ll(h),
                                         ll(r), c, j, ll(num_k_blocks));
                        }
                        if (sort_rows) {
                            row_entries.push_back(j);
                        } else if (check_repeats) {
                            if (marks[j]) {
                                std::fill(marks.begin(), marks.end(), 0);
                                fail_invalid("%s[%lld, %lld, %lld, %d] = %d: key block listed "
                                             "more than once in the row", lists[li].idx->view.name,
                                             ll(b), ll(h), ll(r), c, j);
                            }
                            marks[j] = 1;
                        }
                    }
                }
                if (sort_rows) {
                    std::sort(row_entries.begin(), row_entries.end());
                    const auto repeat =
                        std::adjacent_find(row_entries.begin(), row_entries.end());
                    if (repeat != row_entries.end())
                        fail_invalid("block lists: key block %d listed more than once in row "
                                     "[%lld, %lld, %lld]", *repeat, ll(b), ll(h), ll(r));
                    row_entries.clear();
                } else if (check_repeats)
                    for (int li = 0; li < 2; ++li) {
                        if (lists[li].num == nullptr) continue;
                        const int32_t n = *index_row(*lists[li].num, b, h, r);
                        const int32_t* e = index_row(*lists[li].idx, b, h, r);
                        for (int32_t x = 0; x < n; ++x) marks[e[x]] = 0;
                    }
            }
}

void check_permutation_contents(const IndexView& perm, int64_t batch, int64_t heads,
                                int64_t length) {
    std::vector<uint8_t>& marks = scratch_marks(static_cast<size_t>(length));
    const int64_t nb = perm.strides.batch == 0 ? 1 : batch;
    const int64_t nh = perm.strides.head == 0 ? 1 : heads;
    for (int64_t b = 0; b < nb; ++b)
        for (int64_t h = 0; h < nh; ++h) {
            const int32_t* p = index_row(perm, b, h, 0);
            int64_t bad = -1;
            for (int64_t i = 0; i < length; ++i) {
                const int32_t x = p[i];
                if (x < 0 || x >= length || marks[x]) {
                    bad = i;
                    break;
                }
                marks[x] = 1;
            }
            const int64_t marked = bad < 0 ? length : bad;
            for (int64_t i = 0; i < marked; ++i) marks[p[i]] = 0;
            if (bad >= 0)
                fail_invalid("%s[%lld, %lld, %lld] = %d: not a permutation of 0..%lld", perm.view.name,
                             ll(b), ll(h), ll(bad), p[bad], ll(length - 1));
        }
}

// Counts are int32, so no entry past INT32_MAX of a list row is ever read.
int32_t list_capacity(const sa_tensor& indices) {
    return static_cast<int32_t>(std::min<int64_t>(indices.shape[3], INT32_MAX));
}

}  // namespace

AttentionProblem validate_block_sparse(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse,
                                       const sa_block_sparse_params* params,
                                       const sa_attention_options* options) {
    CallBuffers buffers;
    AttentionProblem p =
        validate_batched(Family::BlockSparse, q, k, v, out, lse, options, &buffers);
    if (params == nullptr) fail_invalid("params: pointer is NULL");
    require_block_size(params->block_q, "params->block_q");
    require_block_size(params->block_k, "params->block_k");
    const View vq = check_tensor(q, "q", 4, "[B, S, H, D]");
    const int64_t nq = (p.seqlen_q + params->block_q - 1) / params->block_q;
    const int64_t nk = (p.seqlen_k + params->block_k - 1) / params->block_k;
    if (nq > INT32_MAX || nk > INT32_MAX)
        fail_invalid("q: too many blocks (nQ = %lld, nK = %lld)", ll(nq), ll(nk));

    BlockSparseLists& bs = p.block_sparse;
    bs.block_q = params->block_q;
    bs.block_k = params->block_k;
    bs.num_q_blocks = static_cast<int32_t>(nq);
    bs.num_k_blocks = static_cast<int32_t>(nk);

    const IndexView num = check_index_tensor(&params->kv_num_blocks, "params->kv_num_blocks", 3,
                                             "[B, H_q, nQ]", vq, p.batch, p.heads_q, nq, -1);
    const IndexView idx = check_index_tensor(&params->kv_indices, "params->kv_indices", 4,
                                             "[B, H_q, nQ, C]", vq, p.batch, p.heads_q, nq, -1);
    bs.kv_num_blocks = static_cast<const int32_t*>(params->kv_num_blocks.data);
    bs.kv_indices = static_cast<const int32_t*>(params->kv_indices.data);
    bs.num_strides = num.strides;
    bs.idx_strides = idx.strides;
    bs.capacity = list_capacity(params->kv_indices);
    buffers.read(num.view);
    buffers.read(idx.view);

    const bool has_full_num = params->full_kv_num_blocks.data != nullptr;
    const bool has_full_idx = params->full_kv_indices.data != nullptr;
    if (has_full_num != has_full_idx)
        fail_invalid("%s: must be given together with %s",
                     has_full_num ? "params->full_kv_indices" : "params->full_kv_num_blocks",
                     has_full_num ? "params->full_kv_num_blocks" : "params->full_kv_indices");
    IndexView full_num, full_idx;
    if (has_full_num) {
        full_num = check_index_tensor(&params->full_kv_num_blocks, "params->full_kv_num_blocks",
                                      3, "[B, H_q, nQ]", vq, p.batch, p.heads_q, nq, -1);
        full_idx = check_index_tensor(&params->full_kv_indices, "params->full_kv_indices", 4,
                                      "[B, H_q, nQ, C]", vq, p.batch, p.heads_q, nq, -1);
        bs.full_num_blocks = static_cast<const int32_t*>(params->full_kv_num_blocks.data);
        bs.full_indices = static_cast<const int32_t*>(params->full_kv_indices.data);
        bs.full_num_strides = full_num.strides;
        bs.full_idx_strides = full_idx.strides;
        bs.full_capacity = list_capacity(params->full_kv_indices);
        buffers.read(full_num.view);
        buffers.read(full_idx.view);
    }
    IndexView key_perm, query_perm;
    if (params->key_perm.data != nullptr) {
        key_perm = check_index_tensor(&params->key_perm, "params->key_perm", 3, "[B, H_q, S_k]",
                                      vq, p.batch, p.heads_q, p.seqlen_k, -1);
        bs.key_perm = static_cast<const int32_t*>(params->key_perm.data);
        bs.key_perm_strides = key_perm.strides;
        buffers.read(key_perm.view);
    }
    if (params->query_perm.data != nullptr) {
        query_perm = check_index_tensor(&params->query_perm, "params->query_perm", 3,
                                        "[B, H_q, S_q]", vq, p.batch, p.heads_q, p.seqlen_q, -1);
        bs.query_perm = static_cast<const int32_t*>(params->query_perm.data);
        bs.query_perm_strides = query_perm.strides;
        buffers.read(query_perm.view);
    }
    require_disjoint_buffers(buffers);
    if (p.device_type == SA_DEVICE_CPU) {
        check_list_contents(num, idx, has_full_num ? &full_num : nullptr,
                            has_full_num ? &full_idx : nullptr, p.batch, p.heads_q, nq, nk, true);
        if (bs.key_perm) check_permutation_contents(key_perm, p.batch, p.heads_q, p.seqlen_k);
        if (bs.query_perm) check_permutation_contents(query_perm, p.batch, p.heads_q, p.seqlen_q);
    }
    return p;
}

MaskConversion validate_mask_to_lists(const sa_tensor* dense_mask,
                                      const sa_tensor* kv_num_blocks,
                                      const sa_tensor* kv_indices, void* stream) {
    const View mask = check_tensor(dense_mask, "dense_mask", 4, "[B, H, nQ, nK]");
    const View num = check_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H, nQ]");
    const View idx = check_tensor(kv_indices, "kv_indices", 4, "[B, H, nQ, nK]");
    require_device_available(mask);
    require_same_device(num, mask);
    require_same_device(idx, mask);
    require_dtype(mask, SA_DTYPE_BOOL);
    require_dtype(num, SA_DTYPE_I32);
    require_dtype(idx, SA_DTYPE_I32);
    const int64_t B = dense_mask->shape[0], H = dense_mask->shape[1], nq = dense_mask->shape[2],
                  nk = dense_mask->shape[3];
    require_shape(num, {B, H, nq}, "[B, H, nQ]");
    require_shape(idx, {B, H, nq, nk}, "[B, H, nQ, nK]");
    require_contiguous(mask);
    require_contiguous(num);
    require_contiguous(idx);
    if (nk > INT32_MAX) fail_invalid("dense_mask: shape[3] (nK = %lld) exceeds int32", ll(nk));
    require_disjoint(num, mask);
    require_disjoint(idx, mask);
    require_disjoint(idx, num);
    MaskConversion c;
    std::memset(&c, 0, sizeof c);
    c.device_type = static_cast<sa_device_type>(dense_mask->device_type);
    c.device_id = dense_mask->device_id;
    c.batch = B;
    c.heads = H;
    c.num_q_blocks = nq;
    c.num_k_blocks = nk;
    c.mask_in = static_cast<const uint8_t*>(dense_mask->data);
    c.num_out = static_cast<int32_t*>(kv_num_blocks->data);
    c.idx_out = static_cast<int32_t*>(kv_indices->data);
    c.idx_in_capacity = nk;
    c.stream = stream;
    return c;
}

MaskConversion validate_lists_to_mask(const sa_tensor* kv_num_blocks,
                                      const sa_tensor* kv_indices, const sa_tensor* dense_mask,
                                      void* stream) {
    const View num = check_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H, nQ]");
    const View idx = check_tensor(kv_indices, "kv_indices", 4, "[B, H, nQ, C]");
    const View mask = check_tensor(dense_mask, "dense_mask", 4, "[B, H, nQ, nK]");
    require_device_available(num);
    require_same_device(idx, num);
    require_same_device(mask, num);
    require_dtype(num, SA_DTYPE_I32);
    require_dtype(idx, SA_DTYPE_I32);
    require_dtype(mask, SA_DTYPE_BOOL);
    const int64_t B = kv_num_blocks->shape[0], H = kv_num_blocks->shape[1],
                  nq = kv_num_blocks->shape[2], C = kv_indices->shape[3],
                  nk = dense_mask->shape[3];
    require_shape(idx, {B, H, nq}, "[B, H, nQ]");
    require_shape(mask, {B, H, nq}, "[B, H, nQ]");
    require_contiguous(num);
    require_contiguous(idx);
    require_contiguous(mask);
    require_disjoint(mask, num);
    require_disjoint(mask, idx);
    if (num.t->device_type == SA_DEVICE_CPU) {
        IndexView n, i;
        n.view = num;
        n.strides = {kv_num_blocks->strides[0], kv_num_blocks->strides[1],
                     kv_num_blocks->strides[2]};
        i.view = idx;
        i.strides = {kv_indices->strides[0], kv_indices->strides[1], kv_indices->strides[2]};
        check_list_contents(n, i, nullptr, nullptr, B, H, nq, nk, false);
    }
    MaskConversion c;
    std::memset(&c, 0, sizeof c);
    c.device_type = static_cast<sa_device_type>(kv_num_blocks->device_type);
    c.device_id = kv_num_blocks->device_id;
    c.batch = B;
    c.heads = H;
    c.num_q_blocks = nq;
    c.num_k_blocks = nk;
    c.num_in = static_cast<const int32_t*>(kv_num_blocks->data);
    c.idx_in = static_cast<const int32_t*>(kv_indices->data);
    c.idx_in_capacity = C;
    c.mask_out = static_cast<uint8_t*>(dense_mask->data);
    c.stream = stream;
    return c;
}

int64_t block_sparse_pair_count(int64_t s_q, int64_t s_k, int32_t block_q, int32_t block_k,
                                int32_t causal, const sa_tensor* kv_num_blocks,
                                const sa_tensor* kv_indices) {
    if (s_q < 1) fail_invalid("s_q must be >= 1, got %lld", ll(s_q));
    if (s_k < 1) fail_invalid("s_k must be >= 1, got %lld", ll(s_k));
    require_block_size(block_q, "block_q");
    require_block_size(block_k, "block_k");
    if (causal != 0 && causal != 1) fail_invalid("causal must be 0 or 1, got %d", causal);
    // Rounded up without adding first: s_q and s_k may be as large as INT64_MAX.
    const int64_t nq = s_q / block_q + (s_q % block_q != 0);
    const int64_t nk = s_k / block_k + (s_k % block_k != 0);
    const View probe = check_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H, nQ]", true);
    if (probe.t->device_type != SA_DEVICE_CPU)
        fail_invalid("kv_num_blocks: must be a host (CPU) tensor for pair counting, got device "
                     "%s", device_text(probe.t->device_type, probe.t->device_id).c_str());
    const int64_t B = kv_num_blocks->shape[0], H = kv_num_blocks->shape[1];
    const IndexView num = check_index_tensor(kv_num_blocks, "kv_num_blocks", 3, "[B, H, nQ]",
                                             probe, B, H, nq, -1);
    const IndexView idx = check_index_tensor(kv_indices, "kv_indices", 4, "[B, H, nQ, C]", probe,
                                             B, H, nq, -1);
    // Dims both tensors broadcast (stride 0) are counted once and multiplied: B or H may be
    // far larger than any memory.
    const int64_t distinct_b = num.strides.batch == 0 && idx.strides.batch == 0 ? 1 : B;
    const int64_t distinct_h = num.strides.head == 0 && idx.strides.head == 0 ? 1 : H;
    check_list_contents(num, idx, nullptr, nullptr, distinct_b, distinct_h, nq, nk, true);
    const int64_t offset = s_k - s_q;
    int64_t pairs = 0;
    for (int64_t b = 0; b < distinct_b; ++b)
        for (int64_t h = 0; h < distinct_h; ++h)
            for (int64_t r = 0; r < nq; ++r) {
                const int32_t count = *index_row(num, b, h, r);
                const int32_t* entries = index_row(idx, b, h, r);
                const int64_t row_begin = r * block_q;
                const int64_t row_end = std::min(s_q, row_begin + block_q);
                for (int32_t c = 0; c < count; ++c) {
                    const int64_t key_begin = static_cast<int64_t>(entries[c]) * block_k;
                    const int64_t key_end = std::min(s_k, key_begin + block_k);
                    if (!causal) {
                        pairs += (row_end - row_begin) * (key_end - key_begin);
                        continue;
                    }
                    for (int64_t i = row_begin; i < row_end; ++i) {
                        const int64_t last = std::min(key_end, i + offset + 1);
                        if (last > key_begin) pairs += last - key_begin;
                    }
                }
            }
    // Only the broadcast dims multiply here: the message names the one that overflowed.
    if (sa::mul_overflows(pairs, B / distinct_b, &pairs))
        fail_invalid("kv_num_blocks: pair count overflows int64 over the broadcast batch dim "
                     "(shape[0] = B = %lld)", ll(B));
    if (sa::mul_overflows(pairs, H / distinct_h, &pairs))
        fail_invalid("kv_num_blocks: pair count overflows int64 over the broadcast head dim "
                     "(shape[1] = H = %lld)", ll(H));
    return pairs;
}

}  // namespace sa
