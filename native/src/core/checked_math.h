// Overflow-checked integer arithmetic for shape and extent logic: the GCC/Clang builtins where
// they exist, a portable equivalent elsewhere (MSVC). Each returns true when the exact result
// does not fit in T; *out is written only when it fits.
#pragma once
#include <limits>
#include <type_traits>

namespace sa {

template <typename T, typename A, typename B>
inline bool mul_overflows(A a, B b, T* out) {
#if (defined(__GNUC__) || defined(__clang__)) && !defined(SA_PORTABLE_CHECKED_MATH)
    return __builtin_mul_overflow(a, b, out);
#else
    const T x = static_cast<T>(a), y = static_cast<T>(b);
    constexpr T kMax = std::numeric_limits<T>::max(), kMin = std::numeric_limits<T>::min();
    if (x != 0 && y != 0) {
        if constexpr (std::is_signed_v<T>) {
            const bool over = x > 0 ? (y > 0 ? x > kMax / y : y < kMin / x)
                                    : (y > 0 ? x < kMin / y : y < kMax / x);
            if (over) return true;
        } else if (y > kMax / x) {
            return true;
        }
    }
    *out = x * y;
    return false;
#endif
}

template <typename T, typename A, typename B>
inline bool add_overflows(A a, B b, T* out) {
#if (defined(__GNUC__) || defined(__clang__)) && !defined(SA_PORTABLE_CHECKED_MATH)
    return __builtin_add_overflow(a, b, out);
#else
    const T x = static_cast<T>(a), y = static_cast<T>(b);
    if constexpr (std::is_signed_v<T>) {
        if ((y > 0 && x > std::numeric_limits<T>::max() - y) ||
            (y < 0 && x < std::numeric_limits<T>::min() - y))
            return true;
    } else if (x > std::numeric_limits<T>::max() - y) {
        return true;
    }
    *out = x + y;
    return false;
#endif
}

}  // namespace sa
