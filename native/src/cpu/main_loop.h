// The CPU forward main loop, written once: for each query tile, walk the key tiles that the
// Schedule lists; on each tile S = QK^T, mask where the tile may be partial, online softmax,
// O += PV. Schedules (dense, neighborhood, block-sparse) say which tiles, which are partial
// and where rows live (permutations, varlen offsets).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
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

// Per-thread scratch, allocated once per call and worker. Scores live as [key][query] so the
// softmax runs four queries per vector and the key tile is read row by row, in place.
struct TileScratch {
    static constexpr int64_t kLd = kMaxTileRows;  // leading dim of the [.][query] arrays
    int64_t d_pad = 0;
    std::vector<float> qt;       // [D][query]   Q tile transposed, scaled by scale * log2(e)
    std::vector<float> k, v;     // [key][d_pad] converted K/V rows when not read in place
    std::vector<float> zero;     // [d_pad]      stands in for padding key rows
    std::vector<float> st;       // [key][query] scores, then probabilities
    std::vector<float> o;        // [query][d_pad]
    std::vector<float> m, l, alpha;  // per query: running max (log2 units), sum, rescale
    std::vector<float> row_tmp;
    std::vector<uint8_t> mask;   // [key][query]
    std::vector<int64_t> key_pos;
    std::vector<const float*> k_rows, v_rows;

    void allocate(int64_t d) {
        d_pad = round_up(d, kGemmCols);
        qt.assign(d * kLd, 0.0f);
        k.assign(kMaxTileKeys * d_pad, 0.0f);
        v.assign(kMaxTileKeys * d_pad, 0.0f);
        zero.assign(d_pad, 0.0f);
        st.assign(kMaxTileKeys * kLd, 0.0f);
        o.assign(kMaxTileRows * d_pad, 0.0f);
        m.assign(kMaxTileRows, 0.0f);
        l.assign(kMaxTileRows, 0.0f);
        alpha.assign(kMaxTileRows, 0.0f);
        row_tmp.assign(d_pad, 0.0f);
        mask.assign(kMaxTileKeys * kLd, 0);
        key_pos.assign(kMaxTileKeys, 0);
        k_rows.assign(kMaxTileKeys, nullptr);
        v_rows.assign(kMaxTileKeys, nullptr);
    }
};

template <class T>
inline const T* row_ptr(const void* base, const RowStrides& st, int64_t b, int64_t row, int64_t h) {
    return static_cast<const T*>(base) + b * st.batch + row * st.seq + h * st.head;
}

// One online-softmax step over n keys of scores (log2 units) in w.st, four queries at a time:
// leaves probabilities in w.st and the accumulator rescale factors in w.alpha.
inline void online_softmax_step(TileScratch& w, int64_t queries_pad, int32_t n) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    constexpr int64_t ld = TileScratch::kLd;
    for (int64_t r = 0; r < queries_pad; r += 4) {
        float* col = w.st.data() + r;
        Float4 mx = splat4(neg_inf);
        for (int32_t j = 0; j < n; ++j) mx = max4(mx, load4(col + j * ld));
        const Float4 m_old = load4(w.m.data() + r);
        const Float4 m_new = max4(m_old, mx);
        const Float4 m_use = finite_or_zero4(m_new, neg_inf);  // rows with nothing allowed yet
        Float4 sum = splat4(0.0f);
        for (int32_t j = 0; j < n; ++j) {
            const Float4 p = exp2_nonpositive4(load4(col + j * ld) - m_use);
            store4(col + j * ld, p);
            sum += p;
        }
        const Float4 alpha = exp2_nonpositive4(m_old - m_use);
        store4(w.l.data() + r, load4(w.l.data() + r) * alpha + sum);
        store4(w.m.data() + r, m_new);
        store4(w.alpha.data() + r, alpha);
    }
}

template <class T, class Schedule>
void process_query_tile(const AttentionProblem& p, const Schedule& sched,
                        typename Schedule::Tile& qt, TileScratch& w) {
    constexpr int64_t ld = TileScratch::kLd;
    const int64_t D = p.head_dim;
    const int64_t dp = w.d_pad;
    const int32_t rows = qt.rows;
    const int64_t rows_pad = round_up(rows, kGemmCols);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const float q_factor = p.scale * 1.4426950408889634f;  // scores in log2 units
    // fp32 K/V rows with a head dim that fills whole register blocks are read in place.
    const bool in_place = std::is_same<T, float>::value && D % kGemmCols == 0;

    for (int32_t r = 0; r < rows; ++r) {
        load_row(row_ptr<T>(p.q, p.q_strides, qt.b, qt.row[r], qt.h), w.row_tmp.data(), D, q_factor);
        for (int64_t d = 0; d < D; ++d) w.qt[d * ld + r] = w.row_tmp[d];
    }
    for (int64_t d = 0; d < D; ++d)
        for (int64_t r = rows; r < rows_pad; ++r) w.qt[d * ld + r] = 0.0f;
    std::fill(w.o.begin(), w.o.begin() + rows_pad * dp, 0.0f);
    std::fill(w.m.begin(), w.m.begin() + rows_pad, neg_inf);
    std::fill(w.l.begin(), w.l.begin() + rows_pad, 0.0f);

    sched.for_each_key_tile(qt, [&](const KeyTile& kt) {
        const int32_t n = kt.count;
        if (n <= 0) return;
        const int64_t n_pad = round_up(n, kGemmRows);
        for (int32_t j = 0; j < n; ++j) w.key_pos[j] = sched.key_position(qt, kt.start + j);
        bool masked = false;
        if (kt.maybe_partial) {
            const int64_t allowed = sched.fill_mask(qt, w.key_pos.data(), n, w.mask.data(), ld);
            if (allowed == 0) return;
            masked = allowed != int64_t(rows) * n;
        }
        for (int32_t j = 0; j < n; ++j) {
            const int64_t krow = qt.key_row_base + w.key_pos[j];
            const T* ksrc = row_ptr<T>(p.k, p.k_strides, qt.b, krow, qt.hk);
            const T* vsrc = row_ptr<T>(p.v, p.v_strides, qt.b, krow, qt.hk);
            if (in_place) {
                w.k_rows[j] = reinterpret_cast<const float*>(ksrc);
                w.v_rows[j] = reinterpret_cast<const float*>(vsrc);
            } else {
                float* kd = w.k.data() + j * dp;
                float* vd = w.v.data() + j * dp;
                load_row(ksrc, kd, D, 1.0f);
                load_row(vsrc, vd, D, 1.0f);
                for (int64_t d = D; d < dp; ++d) kd[d] = vd[d] = 0.0f;
                w.k_rows[j] = kd;
                w.v_rows[j] = vd;
            }
        }
        for (int64_t j = n; j < n_pad; ++j) w.k_rows[j] = w.zero.data();

        tile_gemm<false>(w.st.data(), ld, RowPointerA{w.k_rows.data()}, StridedB{w.qt.data(), ld},
                         n_pad, rows_pad, D);
        if (masked) {
            for (int32_t j = 0; j < n; ++j) {
                float* srow = w.st.data() + j * ld;
                const uint8_t* mrow = w.mask.data() + j * ld;
                for (int32_t r = 0; r < rows; ++r) srow[r] = mrow[r] ? srow[r] : neg_inf;
            }
        }
        online_softmax_step(w, rows_pad, n);
        for (int64_t r = 0; r < rows_pad; ++r) {
            float* o = w.o.data() + r * dp;
            const Float4 a4 = splat4(w.alpha[r]);
            for (int64_t d = 0; d < dp; d += 4) store4(o + d, load4(o + d) * a4);
        }
        tile_gemm<true>(w.o.data(), dp, TransposedA{w.st.data(), ld}, RowPointerB{w.v_rows.data()},
                        round_up(rows, kGemmRows), dp, n);
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
