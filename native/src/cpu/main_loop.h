// The CPU forward main loop, written once: for each query tile, walk the key tiles that the
// Schedule lists; on each tile S = QK^T, mask where the tile may be partial, online softmax,
// O += PV. Schedules (dense, neighborhood, block-sparse) say which tiles, which are partial
// and where rows live (permutations, varlen offsets). When there are fewer query tiles than
// threads can share well (decoding), each tile's key tiles are dealt round-robin to several
// work items whose partial results are merged by their log-sum-exp. Compiled once per
// instruction set (namespace SA_CPU_ISA, see simd.h).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>
#include "cpu_common.h"
#include "rows.h"
#include "simd.h"
#include "tile_gemm.h"

namespace sa {
namespace cpu {
namespace SA_CPU_ISA {

constexpr int kMaxTileRows = 128;
constexpr int kMaxTileKeys = 128;
// Work items below which query tiles are split over their key tiles, and the most shares.
constexpr int64_t kShareTarget = 64;
constexpr int64_t kMaxShares = 16;

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
    // Queries [query_begin, query_end) of the tile are the only ones that may see a key of
    // this tile (the others are left untouched); query_end < 0 means all.
    int32_t query_begin = 0;
    int32_t query_end = -1;
};

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Per-thread scratch, allocated once per call and worker. Scores live as [key][query] so the
// softmax runs kLanes queries per vector and the key tile is read row by row, in place.
struct TileScratch {
    // Leading dim of the [.][query] arrays, padded so that consecutive rows fall in different
    // cache sets.
    static constexpr int64_t kLd = kMaxTileRows + 16;
    int64_t d_pad = 0;
    std::vector<float> qt;       // [D][query]   Q tile transposed, scaled by scale * log2(e)
    std::vector<float> k, v;     // [key][d_pad] K/V rows of the key tile, packed as fp32
    std::vector<const float*> k_rows, v_rows;  // the rows the kernels read: packed or in place
    std::vector<float> st;       // [key][query] scores, then probabilities
    std::vector<float> o;        // [query][d_pad]
    std::vector<float> m, l, alpha;  // per query: running max (log2 units), sum, rescale
    std::vector<float> tile_max;     // per query: max score of the current key tile
    std::vector<float> q_rows;   // [2][d_pad]   the query rows (scaled) of a one- or two-row tile
    std::vector<uint8_t> mask;   // [key][query]
    std::vector<int64_t> key_pos, next_key_pos;  // positions of the current and next key tile
    std::vector<KeyTile> tiles;                   // key tiles of the current query tile

    void allocate(int64_t d) {
        d_pad = round_up(d, kLanes);
        qt.assign(d * kLd, 0.0f);
        k.assign(kMaxTileKeys * d_pad, 0.0f);
        v.assign(kMaxTileKeys * d_pad, 0.0f);
        st.assign(kMaxTileKeys * kLd, 0.0f);
        o.assign(kMaxTileRows * d_pad, 0.0f);
        m.assign(kMaxTileRows, 0.0f);
        l.assign(kMaxTileRows, 0.0f);
        alpha.assign(kMaxTileRows, 0.0f);
        tile_max.assign(kMaxTileRows, 0.0f);
        q_rows.assign(2 * d_pad, 0.0f);
        k_rows.assign(kMaxTileKeys, nullptr);
        v_rows.assign(kMaxTileKeys, nullptr);
        mask.assign(kMaxTileKeys * kLd, 0);
        key_pos.assign(kMaxTileKeys, 0);
        next_key_pos.assign(kMaxTileKeys, 0);
        tiles.reserve(256);
    }
};

// Unnormalized partial result of one share of a query tile's key tiles.
struct PartialTile {
    float* o;  // [rows, padded to kLanes][d_pad]
    float* m;  // [rows] running max, log2 units
    float* l;  // [rows] sum of exponentials relative to m
};

inline void prefetch_line(const void* p) {
#if defined(__GNUC__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

template <class T>
inline const T* row_ptr(const void* base, const RowStrides& st, int64_t b, int64_t row, int64_t h) {
    return static_cast<const T*>(base) + b * st.batch + row * st.seq + h * st.head;
}

// One online-softmax step over n keys of scores (log2 units) in w.st, kLanes queries at a
// time: leaves probabilities in w.st and the accumulator rescale factors in w.alpha.
// With tile_max, the maxima over the tile's keys are already known (taken in the score GEMM).
// Runs on the queries [first, first + queries_pad), first a multiple of kLanes.
inline void online_softmax_step(TileScratch& w, int64_t first, int64_t queries_pad, int32_t n,
                                const float* tile_max) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    constexpr int64_t ld = TileScratch::kLd;
    for (int64_t r = first; r < first + queries_pad; r += kLanes) {
        float* col = w.st.data() + r;
        int32_t j = 0;
        VecF mx;
        if (tile_max) {
            mx = load(tile_max + r);
        } else {
            // Four independent maxima and sums: one chain would wait on each instruction's latency.
            VecF mx0 = splat(neg_inf), mx1 = mx0, mx2 = mx0, mx3 = mx0;
            for (; j + 4 <= n; j += 4) {
                mx0 = vmax(mx0, load(col + j * ld));
                mx1 = vmax(mx1, load(col + (j + 1) * ld));
                mx2 = vmax(mx2, load(col + (j + 2) * ld));
                mx3 = vmax(mx3, load(col + (j + 3) * ld));
            }
            for (; j < n; ++j) mx0 = vmax(mx0, load(col + j * ld));
            mx = vmax(vmax(mx0, mx1), vmax(mx2, mx3));
        }
        const VecF m_old = load(w.m.data() + r);
        const VecF m_new = vmax(m_old, mx);
        const VecF m_use = finite_or_zero(m_new, neg_inf);  // rows with nothing allowed yet
        VecF sum0 = splat(0.0f), sum1 = sum0, sum2 = sum0, sum3 = sum0;
        for (j = 0; j + 4 <= n; j += 4) {
            const VecF p0 = exp2_nonpositive(load(col + j * ld) - m_use);
            const VecF p1 = exp2_nonpositive(load(col + (j + 1) * ld) - m_use);
            const VecF p2 = exp2_nonpositive(load(col + (j + 2) * ld) - m_use);
            const VecF p3 = exp2_nonpositive(load(col + (j + 3) * ld) - m_use);
            store(col + j * ld, p0);
            store(col + (j + 1) * ld, p1);
            store(col + (j + 2) * ld, p2);
            store(col + (j + 3) * ld, p3);
            sum0 = sum0 + p0;
            sum1 = sum1 + p1;
            sum2 = sum2 + p2;
            sum3 = sum3 + p3;
        }
        for (; j < n; ++j) {
            const VecF p0 = exp2_nonpositive(load(col + j * ld) - m_use);
            store(col + j * ld, p0);
            sum0 = sum0 + p0;
        }
        sum0 = (sum0 + sum1) + (sum2 + sum3);
        const VecF alpha = exp2_nonpositive(m_old - m_use);
        store(w.l.data() + r, fmadd(load(w.l.data() + r), alpha, sum0));
        store(w.m.data() + r, m_new);
        store(w.alpha.data() + r, alpha);
    }
}

// Writes normalized rows of o (running max m, sum l per row) to the output and the LSE.
template <class T>
inline void store_query_rows(const AttentionProblem& p, const QueryTileBase& qt, float* o_rows,
                             int64_t ld_o, const float* m, const float* l) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const float ln2 = 0.69314718055994531f;
    for (int32_t r = 0; r < qt.rows; ++r) {
        float* o = o_rows + r * ld_o;
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        for (int64_t d = 0; d < p.head_dim; ++d) o[d] *= inv;
        T* dst = const_cast<T*>(row_ptr<T>(p.out, p.out_strides, qt.b, qt.row[r], qt.h));
        narrow_row(o, dst, p.head_dim);
        if (p.lse) {
            float* lse = p.lse + qt.b * p.lse_strides.batch + qt.h * p.lse_strides.head +
                         qt.row[r] * p.lse_strides.seq;
            *lse = l[r] > 0.0f ? (m[r] + std::log2(l[r])) * ln2 : neg_inf;
        }
    }
}

// Runs share number `share` of `shares` contiguous runs of one query tile's key tiles. With part null
// the result is final and stored; otherwise the unnormalized o, m, l go to part.
template <class T, class Schedule>
void process_query_tile(const AttentionProblem& p, const Schedule& sched,
                        typename Schedule::Tile& qt, TileScratch& w, int32_t share = 0,
                        int32_t shares = 1, const PartialTile* part = nullptr) {
    constexpr int64_t ld = TileScratch::kLd;
    const int64_t D = p.head_dim;
    const int64_t dp = w.d_pad;
    const int32_t rows = qt.rows;
    const int64_t rows_pad = round_up(rows, kLanes);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const float q_factor = p.scale * 1.4426950408889634f;  // scores in log2 units
    float* o_acc = part ? part->o : w.o.data();
    float* m_run = part ? part->m : w.m.data();
    float* l_run = part ? part->l : w.l.data();

    // One or two queries (decode) take dot products along the head dim; more take the GEMM.
    const bool few_queries = rows <= 2;
    // Their fp32 K/V rows are read in place when they fill whole vectors (the GEMM's packed
    // copies pay off only when a tile is reused by many queries).
    // So are the rows of every tile when fp32 K and V rows lie one after another ([B, H, S, D]
    // memory): the GEMMs then read them through row pointers, with no copy. Rows a head stride
    // apart ([B, S, H, D]) fall into a few cache sets and are packed.
    const bool fp32_rows = std::is_same<T, float>::value && D == dp;
    const bool contiguous_rows = fp32_rows && p.k_strides.seq == D && p.v_strides.seq == D;
    const bool rows_in_place = fp32_rows && (few_queries || contiguous_rows);
    for (int32_t r = 0; r < rows; ++r) {
        float* q_row = w.q_rows.data() + (few_queries ? r : 0) * dp;
        widen_row(row_ptr<T>(p.q, p.q_strides, qt.b, qt.row[r], qt.h), q_row, D, q_factor);
        for (int64_t d = D; d < dp; ++d) q_row[d] = 0.0f;
        for (int64_t d = 0; d < D; ++d) w.qt[d * ld + r] = q_row[d];
    }
    for (int64_t d = 0; d < D; ++d)
        for (int64_t r = rows; r < rows_pad; ++r) w.qt[d * ld + r] = 0.0f;
    std::fill(o_acc, o_acc + rows_pad * dp, 0.0f);
    std::fill(w.m.begin(), w.m.begin() + rows_pad, neg_inf);
    std::fill(w.l.begin(), w.l.begin() + rows_pad, 0.0f);

    // The visited key tiles are listed first so that the next tile's K/V rows can be
    // prefetched while the current one is computed.
    w.tiles.clear();
    sched.for_each_key_tile(qt, [&](const KeyTile& kt) {
        if (kt.count > 0) w.tiles.push_back(kt);
    });
    // A share takes a contiguous run of the key tiles, so its rows stream in order.
    const size_t first_tile = w.tiles.size() * share / shares;
    const size_t end_tile = w.tiles.size() * (share + 1) / shares;
    int64_t* pos = w.key_pos.data();
    int64_t* next_pos = w.next_key_pos.data();
    auto positions = [&](const KeyTile& kt, int64_t* out) {
        sched.key_positions(qt, kt, out);
    };
    const int64_t row_bytes = D * static_cast<int64_t>(sizeof(T));
    auto prefetch_row = [&](const void* base, const RowStrides& st, int64_t at) {
        const char* row = reinterpret_cast<const char*>(row_ptr<T>(base, st, qt.b, qt.key_row_base + at, qt.hk));
        for (int64_t off = 0; off < row_bytes; off += 64) prefetch_line(row + off);
        prefetch_line(row + row_bytes - 1);
    };
    if (first_tile < end_tile) positions(w.tiles[first_tile], pos);
    for (size_t t = first_tile; t < end_tile; std::swap(pos, next_pos), ++t) {
        const KeyTile& kt = w.tiles[t];
        const int32_t n = kt.count;
        const KeyTile* next = t + 1 < end_tile ? &w.tiles[t + 1] : nullptr;
        if (next) positions(*next, next_pos);
        bool masked = false;
        if (kt.maybe_partial) {
            const int64_t allowed = sched.fill_mask(qt, kt, pos, w.mask.data(), ld);
            if (allowed == 0) continue;
            masked = allowed != int64_t(rows) * n;
        }
        // K and V rows are packed contiguously (tensor rows a head stride apart would share a
        // few cache sets) unless they are read in place (rows_in_place); the next tile's rows
        // are prefetched along the way.
        const int32_t n_next = next ? next->count : 0;
        for (int32_t j = 0; j < n; ++j) {
            const int64_t krow = qt.key_row_base + pos[j];
            const T* ksrc = row_ptr<T>(p.k, p.k_strides, qt.b, krow, qt.hk);
            const T* vsrc = row_ptr<T>(p.v, p.v_strides, qt.b, krow, qt.hk);
            if (j < n_next) {
                prefetch_row(p.k, p.k_strides, next_pos[j]);
                prefetch_row(p.v, p.v_strides, next_pos[j]);
            }
            if (rows_in_place) {
                w.k_rows[j] = reinterpret_cast<const float*>(ksrc);
                w.v_rows[j] = reinterpret_cast<const float*>(vsrc);
                continue;
            }
            float* kd = w.k.data() + j * dp;
            float* vd = w.v.data() + j * dp;
            widen_row(ksrc, kd, D, 1.0f);
            widen_row(vsrc, vd, D, 1.0f);
            for (int64_t d = D; d < dp; ++d) kd[d] = vd[d] = 0.0f;
            w.k_rows[j] = kd;
            w.v_rows[j] = vd;
        }
        for (int32_t j = n; j < n_next; ++j) {
            prefetch_row(p.k, p.k_strides, next_pos[j]);
            prefetch_row(p.v, p.v_strides, next_pos[j]);
        }

        if (few_queries) {  // scores, softmax and P V fused, a chunk of keys at a time
            const uint8_t* mask = masked ? w.mask.data() : nullptr;
            if (rows == 1)
                few_query_tile<1>(o_acc, w.m.data(), w.l.data(), w.q_rows.data(), w.k_rows.data(),
                                  w.v_rows.data(), n, dp, mask, ld);
            else
                few_query_tile<2>(o_acc, w.m.data(), w.l.data(), w.q_rows.data(), w.k_rows.data(),
                                  w.v_rows.data(), n, dp, mask, ld);
            continue;
        }
        // The queries that may see this tile, from a whole vector on: q0 (a multiple of kLanes)
        // up to q0 + q_pad; q_rows of them are real rows.
        const int32_t q_begin = std::max<int32_t>(0, kt.query_begin);
        const int32_t q_end = kt.query_end < 0 ? rows : std::min<int32_t>(rows, kt.query_end);
        if (q_begin >= q_end) continue;
        const int64_t q0 = q_begin / kLanes * kLanes;
        const int64_t q_pad = round_up(q_end - q0, kLanes);
        const int32_t q_rows = static_cast<int32_t>(std::min<int64_t>(rows, q0 + q_pad) - q0);
        // Unmasked tiles take the softmax's maxima in the GEMM (masked scores could raise
        // them far above the allowed ones).
        if (!masked) std::fill(w.tile_max.begin() + q0, w.tile_max.begin() + q0 + q_pad, neg_inf);
        float* tile_max = masked ? nullptr : w.tile_max.data() + q0;
        if (rows_in_place)
            tile_gemm<false>(w.st.data() + q0, ld, nullptr, RowPointerA{w.k_rows.data()},
                             StridedB{w.qt.data() + q0, ld}, n, q_pad, D, tile_max);
        else
            tile_gemm<false>(w.st.data() + q0, ld, nullptr, StridedA{w.k.data(), dp},
                             StridedB{w.qt.data() + q0, ld}, n, q_pad, D, tile_max);
        if (masked) {
            for (int32_t j = 0; j < n; ++j) {
                float* srow = w.st.data() + j * ld;
                const uint8_t* mrow = w.mask.data() + j * ld;
                for (int64_t r = q0; r < q0 + q_rows; ++r) srow[r] = mrow[r] ? srow[r] : neg_inf;
            }
        }
        online_softmax_step(w, q0, q_pad, n, masked ? nullptr : w.tile_max.data());
        // O = O * alpha + P V, the rescale fused into the accumulator load.
        if (rows_in_place)
            tile_gemm<true>(o_acc + q0 * dp, dp, w.alpha.data() + q0, TransposedA{w.st.data() + q0, ld},
                            RowPointerB{w.v_rows.data()}, q_rows, dp, n);
        else
            tile_gemm<true>(o_acc + q0 * dp, dp, w.alpha.data() + q0, TransposedA{w.st.data() + q0, ld},
                            StridedB{w.v.data(), dp}, q_rows, dp, n);
    }

    if (part) {
        std::copy(w.m.begin(), w.m.begin() + rows, m_run);
        std::copy(w.l.begin(), w.l.begin() + rows, l_run);
        return;
    }
    store_query_rows<T>(p, qt, o_acc, dp, w.m.data(), w.l.data());
}

// Merges the shares of one query tile (log-sum-exp weights) and stores the result.
template <class T>
void merge_shares(const AttentionProblem& p, const QueryTileBase& qt, const PartialTile* parts,
                  int32_t shares, int64_t dp, TileScratch& w) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (int32_t r = 0; r < qt.rows; ++r) {
        float mx = neg_inf;
        for (int32_t s = 0; s < shares; ++s) mx = std::max(mx, parts[s].m[r]);
        const float m_use = mx == neg_inf ? 0.0f : mx;
        float* o = w.o.data() + r * dp;
        std::fill(o, o + dp, 0.0f);
        float l = 0.0f;
        for (int32_t s = 0; s < shares; ++s) {
            if (parts[s].l[r] <= 0.0f) continue;
            const float weight = exp2_nonpositive(parts[s].m[r] - m_use);
            l += parts[s].l[r] * weight;
            const float* src = parts[s].o + r * dp;
            const VecF wv = splat(weight);
            for (int64_t d = 0; d < dp; d += kLanes) store(o + d, fmadd(load(src + d), wv, load(o + d)));
        }
        w.m[r] = mx;
        w.l[r] = l;
    }
    store_query_rows<T>(p, qt, w.o.data(), dp, w.m.data(), w.l.data());
}

// Runs the main loop over every work item of the schedule on the call's threads.
template <class Schedule>
void run_attention(const AttentionProblem& p, const Schedule& sched) {
    const int64_t items = sched.num_items();
    if (items <= 0) return;
    // Few query tiles (decoding): each tile's key tiles are dealt to several shares. The split
    // depends on the problem only, never on the thread count, so results do not either.
    const int32_t shares = items < kShareTarget
        ? static_cast<int32_t>(std::min<int64_t>(kMaxShares, (kShareTarget + items - 1) / items))
        : 1;
    const int32_t workers = worker_count(p.num_threads, items * shares);
    std::vector<TileScratch> scratch(workers);
    dispatch_dtype(p.dtype, [&](auto tag) {
        using T = decltype(tag);
        if (shares == 1) {
            parallel_for(items, workers, [&](int64_t item, int32_t worker) {
                TileScratch& w = scratch[worker];
                if (w.d_pad == 0) w.allocate(p.head_dim);
                typename Schedule::Tile qt;
                if (sched.query_tile(item, qt)) process_query_tile<T>(p, sched, qt, w);
            });
            return;
        }
        // A query tile has at most seqlen_q rows; o holds them padded to whole vectors.
        const int64_t dp = round_up(p.head_dim, kLanes);
        const int64_t tile_rows = round_up(std::min<int64_t>(kMaxTileRows, p.seqlen_q), kLanes);
        const int64_t per_share = tile_rows * (dp + 2);
        std::vector<float> partials(items * shares * per_share);
        std::vector<PartialTile> parts(items * shares);
        for (int64_t e = 0; e < items * shares; ++e) {
            float* base = partials.data() + e * per_share;
            parts[e] = PartialTile{base, base + tile_rows * dp, base + tile_rows * (dp + 1)};
        }
        parallel_for(items * shares, workers, [&](int64_t e, int32_t worker) {
            TileScratch& w = scratch[worker];
            if (w.d_pad == 0) w.allocate(p.head_dim);
            typename Schedule::Tile qt;
            if (sched.query_tile(e / shares, qt))
                process_query_tile<T>(p, sched, qt, w, static_cast<int32_t>(e % shares), shares, &parts[e]);
        });
        parallel_for(items, workers, [&](int64_t item, int32_t worker) {
            TileScratch& w = scratch[worker];
            if (w.d_pad == 0) w.allocate(p.head_dim);
            typename Schedule::Tile qt;
            if (sched.query_tile(item, qt)) merge_shares<T>(p, qt, &parts[item * shares], shares, dp, w);
        });
    });
}

}  // namespace SA_CPU_ISA
}  // namespace cpu
}  // namespace sa
