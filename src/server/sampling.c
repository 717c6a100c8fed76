/* Penalties, log-probabilities and stop-string matching. */
#include <math.h>
#include <string.h>

#include "server/sampling.h"

void srv_apply_penalties(float *logits, const int32_t *counts, int n_vocab, float presence, float frequency) {
    for (int t = 0; t < n_vocab; t++)
        if (counts[t] > 0) logits[t] -= presence + frequency * (float)counts[t];
}

void srv_logprobs(const float *logits, int n_vocab, wgllm_token chosen, int n_top, srv_token_logprob *out) {
    double mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    out->id = chosen;
    out->logprob = (float)((double)logits[chosen] - lse);
    if (n_top > SRV_MAX_TOP_LOGPROBS) n_top = SRV_MAX_TOP_LOGPROBS;
    if (n_top > n_vocab) n_top = n_vocab;
    out->n_top = 0;
    /* insertion into a short sorted list: n_top is at most 20 */
    for (int i = 0; i < n_vocab; i++) {
        float v = logits[i];
        int k = out->n_top;
        if (k == n_top && (k == 0 || v <= logits[out->top[k - 1].id])) continue;
        if (k < n_top) out->n_top++;
        else k--;
        while (k > 0 && logits[out->top[k - 1].id] < v) {
            out->top[k] = out->top[k - 1];
            k--;
        }
        out->top[k].id = i;
    }
    for (int k = 0; k < out->n_top; k++) out->top[k].logprob = (float)((double)logits[out->top[k].id] - lse);
}

size_t srv_stop_scan(const char *buf, size_t len, const char *const *stops, int n_stops, bool *matched) {
    *matched = false;
    size_t first = len;
    for (int s = 0; s < n_stops; s++) {
        size_t n = strlen(stops[s]);
        if (!n || n > len) continue;
        for (size_t i = 0; i + n <= len && i < first; i++)
            if (!memcmp(buf + i, stops[s], n)) {
                first = i;
                *matched = true;
                break;
            }
    }
    if (*matched) return first;
    size_t hold = 0;
    for (int s = 0; s < n_stops; s++) {
        size_t n = strlen(stops[s]);
        if (!n) continue;
        for (size_t k = n - 1 < len ? n - 1 : len; k > hold; k--)
            if (!memcmp(buf + len - k, stops[s], k)) {
                hold = k;
                break;
            }
    }
    return len - hold;
}
