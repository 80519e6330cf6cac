// The tile schedules of the three forward families (dense and varlen, neighborhood,
// block-sparse): each says which key tiles a query tile visits, which may be partial, and
// where rows live. All run on the one main loop (main_loop.h); compiled per instruction set.
#pragma once
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>
#include "core/neighborhood_window.h"
#include "main_loop.h"

namespace sa {
namespace cpu {
namespace SA_CPU_ISA {

inline int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return std::max(lo, std::min(x, hi)); }

// Dense and varlen: every key tile up to the causal limit; only diagonal tiles are partial.
class DenseSchedule {
public:
    static constexpr int32_t kRows = 128;
    static constexpr int32_t kKeys = 128;
    struct Tile : QueryTileBase {
        int64_t len_k = 0;
        int64_t offset = 0;  // causal: key j allowed for query i iff j <= i + offset
    };

    explicit DenseSchedule(const AttentionProblem& p)
        : p_(p), heads_(p.heads_q), group_(p.heads_q / p.heads_kv),
          tiles_((p.seqlen_q + kRows - 1) / kRows) {}

    int64_t num_items() const { return tiles_ * p_.batch * heads_; }

    bool query_tile(int64_t item, Tile& t) const {
        // Consecutive items are query tiles of one (batch, head), so threads share its K/V in
        // cache; within a head the heavy causal tiles come first.
        const int64_t tile = tiles_ - 1 - item % tiles_;
        const int64_t bh = item / tiles_;
        t.b = bh / heads_;
        t.h = bh % heads_;
        t.hk = t.h / group_;
        int64_t q_base = 0, len_q = p_.seqlen_q, k_base = 0, len_k = p_.seqlen_k;
        if (p_.cu_seqlens_q) {
            q_base = p_.cu_seqlens_q[t.b];
            len_q = clamp64(int64_t(p_.cu_seqlens_q[t.b + 1]) - q_base, 0, p_.seqlen_q);
            k_base = p_.cu_seqlens_k[t.b];
            len_k = clamp64(int64_t(p_.cu_seqlens_k[t.b + 1]) - k_base, 0, p_.seqlen_k);
        }
        const int64_t start = tile * kRows;
        if (start >= len_q) return false;
        t.rows = static_cast<int32_t>(std::min<int64_t>(kRows, len_q - start));
        for (int32_t r = 0; r < t.rows; ++r) {
            t.pos[r] = start + r;
            t.row[r] = q_base + start + r;
        }
        t.key_row_base = k_base;
        t.len_k = len_k;
        t.offset = p_.causal_top_left ? 0 : len_k - len_q;  // top-left or bottom-right
        return true;
    }

    template <class Visit>
    void for_each_key_tile(const Tile& t, Visit&& visit) const {
        int64_t limit = t.len_k;
        if (p_.causal) limit = std::min(limit, t.pos[t.rows - 1] + t.offset + 1);
        for (int64_t ks = 0; ks < limit; ks += kKeys) {
            const int32_t count = static_cast<int32_t>(std::min<int64_t>(kKeys, limit - ks));
            const bool partial = p_.causal && ks + count - 1 > t.pos[0] + t.offset;
            visit(KeyTile{ks, count, partial});
        }
    }

    void key_positions(const Tile&, const KeyTile& kt, int64_t* out) const {
        for (int32_t j = 0; j < kt.count; ++j) out[j] = kt.start + j;
    }

    int64_t fill_mask(const Tile& t, const KeyTile& kt, const int64_t* key_pos, uint8_t* mask, int64_t ld) const {
        const int32_t n = kt.count;
        int64_t allowed = 0;
        for (int32_t j = 0; j < n; ++j) {
            for (int32_t r = 0; r < t.rows; ++r) {
                const bool ok = key_pos[j] <= t.pos[r] + t.offset;
                mask[j * ld + r] = ok;
                allowed += ok;
            }
        }
        return allowed;
    }

private:
    const AttentionProblem& p_;
    int64_t heads_, group_, tiles_;
};

// GNA over a row-major token grid. Query tiles are boxes of up to 64 tokens in group-major
// coordinates (per dim, the tokens of each dilation group side by side), so a tile's windows
// have a small bounding box; the key tiles are runs of up to 64 tokens of that box in row-major
// order, and the mask (the shared window rule, per dim) decides per element.
class NeighborhoodSchedule {
public:
    static constexpr int32_t kBoxTokens = 64;
    static constexpr int32_t kKeyTokens = 64;
    struct Tile : QueryTileBase {
        // Per dim and query (queries innermost, so the mask is built a vector at a time).
        int32_t group[3][kMaxTileRows];
        int32_t win_start[3][kMaxTileRows];
        int32_t win_end[3][kMaxTileRows];
        int32_t key_lo[3], key_hi[3];  // bounding box of the windows, group-major, inclusive
        // Per dim, for each group-major key coordinate of the box, which queries it is inside
        // the window of: [dim][coordinate - key_lo][query]; the mask is the AND over dims.
        std::vector<uint8_t> inside[3];
    };

    explicit NeighborhoodSchedule(const AttentionProblem& p)
        : p_(p), g_(p.neighborhood), heads_(p.heads_q), group_(p.heads_q / p.heads_kv) {
        int64_t volume = 1;
        for (int d = 0; d < 3; ++d) {
            len_[d] = d < g_.rank ? g_.grid[d] : 1;
            if (len_[d] < 1) len_[d] = 1;
            volume *= len_[d];
        }
        if (g_.rank < 1 || g_.rank > 3 || volume != p.seqlen_q || p.seqlen_k != p.seqlen_q)
            throw_invalid("neighborhood grid volume " + std::to_string(volume) +
                          " does not match the sequence length " + std::to_string(p.seqlen_q));
        for (int d = 2, st = 1; d >= 0; --d) {
            flat_stride_[d] = st;
            st *= len_[d];
        }
        for (int d = 0; d < 3; ++d) {
            const int32_t dil = d < g_.rank ? std::max(1, g_.dilation[d]) : 1;
            dilation_[d] = dil;
            group_offset_[d].assign(dil + 1, 0);
            for (int32_t grp = 0; grp < dil; ++grp)
                group_offset_[d][grp + 1] = group_offset_[d][grp] + dilation_group_length(len_[d], dil, grp);
            coord_of_[d].resize(len_[d]);
            for (int32_t c = 0; c < len_[d]; ++c)
                coord_of_[d][group_offset_[d][c % dil] + c / dil] = c;
        }
        // Box extents: grow the dims in turn (last first) while the box holds at most 64 tokens.
        for (bool grew = true; grew;) {
            grew = false;
            for (int d = 2; d >= 0; --d) {
                if (box_[d] < len_[d] && box_[0] * box_[1] * box_[2] * 2 <= kBoxTokens) {
                    box_[d] = std::min(box_[d] * 2, len_[d]);
                    grew = true;
                }
            }
        }
        for (int d = 0; d < 3; ++d) boxes_[d] = (len_[d] + box_[d] - 1) / box_[d];
    }

    int64_t num_items() const { return int64_t(boxes_[0]) * boxes_[1] * boxes_[2] * p_.batch * heads_; }

    bool query_tile(int64_t item, Tile& t) const {
        const int64_t bh_count = p_.batch * heads_;
        const int64_t box = item / bh_count;
        const int64_t bh = item % bh_count;
        t.b = bh / heads_;
        t.h = bh % heads_;
        t.hk = t.h / group_;
        t.key_row_base = 0;
        int32_t origin[3], ext[3];
        box_geometry(box, origin, ext);
        t.rows = ext[0] * ext[1] * ext[2];
        for (int d = 0; d < 3; ++d) {
            t.key_lo[d] = len_[d];
            t.key_hi[d] = -1;
        }
        for (int32_t r = 0; r < t.rows; ++r) {
            const int64_t x = token_in_box(origin, ext, r);
            t.pos[r] = x;
            t.row[r] = x;
            for (int d = 0; d < g_.rank; ++d) {
                const int32_t c = static_cast<int32_t>((x / flat_stride_[d]) % len_[d]);
                const int32_t dil = dilation_[d];
                const int32_t grp = c % dil;
                const KeyRange w = neighborhood_window(c / dil, dilation_group_length(len_[d], dil, grp),
                                                       g_.kernel[d], g_.stride[d], g_.causal[d] != 0);
                t.group[d][r] = grp;
                t.win_start[d][r] = w.start;
                t.win_end[d][r] = w.end;
                t.key_lo[d] = std::min(t.key_lo[d], group_offset_[d][grp] + w.start);
                t.key_hi[d] = std::max(t.key_hi[d], group_offset_[d][grp] + w.end - 1);
            }
        }
        for (int d = g_.rank; d < 3; ++d) t.key_lo[d] = t.key_hi[d] = 0;
        for (int d = 0; d < g_.rank; ++d) {
            const int32_t extent = t.key_hi[d] - t.key_lo[d] + 1;
            if (extent <= 0) return false;
            t.inside[d].assign(size_t(extent) * kMaxTileRows, 0);
            for (int32_t e = 0; e < extent; ++e) {
                const int32_t c = coord_of_[d][t.key_lo[d] + e];  // grid coordinate
                const int32_t kg = c % dilation_[d], kl = c / dilation_[d];
                uint8_t* row = t.inside[d].data() + size_t(e) * kMaxTileRows;
                for (int32_t r = 0; r < t.rows; ++r)
                    row[r] = static_cast<uint8_t>((t.group[d][r] == kg) & (t.win_start[d][r] <= kl) &
                                                  (kl < t.win_end[d][r]));
            }
        }
        return t.rows > 0;
    }

    // Key tiles are whole dim-0 slices of the bounding box where a slice fits kKeyTokens
    // (runs of kKeyTokens otherwise). Queries are dim-0 major within their box, so those that
    // may see a tile (inside the dim-0 window of one of its slices) are a run of rows: only
    // that run is computed.
    template <class Visit>
    void for_each_key_tile(const Tile& t, Visit&& visit) const {
        int64_t volume = 1;
        for (int d = 0; d < 3; ++d) {
            if (t.key_hi[d] < t.key_lo[d]) return;
            volume *= t.key_hi[d] - t.key_lo[d] + 1;
        }
        const int64_t slice = volume / (t.key_hi[0] - t.key_lo[0] + 1);
        const int64_t step = slice <= kKeyTokens ? kKeyTokens / slice * slice : kKeyTokens;
        for (int64_t s = 0; s < volume; s += step) {
            const int32_t count = static_cast<int32_t>(std::min<int64_t>(step, volume - s));
            int32_t first = t.rows, last = -1;
            for (int64_t e0 = s / slice; e0 <= (s + count - 1) / slice; ++e0) {
                const uint8_t* in = t.inside[0].data() + size_t(e0) * kMaxTileRows;
                int32_t r = 0;
                while (r < t.rows && !in[r]) ++r;
                if (r == t.rows) continue;
                first = std::min(first, r);
                r = t.rows - 1;
                while (!in[r]) --r;
                last = std::max(last, r);
            }
            if (last < first) continue;  // no query sees this tile
            KeyTile kt{s, count, true};
            kt.query_begin = first;
            kt.query_end = last + 1;
            visit(kt);
        }
    }

    // Key tiles number the tokens of the tile's bounding box in row-major order.
    void key_positions(const Tile& t, const KeyTile& kt, int64_t* out) const {
        int32_t e[3];
        box_index(t, kt.start, e);
        for (int32_t j = 0; j < kt.count; ++j, next_index(t, e)) {
            int64_t flat = 0;
            for (int d = 0; d < 3; ++d) flat += int64_t(coord_of_[d][t.key_lo[d] + e[d]]) * flat_stride_[d];
            out[j] = flat;
        }
    }

    int64_t fill_mask(const Tile& t, const KeyTile& kt, const int64_t*, uint8_t* mask, int64_t ld) const {
        const int32_t rows = t.rows;
        int64_t allowed = 0;
        int32_t e[3];
        box_index(t, kt.start, e);
        for (int32_t j = 0; j < kt.count; ++j, next_index(t, e)) {
            uint8_t* m = mask + j * ld;
            std::memcpy(m, t.inside[0].data() + size_t(e[0]) * kMaxTileRows, size_t(rows));
            for (int d = 1; d < g_.rank; ++d) {
                const uint8_t* other = t.inside[d].data() + size_t(e[d]) * kMaxTileRows;
                for (int32_t r = 0; r < rows; ++r) m[r] &= other[r];
            }
            int32_t row_allowed = 0;
            for (int32_t r = 0; r < rows; ++r) row_allowed += m[r];
            allowed += row_allowed;
        }
        return allowed;
    }

private:
    // Per-dim offsets within the tile's bounding box of its j-th token (row-major).
    static void box_index(const Tile& t, int64_t j, int32_t e[3]) {
        for (int d = 2; d >= 0; --d) {
            const int64_t ext = t.key_hi[d] - t.key_lo[d] + 1;
            e[d] = static_cast<int32_t>(j % ext);
            j /= ext;
        }
    }
    static void next_index(const Tile& t, int32_t e[3]) {
        for (int d = 2; d >= 0; --d) {
            if (++e[d] <= t.key_hi[d] - t.key_lo[d]) return;
            e[d] = 0;
        }
    }

    // Origin (group-major coordinates) and clipped extents of box number `box`.
    void box_geometry(int64_t box, int32_t origin[3], int32_t ext[3]) const {
        for (int d = 2; d >= 0; --d) {
            const int32_t bd = static_cast<int32_t>(box % boxes_[d]);
            box /= boxes_[d];
            origin[d] = bd * box_[d];
            ext[d] = std::min(box_[d], len_[d] - origin[d]);
        }
    }

    // Flat token index of the e-th token (row-major within the box).
    int64_t token_in_box(const int32_t origin[3], const int32_t ext[3], int32_t e) const {
        int64_t flat = 0;
        for (int d = 2; d >= 0; --d) {
            const int32_t gm = origin[d] + e % ext[d];
            e /= ext[d];
            flat += int64_t(coord_of_[d][gm]) * flat_stride_[d];
        }
        return flat;
    }

    const AttentionProblem& p_;
    NeighborhoodGeometry g_;
    int64_t heads_, group_;
    int32_t len_[3] = {1, 1, 1};
    int64_t flat_stride_[3] = {1, 1, 1};
    int32_t dilation_[3] = {1, 1, 1};
    int32_t box_[3] = {1, 1, 1};
    int32_t boxes_[3] = {1, 1, 1};
    std::vector<int32_t> group_offset_[3];  // first group-major index of each dilation group
    std::vector<int32_t> coord_of_[3];      // group-major index -> grid coordinate
};

// Block-sparse: per (batch, head, query block) the listed key blocks (partial and full lists);
// rows gathered through the permutations, causal masks on original positions.
class BlockSparseSchedule {
public:
    struct Tile : QueryTileBase {
        int64_t block = 0;  // query block in permuted order
    };

    explicit BlockSparseSchedule(const AttentionProblem& p)
        : p_(p), s_(p.block_sparse), heads_(p.heads_q), group_(p.heads_q / p.heads_kv) {}

    int64_t num_items() const { return int64_t(s_.num_q_blocks) * p_.batch * heads_; }

    bool query_tile(int64_t item, Tile& t) const {
        // As dense: consecutive items are query blocks of one (batch, head), so the threads
        // (and one thread's next item) find that head's K/V in cache; the last query blocks
        // (the longest causal lists) first.
        const int64_t block = s_.num_q_blocks - 1 - item % s_.num_q_blocks;
        const int64_t bh = item / s_.num_q_blocks;
        t.b = bh / heads_;
        t.h = bh % heads_;
        t.hk = t.h / group_;
        const int64_t start = block * s_.block_q;
        if (start >= p_.seqlen_q) return false;
        t.rows = static_cast<int32_t>(std::min<int64_t>(s_.block_q, p_.seqlen_q - start));
        const int32_t* qperm = s_.query_perm
            ? s_.query_perm + t.b * s_.query_perm_strides.batch + t.h * s_.query_perm_strides.head
            : nullptr;
        for (int32_t r = 0; r < t.rows; ++r) {
            const int64_t pi = start + r;
            const int64_t orig = qperm ? qperm[pi * s_.query_perm_strides.row] : pi;
            t.pos[r] = orig;
            t.row[r] = orig;
        }
        t.key_row_base = 0;
        t.block = block;
        return true;
    }

    template <class Visit>
    void for_each_key_tile(const Tile& t, Visit&& visit) const {
        visit_list(t, t.block, s_.kv_num_blocks, s_.num_strides, s_.kv_indices, s_.idx_strides,
                   s_.capacity, visit);
        if (s_.full_num_blocks && s_.full_indices)
            visit_list(t, t.block, s_.full_num_blocks, s_.full_num_strides, s_.full_indices,
                       s_.full_idx_strides, s_.full_capacity, visit);
    }

    void key_positions(const Tile& t, const KeyTile& kt, int64_t* out) const {
        const int32_t* perm = s_.key_perm
            ? s_.key_perm + t.b * s_.key_perm_strides.batch + t.h * s_.key_perm_strides.head
            : nullptr;
        for (int32_t j = 0; j < kt.count; ++j)
            out[j] = perm ? perm[(kt.start + j) * s_.key_perm_strides.row] : kt.start + j;
    }

    int64_t fill_mask(const Tile& t, const KeyTile& kt, const int64_t* key_pos, uint8_t* mask, int64_t ld) const {
        const int32_t n = kt.count;
        const int64_t offset = p_.causal_top_left ? 0 : p_.seqlen_k - p_.seqlen_q;
        int64_t allowed = 0;
        for (int32_t j = 0; j < n; ++j) {
            for (int32_t r = 0; r < t.rows; ++r) {
                const bool ok = key_pos[j] <= t.pos[r] + offset;
                mask[j * ld + r] = ok;
                allowed += ok;
            }
        }
        return allowed;
    }

private:
    template <class Visit>
    void visit_list(const Tile& t, int64_t block, const int32_t* num, const IndexStrides& ns,
                    const int32_t* idx, const IndexStrides& is, int64_t capacity, Visit& visit) const {
        const int64_t count = std::min<int64_t>(num[t.b * ns.batch + t.h * ns.head + block * ns.row], capacity);
        const int32_t* list = idx + t.b * is.batch + t.h * is.head + block * is.row;
        for (int64_t e = 0; e < count; ++e) {
            const int64_t j = list[e];
            if (j < 0 || j >= s_.num_k_blocks) continue;
            const int64_t start = j * s_.block_k;
            const int32_t n = static_cast<int32_t>(std::min<int64_t>(s_.block_k, p_.seqlen_k - start));
            visit(KeyTile{start, n, p_.causal});
        }
    }

    const AttentionProblem& p_;
    BlockSparseLists s_;
    int64_t heads_, group_;
};

// Core validation allows blocks of 64 and 128 rows only: both fit one tile.
static_assert(kMaxTileRows >= 128 && kMaxTileKeys >= 128, "a block must fit one tile");

}  // namespace SA_CPU_ISA
}  // namespace cpu
}  // namespace sa
