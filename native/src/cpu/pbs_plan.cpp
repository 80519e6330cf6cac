// The PBS planner (docs/semantics.md, "PBS planner"): key importance from the last `block`
// query rows, a stable descending sort within each full segment, then per query block the
// shortest prefix of earlier-segment blocks whose softmax block scores reach tau, plus the
// sink block and the own-segment blocks (all of a full segment; up to the diagonal in the tail).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>
#define SA_CPU_ISA isa_baseline
#include "main_loop.h"

namespace sa {
namespace cpu {
namespace {

using namespace isa_baseline;

constexpr int64_t kChunk = 64;

// Mean over the last min(block, S) query rows of their softmax over keys [0, keys) (no causal mask).
template <class T>
void key_importance(const PbsProblem& p, int64_t b, int64_t h, int64_t keys, std::vector<float>& imp) {
    const int64_t D = p.head_dim;
    const int64_t hk = h / (p.heads_q / p.heads_kv);
    const int64_t rows = std::min<int64_t>(p.block, p.seqlen);
    const int64_t first = p.seqlen - rows;
    const int64_t ld = round_up(rows, kLanes);
    const float factor = p.scale * 1.4426950408889634f;  // scores in log2 units
    std::vector<float> qt(D * ld, 0.0f), kbuf(kChunk * D), st(kChunk * ld), tmp(D);
    std::vector<const float*> k_rows(kChunk);
    for (int64_t r = 0; r < rows; ++r) {
        load_row(row_ptr<T>(p.q, p.q_strides, b, first + r, h), tmp.data(), D, factor);
        for (int64_t d = 0; d < D; ++d) qt[d * ld + r] = tmp[d];
    }
    std::vector<float> m(rows, -std::numeric_limits<float>::infinity()), l(rows, 0.0f);
    imp.assign(keys, 0.0f);
    for (int pass = 0; pass < 2; ++pass) {  // pass 0: row max and sum; pass 1: probabilities
        for (int64_t k0 = 0; k0 < keys; k0 += kChunk) {
            const int64_t n = std::min(kChunk, keys - k0);
            for (int64_t j = 0; j < n; ++j) {
                float* dst = kbuf.data() + j * D;
                load_row(row_ptr<T>(p.k, p.k_strides, b, k0 + j, hk), dst, D, 1.0f);
                k_rows[j] = dst;
            }
            tile_gemm<false>(st.data(), ld, nullptr, RowPointerA{k_rows.data()}, StridedB{qt.data(), ld}, n, ld, D);
            for (int64_t r = 0; r < rows; ++r) {
                if (pass == 0) {
                    float mx = m[r];
                    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, st[j * ld + r]);
                    float sum = 0.0f;
                    for (int64_t j = 0; j < n; ++j) sum += std::exp2(st[j * ld + r] - mx);
                    l[r] = l[r] * std::exp2(m[r] - mx) + sum;
                    m[r] = mx;
                } else {
                    const float w = 1.0f / (l[r] * static_cast<float>(rows));
                    for (int64_t j = 0; j < n; ++j) imp[k0 + j] += std::exp2(st[j * ld + r] - m[r]) * w;
                }
            }
        }
    }
}

template <class T>
void mean_rows(const void* base, const RowStrides& st, int64_t b, int64_t h, const int32_t* rows,
               int64_t first, int64_t count, int64_t D, float* mean, std::vector<float>& tmp) {
    std::fill(mean, mean + D, 0.0f);
    for (int64_t r = 0; r < count; ++r) {
        const int64_t row = rows ? rows[first + r] : first + r;
        load_row(row_ptr<T>(base, st, b, row, h), tmp.data(), D, 1.0f);
        for (int64_t d = 0; d < D; ++d) mean[d] += tmp[d];
    }
    const float inv = 1.0f / static_cast<float>(count);
    for (int64_t d = 0; d < D; ++d) mean[d] *= inv;
}

template <class T>
void plan_head(const PbsProblem& p, int64_t b, int64_t h) {
    const int64_t S = p.seqlen, blk = p.block, seg = p.segment, nb = p.num_blocks, D = p.head_dim;
    const int64_t bh = b * p.heads_q + h;
    int32_t* perm = p.key_perm + bh * S;
    int32_t* num = p.kv_num_blocks + bh * nb;
    int32_t* idx = p.kv_indices + bh * nb * nb;
    for (int64_t t = 0; t < S; ++t) perm[t] = static_cast<int32_t>(t);
    std::fill(idx, idx + nb * nb, -1);

    if ((S + seg - 1) / seg <= 1) {  // one segment: dense causal
        for (int64_t i = 0; i < nb; ++i) {
            for (int64_t j = 0; j <= i; ++j) idx[i * nb + j] = static_cast<int32_t>(j);
            num[i] = static_cast<int32_t>(i + 1);
        }
        return;
    }

    const int64_t full_keys = (S / seg) * seg;
    if (p.permute_keys) {
        std::vector<float> imp;
        key_importance<T>(p, b, h, full_keys, imp);
        for (int64_t s0 = 0; s0 < full_keys; s0 += seg) {
            std::stable_sort(perm + s0, perm + s0 + seg,
                             [&](int32_t x, int32_t y) { return imp[x] > imp[y]; });
        }
    }

    const int64_t hk = h / (p.heads_q / p.heads_kv);
    std::vector<float> tmp(D), mean_q(nb * D), mean_k(nb * D);
    for (int64_t i = 0; i < nb; ++i) {
        const int64_t count = std::min(blk, S - i * blk);
        mean_rows<T>(p.q, p.q_strides, b, h, nullptr, i * blk, count, D, mean_q.data() + i * D, tmp);
        mean_rows<T>(p.k, p.k_strides, b, hk, perm, i * blk, count, D, mean_k.data() + i * D, tmp);
    }
    int64_t sink_pos = 0;
    for (int64_t t = 0; t < S; ++t)
        if (perm[t] == 0) sink_pos = t;
    const int64_t sink_block = sink_pos / blk;

    std::vector<float> score(nb);
    std::vector<int32_t> order(nb);
    std::vector<uint8_t> keep(nb);
    for (int64_t i = 0; i < nb; ++i) {
        std::fill(keep.begin(), keep.end(), 0);
        const int64_t si = (i * blk) / seg;
        const int64_t candidates = si * seg / blk;  // blocks of strictly earlier segments
        if (candidates > 0) {
            const float* mq = mean_q.data() + i * D;
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < candidates; ++j) {
                const float* mk = mean_k.data() + j * D;
                float dot = 0.0f;
                for (int64_t d = 0; d < D; ++d) dot += mq[d] * mk[d];
                score[j] = dot * p.scale;
                mx = std::max(mx, score[j]);
            }
            float sum = 0.0f;
            for (int64_t j = 0; j < candidates; ++j) {
                score[j] = std::exp(score[j] - mx);
                sum += score[j];
            }
            for (int64_t j = 0; j < candidates; ++j) score[j] /= sum;
            std::iota(order.begin(), order.begin() + candidates, 0);
            std::stable_sort(order.begin(), order.begin() + candidates,
                             [&](int32_t x, int32_t y) { return score[x] > score[y]; });
            float cumulative = 0.0f;
            for (int64_t e = 0; e < candidates; ++e) {
                keep[order[e]] = 1;
                cumulative += score[order[e]];
                if (p.tau < 1.0f && cumulative >= p.tau) break;
            }
        }
        keep[sink_block] = 1;
        // A permuted full segment may hold keys the query sees in any of its blocks; in
        // unpermuted keys, blocks past the diagonal hold only later keys.
        const int64_t own_last = p.permute_keys && (si + 1) * seg <= S ? (si + 1) * seg / blk - 1 : i;
        for (int64_t j = si * seg / blk; j <= own_last; ++j) keep[j] = 1;
        int32_t count = 0;
        for (int64_t j = 0; j < nb; ++j)
            if (keep[j]) idx[i * nb + count++] = static_cast<int32_t>(j);
        num[i] = count;
    }
}

}  // namespace

void pbs_plan(const PbsProblem& p) {
    if (p.block < 1 || p.segment < p.block || p.segment % p.block != 0 ||
        p.num_blocks != (p.seqlen + p.block - 1) / p.block || p.heads_kv < 1 || p.heads_q % p.heads_kv != 0)
        throw_invalid("pbs block " + std::to_string(p.block) + " / segment " + std::to_string(p.segment) +
                      " do not fit the sequence length " + std::to_string(p.seqlen));
    const int64_t heads = p.batch * p.heads_q;
    dispatch_dtype(p.dtype, [&](auto tag) {
        using T = decltype(tag);
        parallel_for(heads, worker_count(0, heads),
                     [&](int64_t bh, int32_t) { plan_head<T>(p, bh / p.heads_q, bh % p.heads_q); });
    });
}

}  // namespace cpu
}  // namespace sa
