// Kernels for any CPU the compiler targets by default (SSE2 on x86-64, NEON on aarch64).
#define LP_ISA isa_baseline
#define LP_ISA_NAME "baseline"
#define LP_TABLE_FN kernels_baseline
#include "isa_kernels.inc"
