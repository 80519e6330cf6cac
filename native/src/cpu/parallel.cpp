// Threads for the CPU backend: a parallel-for over work items with dynamic scheduling. Threads
// are started per call (cheap next to attention work) so concurrent calls never share state.
#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include "cpu_common.h"

namespace sa {
namespace cpu {

void throw_invalid_dtype(sa_dtype dtype) {
    throw_invalid("dtype " + std::to_string(static_cast<int>(dtype)) +
                  " is not supported by the CPU backend (f32, f16, bf16)");
}

int32_t worker_count(int32_t num_threads, int64_t count) {
    int64_t n = num_threads;
    if (n <= 0) {
        n = static_cast<int64_t>(std::thread::hardware_concurrency());
        if (n <= 0) n = 1;
    }
    n = std::min<int64_t>(n, 1024);
    n = std::min<int64_t>(n, std::max<int64_t>(count, 1));
    return static_cast<int32_t>(n);
}

void parallel_for(int64_t count, int32_t workers,
                  const std::function<void(int64_t, int32_t)>& body) {
    if (count <= 0) return;
    if (workers <= 1) {
        for (int64_t i = 0; i < count; ++i) body(i, 0);
        return;
    }
    std::atomic<int64_t> next{0};
    std::exception_ptr failure;
    std::mutex failure_lock;
    auto run = [&](int32_t worker) {
        try {
            for (int64_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) body(i, worker);
        } catch (...) {
            std::lock_guard<std::mutex> guard(failure_lock);
            if (!failure) failure = std::current_exception();
            next.store(count);
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    try {
        for (int32_t t = 1; t < workers; ++t) threads.emplace_back(run, t);
    } catch (...) {
        // Could not start every thread: the ones running (and this one) finish the work.
    }
    run(0);
    for (auto& t : threads) t.join();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace cpu
}  // namespace sa
