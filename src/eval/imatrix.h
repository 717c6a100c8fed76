/* Importance matrix: for every weight matrix of a model, the sum over evaluated
 * tokens of the squared entries of that matrix's input vector (one value per input
 * column), which quantizers use to weight rounding errors.
 *
 * Collected through a context's matmul observer (wgllm_context_set_matmul_observer):
 * for each weight product of that context's evaluations, x_j^2 of the input rows is
 * added to the sums of the weight, by its GGUF name. The model stays untouched and other
 * contexts of it are not observed. Detach (or free) before freeing the context.
 *
 * Output (wg_imatrix_collector_write), a GGUF file with general.type = "imatrix":
 *   NAME.in_sum2  f32 [ne0]  sum of x_j^2 over tokens, NAME the weight's GGUF name
 *   NAME.counts   f32 [1]    number of tokens summed
 *   imatrix.chunk_count (u32), imatrix.chunk_size (u32), imatrix.datasets (string array)
 * The output matrix is named output.weight, or token_embd.weight when it is tied
 * to the embeddings (the tensor a quantizer finds in the file).
 */
#ifndef WGLLM_EVAL_IMATRIX_H
#define WGLLM_EVAL_IMATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgllm.h"

typedef struct wg_imatrix_collector wg_imatrix_collector;

/* Starts observing c. NULL with a message on failure. */
wg_imatrix_collector *wg_imatrix_collector_attach(wgllm_context *c, char *err, size_t err_size);
/* Stops observing (idempotent); the sums stay readable. */
void wg_imatrix_collector_detach(wg_imatrix_collector *im);
/* Detaches if needed and frees. */
void wg_imatrix_collector_free(wg_imatrix_collector *im);

/* Number of weight matrices observed (in forward-pass order), and tokens summed for the i-th (tests). */
int wg_imatrix_collector_n_entries(const wg_imatrix_collector *im);
int64_t wg_imatrix_collector_entry_count(const wg_imatrix_collector *im, int i);

/* Writes the file (only matrices that saw at least one token). False with a message
 * if writing fails or reading an input back from the backend failed. */
bool wg_imatrix_collector_write(const wg_imatrix_collector *im, const char *path, uint32_t chunk_count, uint32_t chunk_size,
                      const char *const *datasets, size_t n_datasets, char *err, size_t err_size);

#endif
