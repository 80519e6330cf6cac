#include "neighborhood_tiles.h"

#include <array>
#include <vector>

#include "neighborhood_window.h"

namespace sa {
namespace {

struct DimCount {
    double query_tiles = 0, visited = 0, full = 0;
};

DimCount count_dim(const NeighborhoodGeometry& g, int d, int32_t q_shift, int32_t k_shift) {
    DimCount c;
    const int64_t tq = int64_t(1) << q_shift, tk = int64_t(1) << k_shift;
    for (int32_t group = 0; group < g.dilation[d]; ++group) {
        const int32_t length = dilation_group_length(g.grid[d], g.dilation[d], group);
        for (int64_t first = 0; first < length; first += tq) {
            const int32_t last = int32_t(first + tq < length ? first + tq : length) - 1;
            const KeyRange a = neighborhood_window(int32_t(first), length, g.kernel[d], g.stride[d], g.causal[d] != 0);
            const KeyRange b = neighborhood_window(last, length, g.kernel[d], g.stride[d], g.causal[d] != 0);
            const int64_t begin = a.start >> k_shift, end = ((b.end - 1) >> k_shift) + 1;
            c.query_tiles += 1;
            c.visited += double(end - begin);
            // Key tiles inside [b.start, a.end): seen by every query of the box.
            const int64_t full_begin = (b.start + tk - 1) >> k_shift, full_end = a.end >> k_shift;
            if (full_end > full_begin) c.full += double(full_end - full_begin);
        }
    }
    return c;
}

int32_t ceil_log2(int64_t x) {
    int32_t s = 0;
    while ((int64_t(1) << s) < x) ++s;
    return s;
}

}  // namespace

NeighborhoodTileCount neighborhood_tile_count(const NeighborhoodGeometry& g, const NeighborhoodTileShape& s) {
    NeighborhoodTileCount n{1, 1, 1};
    for (int d = 0; d < 3; ++d) {
        const DimCount c = count_dim(g, d, s.q_shift[d], s.k_shift[d]);
        n.query_tiles *= c.query_tiles;
        n.visited_tiles *= c.visited;
        n.full_tiles *= c.full;
    }
    return n;
}

namespace {
// Every split of `total` into three shifts with shift[d] <= cap[d] (one that overfills the
// last dim when none fits).
std::vector<std::array<int32_t, 3>> splits(int32_t total, const int32_t (&cap)[3]) {
    std::vector<std::array<int32_t, 3>> out;
    for (int32_t a = 0; a <= total; ++a)
        for (int32_t b = 0; a + b <= total; ++b) {
            const int32_t c = total - a - b;
            if (a <= cap[0] && b <= cap[1] && c <= cap[2]) out.push_back({a, b, c});
        }
    if (out.empty()) {  // the grid holds fewer tokens than a tile: put the rest on the last dim
        int32_t left = total;
        std::array<int32_t, 3> s{0, 0, 0};
        for (int d = 0; d < 3; ++d) {
            s[d] = left < cap[d] ? left : cap[d];
            left -= s[d];
        }
        s[2] += left;
        out.push_back(s);
    }
    return out;
}
}  // namespace

NeighborhoodTileShape best_neighborhood_tiles(const NeighborhoodGeometry& g, int32_t log2_rows, int32_t log2_keys,
                                              double mask_cost) {
    int32_t cap[3];
    for (int d = 0; d < 3; ++d) cap[d] = ceil_log2(dilation_group_length(g.grid[d], g.dilation[d], 0));
    const auto q_options = splits(log2_rows, cap);
    const auto k_options = splits(log2_keys, cap);
    NeighborhoodTileShape best{};
    double best_cost = -1;
    for (const auto& q : q_options)
        for (const auto& k : k_options) {
            const NeighborhoodTileShape s{{q[0], q[1], q[2]}, {k[0], k[1], k[2]}};
            const NeighborhoodTileCount n = neighborhood_tile_count(g, s);
            const double partial = n.visited_tiles - n.full_tiles;
            const double cost = n.visited_tiles + mask_cost * partial;
            if (best_cost < 0 || cost < best_cost) {
                best_cost = cost;
                best = s;
            }
        }
    return best;
}

}  // namespace sa
