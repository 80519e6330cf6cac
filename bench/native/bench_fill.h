// Fills `count` fp16 or bf16 elements with random values on the default stream.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
cudaError_t bench_fill_random(void* data, uint64_t count, bool bf16, uint64_t seed);
