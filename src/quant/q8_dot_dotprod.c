/* The aarch64 int8 dot kernels again with sdot (the build gives this file
 * -march=armv8.2-a+dotprod; q8_act.c calls them only on CPUs with HWCAP_ASIMDDP). */
#define WG_Q8_DOTPROD 1
#include "q8_dot_neon.c"
