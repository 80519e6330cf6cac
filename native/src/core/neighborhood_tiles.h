// Neighborhood attention as a tile schedule, counted on the host: for a query box and a key box
// (sides powers of two, per dim), how many key tiles the fast kernels visit and how many of
// them need no mask, summed over every query tile of every dilation group. The count
// factorizes per dim: a key tile is visited (full) in a work tile iff it is visited (full) in
// every dim. Used to choose the tile shape and by the speedup estimate.
#pragma once
#include <cstdint>

#include "problem.h"

namespace sa {

// A masked tile's extra cost over an unmasked one, relative (the box choice and the estimate).
constexpr double kNeighborhoodMaskCost = 0.3;
// The speedup estimate's other two costs, fitted on the wgmma loop on the H200 (bench/NOTES.md,
// "v8"): a work tile's own cost (Q load, pipeline fill, epilogue) in unmasked key tiles, paid by
// dense attention too; and the extra cost of a key tile whose rows are a box of a 2-D or 3-D
// grid (each row's token computed and copied through shared memory) over one whose rows are a
// run.
constexpr double kNeighborhoodWorkTileCost = 3.5;
constexpr double kNeighborhoodBoxRowCost = 0.16;

struct NeighborhoodTileShape {
    int32_t q_shift[3];  // query box side per dim = 1 << q_shift
    int32_t k_shift[3];
};

struct NeighborhoodTileCount {
    double query_tiles;    // work tiles holding at least one query
    double visited_tiles;  // (query tile, key tile) pairs computed
    double full_tiles;     // of those, tiles that need no mask
};

NeighborhoodTileCount neighborhood_tile_count(const NeighborhoodGeometry& g, const NeighborhoodTileShape& s);

// The shape with 2^log2_rows queries and 2^log2_keys keys per tile that minimizes
// visited * (1 + mask_cost * partial fraction); sides never exceed what a dim can fill.
NeighborhoodTileShape best_neighborhood_tiles(const NeighborhoodGeometry& g, int32_t log2_rows, int32_t log2_keys,
                                              double mask_cost);

}  // namespace sa
