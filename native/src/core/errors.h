// Error plumbing of the ABI: the thread-local last-error message and the guard that turns
// every C++ exception into a status so that nothing crosses the C boundary.
#pragma once
#include <new>
#include <string>
#include "backend.h"

// The format checks of the C99 printf the messages are formatted with (MinGW: its own stdio).
#if defined(__MINGW32__)
#define SA_PRINTF_FORMAT(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define SA_PRINTF_FORMAT(f, a) __attribute__((format(printf, f, a)))
#else
#define SA_PRINTF_FORMAT(f, a)
#endif

namespace sa {

void set_last_error(const char* message) noexcept;

// Throws an invalid-argument sa::Error with a printf-formatted message.
[[noreturn]] void fail_invalid(const char* format, ...) SA_PRINTF_FORMAT(1, 2);
// Throws an sa::Error of any status with a printf-formatted message.
[[noreturn]] void fail_status(sa_status status, const char* format, ...) SA_PRINTF_FORMAT(2, 3);

void record_exception_bad_alloc() noexcept;
void record_exception_message(const char* prefix, const char* what) noexcept;

// Runs body; maps sa::Error to its status, bad_alloc to out-of-memory, anything else to
// internal error, storing the message for sa_last_error().
template <typename Body>
sa_status guard(Body&& body) noexcept {
    try {
        body();
        return SA_OK;
    } catch (const Error& e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc&) {
        record_exception_bad_alloc();
        return SA_ERROR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        record_exception_message("internal error: ", e.what());
        return SA_ERROR_INTERNAL;
    } catch (...) {
        record_exception_message("internal error: ", "unknown exception");
        return SA_ERROR_INTERNAL;
    }
}

}  // namespace sa
