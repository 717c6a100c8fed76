#ifndef WGLLM_CLI_BENCH_PARALLEL_H
#define WGLLM_CLI_BENCH_PARALLEL_H

#include "wgllm.h"

/* Aggregate generated tokens/s of n_streams greedy sequences (a 32-token prompt each)
 * decoding n_gen tokens together; -1 on failure (message on stderr). */
double bench_parallel(wgllm_model *m, int n_streams, int n_gen, double (*clock)(void));

#endif
