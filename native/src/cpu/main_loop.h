// The CPU forward main loop, written once: for each query tile, walk the key tiles that the
// Schedule lists; on each tile S = QK^T, mask where the tile may be partial, online softmax,
// O += PV. Schedules (dense, neighborhood, block-sparse) say which tiles, which are partial
// and where rows live (permutations, varlen offsets).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>
#include "cpu_common.h"
#include "simd.h"
#include "tile_gemm.h"

namespace sa {
namespace cpu {

constexpr int kMaxTileRows = 128;
constexpr int kMaxTileKeys = 128;

// What every schedule fills per query tile.
struct QueryTileBase {
    int64_t b = 0, h = 0, hk = 0;
    int32_t rows = 0;              // valid rows of the tile
    int64_t key_row_base = 0;      // varlen offset of the sequence in K/V
    int64_t row[kMaxTileRows];     // seq-axis row of Q, out and LSE
    int64_t pos[kMaxTileRows];     // position within the sequence, for masks
};

// A run of consecutive key positions (in schedule order, i.e. permuted for block-sparse).
struct KeyTile {
    int64_t start;
    int32_t count;
    bool maybe_partial;  // the per-element mask must be evaluated
};

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Per-thread scratch, allocated once per call and worker.
struct TileScratch {
    int64_t d_pad = 0;
    std::vector<float> q;      // [rows][D]       scaled by scale * log2(e)
    std::vector<float> kt;     // [D][keys]       key tile transposed
    std::vector<float> v;      // [keys][d_pad]
    std::vector<float> s;      // [rows][keys]    scores, then probabilities
    std::vector<float> o;      // [rows][d_pad]
    std::vector<float> m, l;   // running max (log2 units) and sum per row
    std::vector<float> row_tmp;
    std::vector<uint8_t> mask; // [rows][keys]
    std::vector<int64_t> key_pos;

    void allocate(int64_t d) {
        d_pad = round_up(d, kGemmCols);
        q.assign(kMaxTileRows * d, 0.0f);
        kt.assign(d * kMaxTileKeys, 0.0f);
        v.assign(kMaxTileKeys * d_pad, 0.0f);
        s.assign(kMaxTileRows * kMaxTileKeys, 0.0f);
        o.assign(kMaxTileRows * d_pad, 0.0f);
        m.assign(kMaxTileRows, 0.0f);
        l.assign(kMaxTileRows, 0.0f);
        row_tmp.assign(d_pad, 0.0f);
        mask.assign(kMaxTileRows * kMaxTileKeys, 0);
        key_pos.assign(kMaxTileKeys, 0);
    }
};

template <class T>
inline const T* row_ptr(const void* base, const RowStrides& st, int64_t b, int64_t row, int64_t h) {
    return static_cast<const T*>(base) + b * st.batch + row * st.seq + h * st.head;
}

// One online-softmax step over a tile whose scores (log2 units) sit in w.s; rows past
// `rows` are padding. Leaves probabilities in w.s and rescales the accumulator.
inline void online_softmax_step(TileScratch& w, int32_t rows, int64_t keys_pad) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (int32_t r = 0; r < rows; ++r) {
        float* s = w.s.data() + r * kMaxTileKeys;
        Float4 mx4 = splat4(neg_inf);
        for (int64_t j = 0; j < keys_pad; j += 4) mx4 = max4(mx4, load4(s + j));
        float mx = std::max(std::max(mx4[0], mx4[1]), std::max(mx4[2], mx4[3]));
        const float m_old = w.m[r];
        const float m_new = std::max(m_old, mx);
        if (m_new == neg_inf) {  // nothing allowed yet: contributes nothing
            for (int64_t j = 0; j < keys_pad; ++j) s[j] = 0.0f;
            continue;
        }
        const Float4 m4 = splat4(m_new);
        Float4 sum4 = splat4(0.0f);
        for (int64_t j = 0; j < keys_pad; j += 4) {
            const Float4 p = exp2_nonpositive4(load4(s + j) - m4);
            store4(s + j, p);
            sum4 += p;
        }
        const float sum = (sum4[0] + sum4[1]) + (sum4[2] + sum4[3]);
        const float alpha = exp2_nonpositive(m_old - m_new);
        w.l[r] = w.l[r] * alpha + sum;
        w.m[r] = m_new;
        if (alpha != 1.0f) {
            float* o = w.o.data() + r * w.d_pad;
            const Float4 a4 = splat4(alpha);
            for (int64_t d = 0; d < w.d_pad; d += 4) store4(o + d, load4(o + d) * a4);
        }
    }
}

template <class T, class Schedule>
void process_query_tile(const AttentionProblem& p, const Schedule& sched,
                        typename Schedule::Tile& qt, TileScratch& w) {
    const int64_t D = p.head_dim;
    const int64_t dp = w.d_pad;
    const int32_t rows = qt.rows;
    const int64_t rows_pad = round_up(rows, kGemmRows);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const float q_factor = p.scale * 1.4426950408889634f;  // scores in log2 units

    for (int32_t r = 0; r < rows; ++r)
        load_row(row_ptr<T>(p.q, p.q_strides, qt.b, qt.row[r], qt.h), w.q.data() + r * D, D, q_factor);
    std::fill(w.q.begin() + rows * D, w.q.begin() + rows_pad * D, 0.0f);
    std::fill(w.o.begin(), w.o.begin() + rows_pad * dp, 0.0f);
    std::fill(w.m.begin(), w.m.begin() + rows, neg_inf);
    std::fill(w.l.begin(), w.l.begin() + rows, 0.0f);

    sched.for_each_key_tile(qt, [&](const KeyTile& kt) {
        const int32_t n = kt.count;
        if (n <= 0) return;
        const int64_t n_pad = round_up(n, kGemmCols);
        for (int32_t j = 0; j < n; ++j) w.key_pos[j] = sched.key_position(qt, kt.start + j);
        bool masked = false;
        if (kt.maybe_partial) {
            const int64_t allowed = sched.fill_mask(qt, w.key_pos.data(), n, w.mask.data(), kMaxTileKeys);
            if (allowed == 0) return;
            masked = allowed != int64_t(rows) * n;
        }
        // Key tile transposed to [D][keys] and value tile [keys][d_pad], both fp32.
        for (int32_t j = 0; j < n; ++j) {
            const int64_t krow = qt.key_row_base + w.key_pos[j];
            load_row(row_ptr<T>(p.k, p.k_strides, qt.b, krow, qt.hk), w.row_tmp.data(), D, 1.0f);
            for (int64_t d = 0; d < D; ++d) w.kt[d * kMaxTileKeys + j] = w.row_tmp[d];
            float* vrow = w.v.data() + j * dp;
            load_row(row_ptr<T>(p.v, p.v_strides, qt.b, krow, qt.hk), vrow, D, 1.0f);
            for (int64_t d = D; d < dp; ++d) vrow[d] = 0.0f;
        }
        for (int64_t d = 0; d < D; ++d)
            for (int64_t j = n; j < n_pad; ++j) w.kt[d * kMaxTileKeys + j] = 0.0f;

        tile_gemm<false>(w.s.data(), kMaxTileKeys, w.q.data(), D, w.kt.data(), kMaxTileKeys, rows_pad, n_pad, D);

        for (int32_t r = 0; r < rows; ++r) {
            float* s = w.s.data() + r * kMaxTileKeys;
            if (masked) {
                const uint8_t* mk = w.mask.data() + r * kMaxTileKeys;
                for (int32_t j = 0; j < n; ++j) s[j] = mk[j] ? s[j] : neg_inf;
            }
            for (int64_t j = n; j < n_pad; ++j) s[j] = neg_inf;
        }
        online_softmax_step(w, rows, n_pad);
        tile_gemm<true>(w.o.data(), dp, w.s.data(), kMaxTileKeys, w.v.data(), dp, rows_pad, dp, n);
    });

    const float ln2 = 0.69314718055994531f;
    for (int32_t r = 0; r < rows; ++r) {
        float* o = w.o.data() + r * dp;
        const float l = w.l[r];
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int64_t d = 0; d < D; ++d) o[d] *= inv;
        T* dst = const_cast<T*>(row_ptr<T>(p.out, p.out_strides, qt.b, qt.row[r], qt.h));
        store_row(o, dst, D);
        if (p.lse) {
            float* lse = p.lse + qt.b * p.lse_strides.batch + qt.h * p.lse_strides.head +
                         qt.row[r] * p.lse_strides.seq;
            *lse = l > 0.0f ? (w.m[r] + std::log2(l)) * ln2 : neg_inf;
        }
    }
}

// Runs the main loop over every work item of the schedule on the call's threads.
template <class Schedule>
void run_attention(const AttentionProblem& p, const Schedule& sched) {
    const int64_t items = sched.num_items();
    if (items <= 0) return;
    const int32_t workers = worker_count(p.num_threads, items);
    std::vector<TileScratch> scratch(workers);
    dispatch_dtype(p.dtype, [&](auto tag) {
        using T = decltype(tag);
        parallel_for(items, workers, [&](int64_t item, int32_t worker) {
            TileScratch& w = scratch[worker];
            if (w.d_pad == 0) w.allocate(p.head_dim);
            typename Schedule::Tile qt;
            if (sched.query_tile(item, qt)) process_query_tile<T>(p, sched, qt, w);
        });
    });
}

}  // namespace cpu
}  // namespace sa
