// The Generalized Neighborhood Attention window rule (DESIGN.md, "GNA"): the single native
// definition, used by the CPU backend, the CUDA kernels, the tile schedules and the ABI helper.
#pragma once
#include <cstdint>
#include "host_device.h"

namespace sa {

struct KeyRange {
    int32_t start;  // first local key index (inclusive)
    int32_t end;    // one past the last local key index
};

// Tokens of dilation group g along a dim of length L: ceil((L - g) / d), rounded up without
// adding first so that L near INT32_MAX cannot overflow.
SA_HOST_DEVICE int32_t dilation_group_length(int32_t length, int32_t dilation, int32_t group) {
    const int32_t tokens = length - group;
    return tokens / dilation + (tokens % dilation != 0 ? 1 : 0);
}

// Window of local key indices seen by the query with local index u in a group of
// group_length tokens (kernel k, stride s). Non-causal windows shift at borders and always
// hold exactly k keys; causal windows end at the query itself.
SA_HOST_DEVICE KeyRange neighborhood_window(int32_t u, int32_t group_length, int32_t kernel,
                                            int32_t stride, bool causal) {
    KeyRange r;
    if (causal) {
        // Compared before adding so u near INT32_MAX cannot overflow.
        const int32_t base = (u / stride) * stride;
        const int32_t leader = base > group_length - stride ? group_length - 1 : base + stride - 1;
        int32_t start = leader - kernel + 1;
        r.start = start < 0 ? 0 : start;
        r.end = u + 1;
    } else {
        const int32_t base = (u / stride) * stride;
        const int32_t leader =
            base > group_length - 1 - stride / 2 ? group_length - 1 : base + stride / 2;
        const int32_t left = kernel / 2;
        int32_t start = leader - left;
        const int32_t max_start = group_length - kernel;
        if (start > max_start) start = max_start;
        if (start < 0) start = 0;
        r.start = start;
        r.end = start + kernel;
    }
    return r;
}

// Does query coordinate xq see key coordinate xk along one dim of length L?
SA_HOST_DEVICE bool neighborhood_allows_1d(int32_t xq, int32_t xk, int32_t length, int32_t kernel,
                                           int32_t dilation, int32_t stride, bool causal) {
    const int32_t g = xq % dilation;
    if (xk % dilation != g) return false;
    const int32_t lg = dilation_group_length(length, dilation, g);
    const KeyRange r = neighborhood_window(xq / dilation, lg, kernel, stride, causal);
    const int32_t uk = xk / dilation;
    return uk >= r.start && uk < r.end;
}

}  // namespace sa
