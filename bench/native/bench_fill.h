// Device-side fills and accuracy metrics for the benchmarks (large tensors would take seconds
// on the host).
#pragma once
#include <cuda_runtime.h>
#include <cstdint>

// Fills `count` fp16 or bf16 elements with random values on the default stream.
cudaError_t bench_fill_random(void* data, uint64_t count, bool bf16, uint64_t seed);

// Structured attention inputs, bf16 [1, S, H, D] (D >= 14): unit-variance noise in every
// dimension times `noise`, plus three patterns whose logits (after `scale`) are set directly:
// - needles: each key (per head) is a needle with probability needle_fraction, scattered
//   across the sequence; every query's logit on a needle is raised by needle_logit;
// - local: a sum of 6 sinusoid pairs (periods 11 to 263 tokens) adds up to local_logit on
//   nearby keys;
// - sink: the first sink_tokens keys get sink_logit from every query.
// V is unit-variance noise.
struct StructuredFill {
    int64_t seqlen, heads, head_dim;
    float scale;            // the attention scale the logits are given for (1/sqrt(D))
    float noise = 1.0f;
    double needle_fraction = 1.0 / 16;
    float needle_logit = 10.0f;
    float local_logit = 6.0f;
    float sink_logit = 8.0f;
    int64_t sink_tokens = 4;
    uint64_t seed = 1;
};
cudaError_t bench_fill_structured(void* q, void* k, void* v, const StructuredFill& fill);

// A sparse result against the dense one on the same inputs: relative L1 and cosine of the
// outputs (bf16, `count` elements each), and the dense attention mass each row's kept pairs
// cover, exp(lse_sparse - lse_dense), over `rows` LSE entries: mean, minimum and the fraction
// of rows below 0.9.
struct AccuracyMetrics {
    double rel_l1, cosine, mass_mean, mass_min, rows_below_90;
};
cudaError_t bench_accuracy(const void* sparse_out, const void* dense_out, uint64_t count,
                           const float* sparse_lse, const float* dense_lse, uint64_t rows,
                           AccuracyMetrics* metrics);
