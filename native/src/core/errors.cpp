// Thread-local error messages, status names and version queries.
#include "errors.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace sa {
namespace {

// Fixed buffer: recording an error must never allocate (it also reports bad_alloc).
constexpr size_t kMessageCapacity = 1024;
thread_local char t_last_error[kMessageCapacity] = "";

std::string vformat(const char* format, va_list args) {
    char buffer[kMessageCapacity];
    std::vsnprintf(buffer, sizeof buffer, format, args);
    return std::string(buffer);
}

}  // namespace

void set_last_error(const char* message) noexcept {
    if (message == nullptr) message = "";
    std::snprintf(t_last_error, kMessageCapacity, "%s", message);
}

void record_exception_bad_alloc() noexcept {
    set_last_error("out of memory: a host allocation failed");
}

void record_exception_message(const char* prefix, const char* what) noexcept {
    std::snprintf(t_last_error, kMessageCapacity, "%s%s", prefix, what ? what : "");
}

void fail_invalid(const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::string message = vformat(format, args);
    va_end(args);
    throw Error(SA_ERROR_INVALID_ARGUMENT, message);
}

void fail_status(sa_status status, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::string message = vformat(format, args);
    va_end(args);
    throw Error(status, message);
}

}  // namespace sa

extern "C" {

SA_API const char* sa_last_error(void) { return sa::t_last_error; }

SA_API const char* sa_status_string(int32_t status) {
    switch (status) {
        case SA_OK: return "ok";
        case SA_ERROR_INVALID_ARGUMENT: return "invalid argument";
        case SA_ERROR_UNSUPPORTED: return "unsupported";
        case SA_ERROR_CUDA: return "CUDA error";
        case SA_ERROR_OUT_OF_MEMORY: return "out of memory";
        case SA_ERROR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

SA_API const char* sa_version_string(void) { return SPARSEATTN_VERSION_STRING; }

SA_API void sa_version(int32_t* major, int32_t* minor, int32_t* patch) {
    if (major) *major = SA_VERSION_MAJOR;
    if (minor) *minor = SA_VERSION_MINOR;
    if (patch) *patch = SA_VERSION_PATCH;
}

}  // extern "C"
