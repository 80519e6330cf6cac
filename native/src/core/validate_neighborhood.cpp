// Generalized neighborhood attention: the configuration and the call.
#include "validate.h"

#include <cstdint>

#include "attention_checks.h"
#include "checked_math.h"
#include "errors.h"

namespace sa {
using namespace check;

NeighborhoodGeometry validate_neighborhood_params(const sa_neighborhood_params* params) {
    if (params == nullptr) fail_invalid("params: pointer is NULL");
    const int32_t rank = params->spatial_rank;
    if (rank < 1 || rank > SA_MAX_SPATIAL_DIMS)
        fail_invalid("params->spatial_rank must be 1, 2 or 3, got %d", rank);
    NeighborhoodGeometry g;
    init_geometry(g);
    g.rank = rank;
    for (int32_t i = 0; i < rank; ++i) {
        const int32_t L = params->grid[i], k = params->kernel[i], d = params->dilation[i],
                      s = params->stride[i], c = params->causal[i];
        if (L < 1) fail_invalid("params->grid[%d] must be >= 1, got %d", i, L);
        if (k < 1) fail_invalid("params->kernel[%d] must be >= 1, got %d", i, k);
        if (d < 1) fail_invalid("params->dilation[%d] must be >= 1, got %d", i, d);
        if (s < 1 || s > k)
            fail_invalid("params->stride[%d] = %d must satisfy 1 <= stride <= kernel (%d)", i, s,
                         k);
        if (static_cast<int64_t>(k) * d > L)
            fail_invalid("params->kernel[%d] * params->dilation[%d] = %lld must be <= "
                         "params->grid[%d] = %d", i, i, ll(static_cast<int64_t>(k) * d), i, L);
        if (c != 0 && c != 1) fail_invalid("params->causal[%d] must be 0 or 1, got %d", i, c);
        g.grid[i] = L;
        g.kernel[i] = k;
        g.dilation[i] = d;
        g.stride[i] = s;
        g.causal[i] = c;
    }
    return g;
}

AttentionProblem validate_neighborhood(const sa_tensor* q, const sa_tensor* k,
                                       const sa_tensor* v, const sa_tensor* out,
                                       const sa_tensor* lse,
                                       const sa_neighborhood_params* params,
                                       const sa_attention_options* options) {
    CallBuffers buffers;
    AttentionProblem p =
        validate_batched(Family::Neighborhood, q, k, v, out, lse, options, &buffers);
    require_disjoint_buffers(buffers);
    p.neighborhood = validate_neighborhood_params(params);
    int64_t tokens = 1;
    for (int32_t i = 0; i < p.neighborhood.rank; ++i)
        if (sa::mul_overflows(tokens, static_cast<int64_t>(p.neighborhood.grid[i]), &tokens))
            fail_invalid("params->grid: the product of the grid sizes overflows int64");
    if (p.seqlen_q != tokens)
        fail_invalid("q: shape[1] (S = %lld) must equal the product of params->grid (%lld)",
                     ll(p.seqlen_q), ll(tokens));
    if (p.seqlen_k != tokens)
        fail_invalid("k: shape[1] (S = %lld) must equal the product of params->grid (%lld)",
                     ll(p.seqlen_k), ll(tokens));
    if (p.causal)
        fail_invalid("options->causal must be 0 for neighborhood attention (causality is per "
                     "dimension in params->causal), got 1");
    return p;
}

}  // namespace sa
