// Attention kernels for the x86-64 baseline (SSE2) or the target's default instruction set.
#define SA_CPU_ISA isa_baseline
#include "attention_kernels.inc"
