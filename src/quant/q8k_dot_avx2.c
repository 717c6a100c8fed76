/* The Q8_K kernels for AVX2 (the build gives this file -mavx2 -mfma -mf16c);
 * q8k_act.c calls them only on CPUs with it. */
#define WG_Q8K_LEVEL 1
#include "q8k_dot.c"
