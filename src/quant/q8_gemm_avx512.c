/* The prompt matmul of q8_gemm_avx2.c again for AVX-512 BW/VL: the same 256-bit code
 * with 32 registers, so a tile of 8 rows takes 8 tokens (the build gives this file
 * the AVX-512 flags; q8_gemm.c calls it only on CPUs with them). */
#define WG_GEMM_AVX512 1
#include "q8_gemm_avx2.c"
