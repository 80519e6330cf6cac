// A minimal test harness for the C ABI tests: SA_TEST(name) registers a case, CHECK* macros
// record failures and continue, REQUIRE* macros stop the case, SA_SKIP ends it as skipped.
// Each case runs as its own ctest test (`sparseattn_native_tests --run <name>`); exit code 77
// marks a skip (for example "skipped: no CUDA device").
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "sparseattn/sparseattn.h"

namespace sa_test {

struct TestCase {
    const char* name;
    void (*body)();
    const char* file;
    int line;
};

inline std::vector<TestCase>& registry() {
    static std::vector<TestCase> cases;
    return cases;
}

struct Registrar {
    Registrar(const char* name, void (*body)(), const char* file, int line) {
        registry().push_back({name, body, file, line});
    }
};

// Failures of the case now running (CHECKs continue after a failure, REQUIREs do not).
inline int& failure_count() {
    static int count = 0;
    return count;
}

struct AbortCase {};  // thrown by REQUIRE to end the current case
struct SkipCase {
    std::string reason;
};

inline void report_failure(const char* file, int line, const std::string& what) {
    ++failure_count();
    std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

inline bool contains(const char* haystack, const char* needle) {
    return haystack != nullptr && needle != nullptr && std::strstr(haystack, needle) != nullptr;
}

template <typename T>
std::string to_text(const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
        return value ? "true" : "false";
    } else if constexpr (std::is_floating_point_v<T>) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(value));
        return buf;
    } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
        return std::to_string(static_cast<long long>(value));
    } else if constexpr (std::is_convertible_v<T, const char*>) {
        const char* s = value;
        return s ? std::string("\"") + s + "\"" : std::string("(null)");
    } else {
        return std::string(value);
    }
}

// Status check of an ABI call: on mismatch reports the status name and the last error.
inline bool check_status(sa_status got, sa_status expected, const char* expr, const char* file,
                         int line) {
    if (got == expected) return true;
    report_failure(file, line,
                   std::string(expr) + " returned " + sa_status_string(got) + ", expected " +
                       sa_status_string(expected) + " (last error: \"" + sa_last_error() + "\")");
    return false;
}

// Expects an error status whose message contains every listed fragment.
inline bool check_error(sa_status got, sa_status expected, const char* expr,
                        std::initializer_list<const char*> fragments, const char* file,
                        int line) {
    if (!check_status(got, expected, expr, file, line)) return false;
    const char* message = sa_last_error();
    bool ok = true;
    for (const char* fragment : fragments) {
        if (!contains(message, fragment)) {
            report_failure(file, line,
                           std::string(expr) + ": message \"" + message + "\" lacks \"" +
                               fragment + "\"");
            ok = false;
        }
    }
    return ok;
}

}  // namespace sa_test

#define SA_TEST_CONCAT_INNER(a, b) a##b
#define SA_TEST_CONCAT(a, b) SA_TEST_CONCAT_INNER(a, b)

// The name must be a plain identifier, unique across all test files, on the SA_TEST line.
#define SA_TEST(name)                                                                    \
    static void SA_TEST_CONCAT(sa_test_body_, name)();                                  \
    static const ::sa_test::Registrar SA_TEST_CONCAT(sa_test_registrar_, name)(          \
        #name, &SA_TEST_CONCAT(sa_test_body_, name), __FILE__, __LINE__);                \
    static void SA_TEST_CONCAT(sa_test_body_, name)()

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) ::sa_test::report_failure(__FILE__, __LINE__, "CHECK(" #cond ")"); \
    } while (0)

#define REQUIRE(cond)                                                                      \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            ::sa_test::report_failure(__FILE__, __LINE__, "REQUIRE(" #cond ")");          \
            throw ::sa_test::AbortCase{};                                                  \
        }                                                                                  \
    } while (0)

#define CHECK_EQ(a, b)                                                                      \
    do {                                                                                    \
        const auto sa_check_a_ = (a);                                                       \
        const auto sa_check_b_ = (b);                                                       \
        if (!(sa_check_a_ == sa_check_b_))                                                  \
            ::sa_test::report_failure(__FILE__, __LINE__,                                   \
                                      "CHECK_EQ(" #a ", " #b "): " +                        \
                                          ::sa_test::to_text(sa_check_a_) + " != " +        \
                                          ::sa_test::to_text(sa_check_b_));                 \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                               \
    do {                                                                                    \
        const double sa_check_a_ = static_cast<double>(a);                                  \
        const double sa_check_b_ = static_cast<double>(b);                                  \
        if (!(std::fabs(sa_check_a_ - sa_check_b_) <= static_cast<double>(tol)))            \
            ::sa_test::report_failure(__FILE__, __LINE__,                                   \
                                      "CHECK_NEAR(" #a ", " #b "): " +                      \
                                          ::sa_test::to_text(sa_check_a_) + " vs " +        \
                                          ::sa_test::to_text(sa_check_b_) + " (tol " +      \
                                          ::sa_test::to_text(static_cast<double>(tol)) + ")"); \
    } while (0)

// CHECK_OK(sa_call(...)): the call must succeed; the failure names the last error.
#define CHECK_OK(expr) ::sa_test::check_status((expr), SA_OK, #expr, __FILE__, __LINE__)
#define REQUIRE_OK(expr)                                                                 \
    do {                                                                                 \
        if (!::sa_test::check_status((expr), SA_OK, #expr, __FILE__, __LINE__))          \
            throw ::sa_test::AbortCase{};                                                \
    } while (0)
#define CHECK_STATUS(expr, status) \
    ::sa_test::check_status((expr), (status), #expr, __FILE__, __LINE__)
// CHECK_ERROR(call, SA_ERROR_INVALID_ARGUMENT, "q", "rank"): status and message fragments.
#define CHECK_ERROR(expr, status, ...) \
    ::sa_test::check_error((expr), (status), #expr, {__VA_ARGS__}, __FILE__, __LINE__)

// Ends the case as skipped (ctest exit code 77).
#define SA_SKIP(reason) throw ::sa_test::SkipCase{reason}

// Skips unless the CUDA backend is built and a device is present.
#define SA_REQUIRE_CUDA_DEVICE()                                                  \
    do {                                                                          \
        int32_t sa_device_count_ = 0;                                             \
        if (!sa_backend_built(SA_BACKEND_CUDA) ||                                 \
            sa_cuda_device_count(&sa_device_count_) != SA_OK || sa_device_count_ < 1) \
            SA_SKIP("skipped: no CUDA device");                                   \
    } while (0)
