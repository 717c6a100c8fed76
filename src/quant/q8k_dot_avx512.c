/* The Q8_K kernels for AVX-512 F/BW/VL (the build gives this file those flags);
 * q8k_act.c calls them only on CPUs with it. */
#define WG_Q8K_LEVEL 2
#include "q8k_dot.c"
