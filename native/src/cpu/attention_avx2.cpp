// Attention kernels for AVX2 + FMA (compiled with -mavx2 -mfma).
#if !defined(__AVX2__) || !defined(__FMA__)
#error "attention_avx2.cpp must be compiled with AVX2 and FMA enabled"
#endif
#define SA_CPU_ISA isa_avx2
#include "attention_kernels.inc"
