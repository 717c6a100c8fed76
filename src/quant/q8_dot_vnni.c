/* The AVX-512 int8 dot kernels again with vpdpbusd (the build gives this file
 * -mavx512vnni as well; q8_act.c calls them only on CPUs with AVX-512 VNNI). */
#define WG_Q8_VNNI 1
#include "q8_dot_avx512.c"
