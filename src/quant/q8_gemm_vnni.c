/* The prompt matmul of q8_gemm_avx2.c with vpdpbusd (the build gives this file
 * -mavx512vnni as well; q8_gemm.c calls it only on CPUs with AVX-512 VNNI). */
#define WG_GEMM_AVX512 1
#define WG_GEMM_VNNI 1
#include "q8_gemm_avx2.c"
