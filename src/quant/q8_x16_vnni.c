/* The AVX-512 x16 matmul kernels again with vpdpbusd (the build gives this file
 * -mavx512vnni as well; q8_x16.c calls them only on CPUs with AVX-512 VNNI). */
#define WG_Q8_VNNI 1
#include "q8_x16_avx512.c"
