/* The server's per-token decisions: OpenAI's presence/frequency penalties,
 * log-probabilities of the raw distribution, and stop strings that may span tokens. */
#ifndef WGLLM_SERVER_SAMPLING_H
#define WGLLM_SERVER_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/job.h"

/* logits[t] -= presence * (counts[t] > 0) + frequency * counts[t], for every t. */
void srv_apply_penalties(float *logits, const int32_t *counts, int n_vocab, float presence, float frequency);

/* log p(chosen) and the n_top most likely tokens under log-softmax(raw logits). */
void srv_logprobs(const float *logits, int n_vocab, wgllm_token chosen, int n_top, srv_token_logprob *out);

/* Scans buf for the stop strings. If one occurs, *matched is set and the
 * returned length is where the earliest one starts (the text to release). Otherwise
 * returns the length that can be released now: everything except a tail that
 * could still grow into a stop string. */
size_t srv_stop_scan(const char *buf, size_t len, const char *const *stops, int n_stops, bool *matched);

#endif
