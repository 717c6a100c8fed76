/* Importance matrix: for every weight matrix of a model, the sum over evaluated
 * tokens of the squared entries of that matrix's input vector (one value per input
 * column), which quantizers use to weight rounding errors.
 *
 * Collected without touching the model code: wg_imatrix_collector_attach puts an observing
 * backend in front of the model's backend. Its matmul reads the input rows back
 * through the inner backend, adds x_j^2 to the sums of the weight (identified by
 * its wg_tensor, named from the model's layer table), then forwards the op; every
 * other op is forwarded unchanged. Detach before freeing the model, and evaluate
 * nothing else on the model while attached.
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

/* Installs the observer on m (loaded with weights). NULL with a message on failure. */
wg_imatrix_collector *wg_imatrix_collector_attach(wgllm_model *m, char *err, size_t err_size);
/* Puts the model's own backend back (idempotent); the sums stay readable. */
void wg_imatrix_collector_detach(wg_imatrix_collector *im);
/* Detaches if needed and frees. */
void wg_imatrix_collector_free(wg_imatrix_collector *im);

/* Number of weight matrices observed, and tokens summed for the i-th (tests). */
int wg_imatrix_collector_n_entries(const wg_imatrix_collector *im);
int64_t wg_imatrix_collector_entry_count(const wg_imatrix_collector *im, int i);

/* Writes the file (only matrices that saw at least one token). False with a message
 * if writing fails or reading an input back from the backend failed. */
bool wg_imatrix_collector_write(const wg_imatrix_collector *im, const char *path, uint32_t chunk_count, uint32_t chunk_size,
                      const char *const *datasets, size_t n_datasets, char *err, size_t err_size);

#endif
