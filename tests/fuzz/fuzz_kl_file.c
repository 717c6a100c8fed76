/* libFuzzer target for the KL base file reader (`wgllm perplexity --kl-base`):
 * arbitrary bytes must give a one-line error or a reader whose rows all read back
 * as finite log-probabilities, never a crash, an overflow or an over-read. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/kl_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[300];
    wg_kl_header h;
    if (wg_kl_header_decode(data, size, size, &h, err, sizeof err)) {
        /* the header promises exactly the bytes that are there */
        if ((uint64_t)WG_KL_HEADER_BYTES + h.n_scored * (uint64_t)h.n_vocab * 4u != size) abort();
    } else if (!err[0] || strchr(err, '\n')) {
        abort();
    }
    if (size == 0) return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) return 0;
    wg_kl_reader *r = wg_kl_reader_from_stream(f, size, "fuzz", err, sizeof err);
    if (!r) return 0;
    const wg_kl_header *rh = wg_kl_reader_header(r);
    float *row = malloc(sizeof(float) * rh->n_vocab);
    for (uint64_t i = 0; row && i < rh->n_scored; i++) {
        if (!wg_kl_reader_row(r, row, err, sizeof err)) break;
        for (uint32_t j = 0; j < rh->n_vocab; j++)
            if (!isfinite(row[j])) abort();
    }
    free(row);
    wg_kl_reader_free(r);
    return 0;
}
