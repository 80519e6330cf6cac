// Inputs at the edges of the integer ranges: found by fuzzing the C ABI on the CPU backend.
// Each case pins one rule: no overflow, a clear status and message, no access past a view.
#include <cstdint>
#include <limits>

#include "test_util.h"

using namespace sa_test;

namespace {
constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();
}  // namespace

// Causal window of a query near INT32_MAX: the stride leader is clamped without overflowing.
SA_TEST(robustness_causal_window_near_int32_max) {
    int32_t start = -1, end = -1;
    REQUIRE_OK(sa_neighborhood_window(kMax32 - 1, kMax32, 3, 3, 1, &start, &end));
    CHECK_EQ(start, kMax32 - 3);
    CHECK_EQ(end, kMax32);
}

// Non-causal window of a query near INT32_MAX: the centred leader is clamped without overflowing.
SA_TEST(robustness_window_near_int32_max) {
    int32_t start = -1, end = -1;
    REQUIRE_OK(sa_neighborhood_window(kMax32 - 1, kMax32, 7, 7, 0, &start, &end));
    CHECK_EQ(start, kMax32 - 7);
    CHECK_EQ(end, kMax32);
}

// A grid whose product overflows int64 is refused, not multiplied with undefined behaviour.
SA_TEST(robustness_neighborhood_grid_product_overflow) {
    HostTensor q = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 1, 4});
    HostTensor k = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 1, 4});
    HostTensor v = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 1, 4});
    HostTensor out = HostTensor::contiguous(SA_DTYPE_F32, {1, 4, 1, 4});
    sa_neighborhood_params params;
    sa_neighborhood_params_init(&params, 3);
    for (int i = 0; i < 3; ++i) params.grid[i] = kMax32;
    CHECK_ERROR(sa_neighborhood_forward(q.d(), k.d(), v.d(), out.d(), nullptr, &params, nullptr),
                SA_ERROR_INVALID_ARGUMENT, "params->grid", "overflows int64");
}
