// Attention kernels for AVX-512F (compiled with -mavx512f -mavx2 -mfma).
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "attention_avx512.cpp must be compiled with AVX-512F and FMA enabled"
#endif
#define SA_CPU_ISA isa_avx512
#include "attention_kernels.inc"
