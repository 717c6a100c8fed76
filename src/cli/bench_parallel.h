#ifndef WGLLM_CLI_BENCH_PARALLEL_H
#define WGLLM_CLI_BENCH_PARALLEL_H

#include "wgllm.h"

#define PAR_PROMPT 32 /* prompt tokens of each stream */

/* Aggregate generated tokens/s of n_streams greedy sequences (a PAR_PROMPT-token prompt each)
 * decoding n_gen tokens together; -1 on failure (message on stderr). */
double bench_parallel(wgllm_model *m, int n_streams, int n_gen, double (*clock)(void));

#endif
