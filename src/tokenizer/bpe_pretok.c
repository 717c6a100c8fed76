/* The Llama 3 and Qwen2 pre-tokenizers, written out by hand. The split regex is
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3}
 *   | ' '?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 *
 * for Llama 3; Qwen2's is the same with \p{N} (one digit a piece) for \p{N}{1,3},
 *
 * matched leftmost-first, alternative by alternative, with the backtracking of
 * the greedy quantifiers resolved in closed form (see each case). Every code
 * point is matched by some alternative, so the pieces cover the text. Bytes
 * that are not valid UTF-8 count as one "other" character each (as U+FFFD
 * would) but keep their value. */
#include <stdlib.h>

#include "tokenizer/bpe.h"
#include "tokenizer/unicode.h"

typedef struct cps {
    uint32_t *cp;  /* n code points (or WG_UTF8_INVALID | byte) */
    size_t *off;   /* n + 1 byte offsets */
    size_t n;
} cps;

static int cls_at(const cps *c, size_t i) {
    if (i >= c->n || (c->cp[i] & WG_UTF8_INVALID)) return WG_UC_OTHER;
    return wg_unicode_class(c->cp[i]);
}

static bool is_letter(const cps *c, size_t i) { return i < c->n && cls_at(c, i) == WG_UC_LETTER; }
static bool is_number(const cps *c, size_t i) { return i < c->n && cls_at(c, i) == WG_UC_NUMBER; }
static bool is_space(const cps *c, size_t i) { return i < c->n && cls_at(c, i) == WG_UC_SPACE; }
static bool is_newline(const cps *c, size_t i) { return i < c->n && (c->cp[i] == '\r' || c->cp[i] == '\n'); }
/* [^\s\p{L}\p{N}] */
static bool is_other(const cps *c, size_t i) { return i < c->n && cls_at(c, i) == WG_UC_OTHER; }

/* Simple case folding as the regex engine applies it under (?i): ASCII letters,
 * and U+017F LONG S, which folds to 's'. */
static uint32_t fold(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp == 0x17F) return 's';
    return cp;
}

/* Length (in code points) of a contraction at i, or 0. */
static size_t contraction(const cps *c, size_t i) {
    if (c->cp[i] != '\'' || i + 1 >= c->n) return 0;
    uint32_t a = fold(c->cp[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= c->n) return 0;
    uint32_t b = fold(c->cp[i + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* End (exclusive, in code points) of the piece that starts at i; a number run
 * is cut every max_digits digits. */
static size_t match_at(const cps *c, size_t i, size_t max_digits) {
    size_t n = c->n, j;
    if ((j = contraction(c, i)) > 0) return i + j;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    j = i;
    if (!is_letter(c, j) && !is_number(c, j) && !is_newline(c, j) && is_letter(c, j + 1)) j++;
    if (is_letter(c, j)) {
        while (is_letter(c, j)) j++;
        return j;
    }
    /* \p{N}{1,3} (Llama 3) or \p{N} (Qwen2) */
    if (is_number(c, i)) {
        j = i + 1;
        while (j < i + max_digits && is_number(c, j)) j++;
        return j;
    }
    /* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
    j = i;
    if (c->cp[j] == ' ' && is_other(c, j + 1)) j++;
    if (is_other(c, j)) {
        while (is_other(c, j)) j++;
        while (is_newline(c, j)) j++;
        return j;
    }
    /* The rest start with a whitespace run [i, end). */
    size_t end = i;
    while (is_space(c, end)) end++;
    if (end == i) return i + 1; /* unreachable: every class is covered above */
    /* \s*[\r\n]+ : up to and including the last newline of the run. */
    for (j = end; j > i; j--) {
        if (is_newline(c, j - 1)) return j;
    }
    /* \s+(?!\S) : the whole run at the end of the text, else all but its last
     * space (which then starts the next piece), if that leaves one. */
    if (end == n || end - i >= 2) return end == n ? end : end - 1;
    /* \s+ */
    return end;
}

bool wg_pretok(int32_t pre, const char *text, size_t len, wg_pretok_fn fn, void *ctx) {
    if (len == 0) return true;
    size_t max_digits = pre == WG_PRE_QWEN2 ? 1 : 3;
    cps c = {malloc(len * sizeof(uint32_t)), malloc((len + 1) * sizeof(size_t)), 0};
    bool ok = c.cp && c.off;
    for (size_t pos = 0; ok && pos < len;) {
        c.off[c.n] = pos;
        pos += (size_t)wg_utf8_decode((const unsigned char *)text + pos, len - pos, &c.cp[c.n]);
        c.n++;
    }
    if (ok) c.off[c.n] = len;
    for (size_t i = 0; ok && i < c.n;) {
        size_t j = match_at(&c, i, max_digits);
        ok = fn(ctx, c.off[i], c.off[j] - c.off[i]);
        i = j;
    }
    free(c.cp);
    free(c.off);
    return ok;
}

bool wg_pretok_llama3(const char *text, size_t len, wg_pretok_fn fn, void *ctx) {
    return wg_pretok(WG_PRE_LLAMA3, text, len, fn, ctx);
}
