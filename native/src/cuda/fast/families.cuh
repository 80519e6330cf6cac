// The three attention families as compositions of a schedule, a mask and row addresses
// (schedules.cuh, masks.cuh, row_address.cuh). The main loops see only this interface:
//   Family(p, m_block, b, head)    one work tile: query tile m_block of (batch b, grid head)
//   empty()                        the tile has no query row
//   rows_from(r)                   some query row >= r may exist (false lets a warp idle)
//   q_start, k_start, h0, hk       sequence offsets (varlen), query head of row 0, kv head
//   q_offset(r), out_row(r)        where query row r is read and written
//   steps(), key_tile(j)           the key tiles, in visiting order
//   partial(tile)                  the tile needs the per-element mask
//   key_token(tile, c)             K/V sequence row of key row c (-1: absent)
//   row_mask(r), allowed(m, tile, c, positions)   the element predicate
//   kKeyPositions                  the loads store key tokens in shared memory for allowed()
//   kFetchAhead                    key tokens come from device memory: read them a step early;
//                                  tokens_clear(lo, hi) says a partial tile whose tokens lie in
//                                  [lo, hi] needs no mask
//   kRuns, query_run(), key_run(t) rows may form a RowRun (queries_are_runs(), keys_are_runs()
//                                  say when): copied with address increments
// Selectors (DenseSelect, BlockSparseSelect, NeighborhoodSelect) bind the tile sizes; the
// neighborhood family is instantiated per spatial rank so a 1-D window carries 1-D state.
#pragma once
#include <cstdint>

#include "core/neighborhood_window.h"
#include "cuda/fast/masks.cuh"
#include "cuda/fast/params.h"
#include "cuda/fast/row_address.cuh"
#include "cuda/fast/schedules.cuh"

namespace sa::cuda::fast {

template <int kBM, int kBN, bool kCausal>
struct DenseFamily {
    static constexpr bool kKeyPositions = false;
    static constexpr bool kFetchAhead = false;
    static constexpr bool kRuns = true;
    struct KeyTile {
        int key0;
    };
    struct RowMask {
        int limit;  // keys < limit are allowed
    };

    PackedRows rows;
    CausalMask<kCausal> mask;
    DenseSchedule<kBN> schedule;
    int q_start, k_start, h0, hk;

    __device__ DenseFamily(const FwdParams& p, int m_block, int b, int head) {
        const int pack = p.pack_group;
        h0 = head * pack;
        hk = h0 / p.group;
        q_start = k_start = 0;
        int seqlen_q = p.seqlen_q, seqlen_k = p.seqlen_k;
        if (p.cu_seqlens_q != nullptr) {
            q_start = p.cu_seqlens_q[b];
            seqlen_q = p.cu_seqlens_q[b + 1] - q_start;
            k_start = p.cu_seqlens_k[b];
            seqlen_k = p.cu_seqlens_k[b + 1] - k_start;
        }
        rows = PackedRows{m_block * kBM, seqlen_q * pack, pack, p.q_seq, p.q_head};
        mask = CausalMask<kCausal>{seqlen_q, seqlen_k};
        const int last_row = min(rows.first + kBM, rows.limit) - 1;
        const int key_end = empty() ? 0 : max(0, mask.key_limit(rows.query(last_row)));
        schedule = DenseSchedule<kBN>{(key_end + kBN - 1) / kBN};
    }
    __device__ bool empty() const { return rows.first >= rows.limit; }
    __device__ bool rows_from(int r) const { return rows.first + r < rows.limit; }
    __device__ int64_t q_offset(int r) const { return rows.offset(r); }
    __device__ OutRow out_row(int r) const { return rows.out_row(r); }
    __device__ int steps() const { return schedule.steps(); }
    __device__ KeyTile key_tile(int step) const { return {schedule.key0(step)}; }
    __device__ bool partial(const KeyTile& t) const {
        return mask.tile_is_partial(rows.query(rows.first), t.key0, kBN);
    }
    __device__ int key_token(const KeyTile& t, int c) const {
        return t.key0 + c < mask.seqlen_k ? t.key0 + c : -1;
    }
    __device__ RowMask row_mask(int r) const { return {mask.key_limit(rows.query(rows.first + r))}; }
    __device__ bool allowed(const RowMask& m, const KeyTile& t, int c, const int*) const {
        return t.key0 + c < m.limit;
    }
    __device__ bool queries_are_runs() const { return rows.pack == 1; }
    __device__ RowRun query_run() const { return {rows.first, 1, rows.limit - rows.first}; }
    __device__ bool keys_are_runs() const { return true; }
    __device__ RowRun key_run(const KeyTile& t) const { return {t.key0, 1, mask.seqlen_k - t.key0}; }
};

template <int kBM, int kBN>
struct BlockSparseFamily {
    static constexpr bool kKeyPositions = true;
    static constexpr bool kFetchAhead = true;
    static constexpr bool kRuns = true;
    struct KeyTile {
        int key0;  // first key position (permuted order) of the tile; -1: an invalid list entry
    };
    struct RowMask {
        int last;  // last allowed original key position
    };

    GatheredRows queries;
    const int32_t* key_perm;
    int64_t key_perm_stride;
    PositionMask mask;
    BlockListSchedule<kBN> schedule;
    int seqlen_k;
    bool gathered;  // either side permuted: tile bounds say nothing about original positions
    int64_t q_seq_stride;
    int q_start, k_start, h0, hk;

    __device__ BlockSparseFamily(const FwdParams& p, int m_block, int b, int head) {
        const BlockLists& L = p.lists;
        h0 = head;
        hk = head / p.group;
        q_start = k_start = 0;
        seqlen_k = p.seqlen_k;
        q_seq_stride = p.q_seq;
        const int m0 = m_block * kBM;
        const int qblock = m0 / L.block_q;
        queries = GatheredRows{L.query_perm != nullptr ? L.query_perm + b * L.query_perm_b + head * L.query_perm_h : nullptr,
                               L.query_perm_row, m0, p.seqlen_q, p.seqlen_q};
        key_perm = L.key_perm != nullptr ? L.key_perm + b * L.key_perm_b + head * L.key_perm_h : nullptr;
        key_perm_stride = L.key_perm_row;
        mask = PositionMask{p.causal, p.seqlen_k - p.seqlen_q};
        gathered = L.query_perm != nullptr || L.key_perm != nullptr;
        int count = 0, full_count = 0;
        if (!empty()) {
            count = min(max(L.num[b * L.num_b + head * L.num_h + qblock * L.num_row], 0), L.capacity);
            if (L.full_num != nullptr)
                full_count = min(max(L.full_num[b * L.full_num_b + head * L.full_num_h + qblock * L.full_num_row], 0),
                                 L.full_capacity);
        }
        schedule = BlockListSchedule<kBN>{
            L.idx + b * L.idx_b + head * L.idx_h + qblock * L.idx_row,
            L.full_idx != nullptr ? L.full_idx + b * L.full_idx_b + head * L.full_idx_h + qblock * L.full_idx_row : nullptr,
            count, full_count, L.block_k, L.num_k_blocks, L.block_k > kBN ? 1 : 0};
    }
    __device__ bool empty() const { return queries.first >= queries.count; }
    __device__ bool rows_from(int r) const { return queries.first + r < queries.count; }
    __device__ int64_t q_offset(int r) const {
        const int t = queries.token(r);
        return t < 0 ? -1 : int64_t(t) * q_seq_stride;
    }
    __device__ OutRow out_row(int r) const { return {queries.token(r), 0}; }
    __device__ int steps() const { return schedule.steps(); }
    __device__ KeyTile key_tile(int step) const { return {schedule.key0(step)}; }
    __device__ bool partial(const KeyTile& t) const {
        return t.key0 < 0 || t.key0 + kBN > seqlen_k ||
               (mask.causal && (gathered || t.key0 + kBN - 1 > queries.first + mask.offset));
    }
    __device__ int key_token(const KeyTile& t, int c) const {
        const int pos = t.key0 + c;
        if (t.key0 < 0 || pos >= seqlen_k) return -1;
        if (key_perm == nullptr) return pos;
        const int k = key_perm[int64_t(pos) * key_perm_stride];
        return k >= 0 && k < seqlen_k ? k : -1;
    }
    __device__ RowMask row_mask(int r) const { return {mask.last_key(queries.token(r))}; }
    __device__ bool allowed(const RowMask& m, const KeyTile&, int c, const int* positions) const {
        return PositionMask::allowed(m.last, positions[c]);
    }
    // Every key of a tile whose tokens lie in [lo, hi] is present and allowed for every query of
    // the tile: queries in order (the first is the least) and, under causal, hi visible to it.
    __device__ bool tokens_clear(int lo, int hi) const {
        return queries.index == nullptr && lo >= 0 && (!mask.causal || hi <= mask.last_key(queries.first));
    }
    __device__ bool queries_are_runs() const { return queries.index == nullptr; }
    __device__ RowRun query_run() const { return {queries.first, 1, queries.count - queries.first}; }
    __device__ bool keys_are_runs() const { return key_perm == nullptr; }
    __device__ RowRun key_run(const KeyTile& t) const { return {t.key0, 1, t.key0 < 0 ? 0 : seqlen_k - t.key0}; }
};

template <int kBM, int kBN, int kRank>
struct NeighborhoodFamily {
    static constexpr bool kKeyPositions = false;
    static constexpr bool kFetchAhead = false;
    static constexpr bool kRuns = kRank == 1;  // a 1-D group's rows are evenly strided
    struct KeyTile {
        int a[3];  // origin of the key box, local coordinates of the dilation group
    };
    using RowMask = typename WindowMask<kRank>::Row;

    const FwdParams& p;  // geometry, box shifts and strides stay in the constant bank
    DilationGroup<kRank> group;
    GridBoxRows<kRank> queries;
    NeighborhoodSchedule<kRank> schedule;
    bool empty_;
    int q_start, k_start, h0, hk;

    __device__ NeighborhoodFamily(const FwdParams& params, int m_block, int b, int head)
        : p(params), group{params.na, {0, 0, 0}, {0, 0, 0}} {
        const NeighborhoodTiles& na = p.na;
        h0 = head;
        hk = head / p.group;
        q_start = k_start = 0;
        const int per_group = na.q_tiles[0] * na.q_tiles[1] * na.q_tiles[2];
        const int gi = m_block / per_group;
        const int ti = m_block - gi * per_group;
        const int g[3] = {gi / (na.dilation[1] * na.dilation[2]), (gi / na.dilation[2]) % na.dilation[1],
                          gi % na.dilation[2]};
        const int t[3] = {ti / (na.q_tiles[1] * na.q_tiles[2]), (ti / na.q_tiles[2]) % na.q_tiles[1],
                          ti % na.q_tiles[2]};
        int q_first[3], q_last[3];
        empty_ = false;
#pragma unroll
        for (int d = 0; d < kRank; ++d) {
            group.group[d] = g[d];
            group.length[d] = dilation_group_length(na.grid[d], na.dilation[d], g[d]);
            queries.origin[d] = t[d] << na.q_shift[d];
            empty_ |= queries.origin[d] >= group.length[d];
            q_first[d] = queries.origin[d];
            q_last[d] = min(queries.origin[d] + (1 << na.q_shift[d]), group.length[d]) - 1;
        }
        if (empty_) {
            schedule.clear();
            return;
        }
        schedule.init(na, q_first, q_last, group.length);
    }
    __device__ bool empty() const { return empty_; }
    __device__ bool rows_from(int) const { return !empty_; }
    __device__ int query_token(int r) const {
        int u[3];
        queries.coords(r, p.na.q_shift, u);
        return group.token(u);
    }
    __device__ int64_t q_offset(int r) const {
        const int t = query_token(r);
        return t < 0 ? -1 : int64_t(t) * p.q_seq;
    }
    __device__ OutRow out_row(int r) const { return {query_token(r), 0}; }
    __device__ int steps() const { return schedule.steps(); }
    __device__ KeyTile key_tile(int step) const {
        KeyTile t;
        schedule.origin(p.na, step, t.a);
        return t;
    }
    __device__ bool partial(const KeyTile& t) const { return schedule.partial(p.na, t.a); }
    __device__ int key_token(const KeyTile& t, int c) const {
        int u[3];
        box_coords<kRank>(c, t.a, p.na.k_shift, u);
        return group.token(u);
    }
    __device__ RowMask row_mask(int r) const {
        int u[3];
        queries.coords(r, p.na.q_shift, u);
        return WindowMask<kRank>::row(p.na, group.length, u);
    }
    __device__ bool allowed(const RowMask& m, const KeyTile& t, int c, const int*) const {
        int u[3];
        box_coords<kRank>(c, t.a, p.na.k_shift, u);
        return WindowMask<kRank>::allowed(m, u);
    }
    __device__ bool queries_are_runs() const { return kRank == 1; }
    __device__ RowRun query_run() const {
        return {group.group[0] + p.na.dilation[0] * queries.origin[0], p.na.dilation[0], group.length[0] - queries.origin[0]};
    }
    __device__ bool keys_are_runs() const { return kRank == 1; }
    __device__ RowRun key_run(const KeyTile& t) const {
        return {group.group[0] + p.na.dilation[0] * t.a[0], p.na.dilation[0], group.length[0] - t.a[0]};
    }
};

template <bool kCausal>
struct DenseSelect {
    template <int kBM, int kBN>
    using At = DenseFamily<kBM, kBN, kCausal>;
};
struct BlockSparseSelect {
    template <int kBM, int kBN>
    using At = BlockSparseFamily<kBM, kBN>;
};
template <int kRank>
struct NeighborhoodSelect {
    template <int kBM, int kBN>
    using At = NeighborhoodFamily<kBM, kBN, kRank>;
};

}  // namespace sa::cuda::fast
