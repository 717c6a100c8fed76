/* The AVX-512 Q4_K x16 kernel again with vpdpbusd (the build gives this file
 * -mavx512vnni as well; q8k_x16.c calls it only on CPUs with AVX-512 VNNI). */
#define WG_Q8_VNNI 1
#include "q8k_x16_avx512.c"
