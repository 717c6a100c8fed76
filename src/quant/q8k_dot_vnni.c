/* The Q8_K kernels for AVX-512 VNNI, vpdpwssd (the build gives this file -mavx512vnni as well);
 * q8k_act.c calls them only on CPUs with it. */
#define WG_Q8K_LEVEL 3
#include "q8k_dot.c"
