// LSE merge of two partial results and the block mask <-> block list conversions.
#include <cmath>
#include <limits>
#include <string>
#include <vector>
#include "cpu_common.h"

namespace sa {
namespace cpu {
namespace {

template <class T>
void load_any(const void* base, int64_t offset, float* dst, int64_t n) {
    load_row(static_cast<const T*>(base) + offset, dst, n, 1.0f);
}

void load_row_any(sa_dtype dtype, const void* base, int64_t offset, float* dst, int64_t n) {
    dispatch_dtype(dtype, [&](auto tag) { load_any<decltype(tag)>(base, offset, dst, n); });
}

void store_row_any(sa_dtype dtype, void* base, int64_t offset, const float* src, int64_t n) {
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        store_row(src, static_cast<T*>(base) + offset, n);
    });
}

int64_t row_offset(const RowStrides& st, int64_t b, int64_t s, int64_t h) {
    return b * st.batch + s * st.seq + h * st.head;
}
int64_t lse_offset(const LseStrides& st, int64_t b, int64_t h, int64_t s) {
    return b * st.batch + h * st.head + s * st.seq;
}

}  // namespace

void lse_merge(const MergeProblem& m) {
    const int64_t rows = m.batch * m.seqlen * m.heads;
    const int64_t D = m.head_dim;
    const int32_t workers = worker_count(0, (rows + 255) / 256);
    const int64_t chunk = 256;
    const int64_t chunks = (rows + chunk - 1) / chunk;
    parallel_for(chunks, workers, [&](int64_t c, int32_t) {
        std::vector<float> a(D), b2(D);
        const float neg_inf = -std::numeric_limits<float>::infinity();
        for (int64_t r = c * chunk; r < std::min(rows, (c + 1) * chunk); ++r) {
            const int64_t h = r % m.heads;
            const int64_t s = (r / m.heads) % m.seqlen;
            const int64_t b = r / (m.heads * m.seqlen);
            const float l1 = m.lse1[lse_offset(m.lse1_strides, b, h, s)];
            const float l2 = m.lse2[lse_offset(m.lse2_strides, b, h, s)];
            // Whole rows are read before any write: out and lse_out may alias o1 and lse1.
            load_row_any(m.o1_dtype, m.o1, row_offset(m.o1_strides, b, s, h), a.data(), D);
            load_row_any(m.o2_dtype, m.o2, row_offset(m.o2_strides, b, s, h), b2.data(), D);
            const float mx = std::max(l1, l2);
            float lse;
            if (mx == neg_inf) {
                lse = neg_inf;
                for (int64_t d = 0; d < D; ++d) a[d] = 0.0f;
            } else {
                const float e1 = std::exp(l1 - mx), e2 = std::exp(l2 - mx);
                lse = mx + std::log(e1 + e2);
                const float w1 = std::exp(l1 - lse), w2 = std::exp(l2 - lse);
                for (int64_t d = 0; d < D; ++d) a[d] = a[d] * w1 + b2[d] * w2;
            }
            store_row_any(m.out_dtype, m.out, row_offset(m.out_strides, b, s, h), a.data(), D);
            if (m.lse_out) m.lse_out[lse_offset(m.lse_out_strides, b, h, s)] = lse;
        }
    });
}

void block_mask_to_lists(const MaskConversion& c) {
    const int64_t rows = c.batch * c.heads * c.num_q_blocks;
    const int64_t nk = c.num_k_blocks;
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* mask = c.mask_in + r * nk;
        int32_t* idx = c.idx_out + r * nk;
        int32_t count = 0;
        for (int64_t j = 0; j < nk; ++j)
            if (mask[j]) idx[count++] = static_cast<int32_t>(j);
        for (int64_t j = count; j < nk; ++j) idx[j] = -1;
        c.num_out[r] = count;
    }
}

void block_lists_to_mask(const MaskConversion& c) {
    const int64_t rows = c.batch * c.heads * c.num_q_blocks;
    const int64_t nk = c.num_k_blocks;
    const int64_t cap = c.idx_in_capacity;
    // Contents are checked before anything is written.
    for (int64_t r = 0; r < rows; ++r) {
        const std::string where = std::to_string(r / (c.heads * c.num_q_blocks)) + "," +
                                  std::to_string((r / c.num_q_blocks) % c.heads) + "," +
                                  std::to_string(r % c.num_q_blocks);
        const int64_t count = c.num_in[r];
        if (count < 0 || count > cap)
            throw_invalid("kv_num_blocks[" + where + "] = " + std::to_string(count) +
                          " is outside [0, " + std::to_string(cap) + "]");
        const int32_t* idx = c.idx_in + r * cap;
        for (int64_t e = 0; e < count; ++e)
            if (idx[e] < 0 || idx[e] >= nk)
                throw_invalid("kv_indices[" + where + "," + std::to_string(e) + "] = " +
                              std::to_string(idx[e]) + " is outside [0, " + std::to_string(nk) + ")");
    }
    for (int64_t r = 0; r < rows; ++r) {
        uint8_t* mask = c.mask_out + r * nk;
        for (int64_t j = 0; j < nk; ++j) mask[j] = 0;
        const int32_t* idx = c.idx_in + r * cap;
        for (int64_t e = 0; e < c.num_in[r]; ++e) mask[idx[e]] = 1;
    }
}

}  // namespace cpu
}  // namespace sa
