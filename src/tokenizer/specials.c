/* Special tokens: the pieces matched whole in the input text before any
 * splitting (as Hugging Face's added tokens and llama.cpp's special-token
 * partition), and the set of tokens that end a generation. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* Sort keys copied out of the vocab (qsort takes no context argument). */
typedef struct keyed {
    unsigned char first;
    uint32_t len;
    int32_t id;
} keyed;

static int by_first_then_longest(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Text spellings that end a generation in the Llama 3 family, besides the
 * eos/eot/eom ids named by the file. */
static const char *const k_eog_texts[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};

static int by_id(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static bool build_eog(wg_tokenizer *t) {
    const wg_vocab *v = &t->v;
    int32_t cand[3 + 8];
    int32_t n = 0;
    const int32_t named[3] = {v->eos, v->eot, v->eom};
    for (int k = 0; k < 3; k++)
        if (named[k] >= 0) cand[n++] = named[k];
    for (int32_t id = 0; id < v->n; id++) {
        if (v->types[id] != WG_TOKEN_CONTROL && v->types[id] != WG_TOKEN_USER_DEFINED) continue;
        for (size_t k = 0; k < sizeof k_eog_texts / sizeof k_eog_texts[0]; k++)
            if (strcmp(v->pieces[id], k_eog_texts[k]) == 0 && n < (int32_t)(sizeof cand / sizeof cand[0])) cand[n++] = id;
    }
    qsort(cand, (size_t)n, sizeof cand[0], by_id);
    t->eog = malloc((size_t)(n > 0 ? n : 1) * sizeof *t->eog);
    if (!t->eog) return false;
    t->n_eog = 0;
    for (int32_t i = 0; i < n; i++)
        if (t->n_eog == 0 || t->eog[t->n_eog - 1] != cand[i]) t->eog[t->n_eog++] = cand[i];
    return true;
}

bool wg_specials_build(wg_tokenizer *t) {
    const wg_vocab *v = &t->v;
    int32_t n = 0;
    for (int32_t id = 0; id < v->n; id++)
        if ((v->types[id] == WG_TOKEN_CONTROL || v->types[id] == WG_TOKEN_USER_DEFINED) && t->piece_len[id] > 0) n++;
    keyed *k = malloc((size_t)(n > 0 ? n : 1) * sizeof *k);
    t->specials = malloc((size_t)(n > 0 ? n : 1) * sizeof *t->specials);
    if (!k || !t->specials) {
        free(k);
        return false;
    }
    int32_t w = 0;
    for (int32_t id = 0; id < v->n; id++)
        if ((v->types[id] == WG_TOKEN_CONTROL || v->types[id] == WG_TOKEN_USER_DEFINED) && t->piece_len[id] > 0)
            k[w++] = (keyed){(unsigned char)v->pieces[id][0], t->piece_len[id], id};
    qsort(k, (size_t)n, sizeof *k, by_first_then_longest);
    for (int32_t i = 0; i < n; i++) t->specials[i] = k[i].id;
    t->n_specials = n;
    int32_t i = 0;
    for (int b = 0; b <= 256; b++) {
        while (i < n && k[i].first < b) i++;
        t->special_first[b] = i;
    }
    free(k);
    return build_eog(t);
}

size_t wg_specials_find(const wg_tokenizer *t, const char *text, size_t len, size_t from, bool parse_special,
                        int32_t *id, size_t *match_len) {
    if (t->n_specials == 0) return len;
    for (size_t i = from; i < len; i++) {
        unsigned char b = (unsigned char)text[i];
        for (int32_t k = t->special_first[b]; k < t->special_first[b + 1]; k++) {
            int32_t s = t->specials[k];
            size_t sl = t->piece_len[s];
            if (sl > len - i || memcmp(text + i, t->v.pieces[s], sl) != 0) continue;
            if (!parse_special && t->v.types[s] != WG_TOKEN_USER_DEFINED) continue;
            *id = s;
            *match_len = sl;
            return i;
        }
    }
    return len;
}

bool wg_tokenizer_is_eog(const wg_tokenizer *t, int32_t id) {
    int32_t lo = 0, hi = t->n_eog;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (t->eog[mid] == id) return true;
        if (t->eog[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return false;
}
