// Test runner: no arguments runs every case; --list prints the names; --run <name> runs one.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "harness.h"

namespace {

// 0 passed, 1 failed, 77 skipped.
int run_case(const sa_test::TestCase& test) {
    sa_test::failure_count() = 0;
    try {
        test.body();
    } catch (const sa_test::AbortCase&) {
    } catch (const sa_test::SkipCase& skip) {
        std::printf("[ SKIP ] %s: %s\n", test.name, skip.reason.c_str());
        return 77;
    } catch (const std::exception& e) {
        sa_test::report_failure(test.file, test.line,
                                std::string("uncaught exception: ") + e.what());
    } catch (...) {
        sa_test::report_failure(test.file, test.line, "uncaught exception");
    }
    const bool ok = sa_test::failure_count() == 0;
    std::printf("[ %s ] %s\n", ok ? " OK " : "FAIL", test.name);
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    auto& cases = sa_test::registry();
    if (argc >= 2 && std::strcmp(argv[1], "--list") == 0) {
        for (const auto& test : cases) std::printf("%s\n", test.name);
        return 0;
    }
    if (argc >= 3 && std::strcmp(argv[1], "--run") == 0) {
        // Cases registered once per CPU instruction set (CMakeLists.txt) run only where the
        // library runs the set they ask for.
        const char* expected = std::getenv("SA_TEST_EXPECT_CPU_ISA");
        if (expected && std::strcmp(expected, sa_cpu_isa()) != 0) {
            std::printf("[ SKIP ] %s: the CPU kernels run at %s, not %s\n", argv[2], sa_cpu_isa(), expected);
            return 77;
        }
        for (const auto& test : cases)
            if (std::strcmp(test.name, argv[2]) == 0) return run_case(test);
        std::fprintf(stderr, "no test named %s\n", argv[2]);
        return 2;
    }
    if (argc >= 2) {
        std::fprintf(stderr, "usage: %s [--list | --run <name>]\n", argv[0]);
        return 2;
    }
    int failed = 0, skipped = 0;
    for (const auto& test : cases) {
        const int rc = run_case(test);
        if (rc == 77) ++skipped;
        else if (rc != 0) ++failed;
    }
    std::printf("%zu cases: %zu passed, %d failed, %d skipped\n", cases.size(),
                cases.size() - failed - skipped, failed, skipped);
    return failed == 0 ? 0 : 1;
}
