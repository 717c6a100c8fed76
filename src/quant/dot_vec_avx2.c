/* The vector dot kernels of dot_vec.c built a second time for AVX2 + FMA (the build
 * gives this file -mavx2 -mfma); quant.c picks them at run time when the CPU has
 * those instructions, so one portable binary still uses 8-wide vectors. */
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#define WG_DOT_NAME(f) f##_avx2
#include "dot_vec.c"
#include "kquant_dot.c" /* the K-quant kernels too */
#else
typedef int wg_dot_vec_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
