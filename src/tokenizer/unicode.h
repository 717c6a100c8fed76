/* The Unicode facts the byte-level BPE pre-tokenizer needs: a code point's class
 * (letter = general category L*, number = N*, space = White_Space property) from
 * generated range tables, and a UTF-8 decoder that never fails. */
#ifndef WGLLM_TOKENIZER_UNICODE_H
#define WGLLM_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    WG_UC_OTHER = 0,
    WG_UC_LETTER = 1,
    WG_UC_NUMBER = 2,
    WG_UC_SPACE = 4,
};

typedef struct wg_unicode_range {
    uint32_t lo, hi; /* inclusive */
    uint8_t cls;     /* one WG_UC_* value */
} wg_unicode_range;

/* Generated tables (unicode_tables.c). */
extern const char wg_unicode_version[];
extern const wg_unicode_range wg_unicode_ranges[];
extern const size_t wg_unicode_n_ranges;

/* WG_UC_* class of a code point; WG_UC_OTHER outside 0..0x10FFFF. */
int wg_unicode_class(uint32_t cp);

/* Marks a byte that does not start a valid UTF-8 sequence: such a byte decodes
 * to (WG_UTF8_INVALID | byte) and is classed WG_UC_OTHER (like U+FFFD). */
#define WG_UTF8_INVALID 0x80000000u

/* Decodes the character at s (n >= 1 bytes left): stores its code point and
 * returns its length (1..4). An ill-formed sequence (overlong, surrogate, above
 * U+10FFFF, truncated, stray continuation byte) yields one byte of length 1 with
 * *cp = WG_UTF8_INVALID | that byte. */
int wg_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes the UTF-8 form of cp (<= 0x10FFFF) to out (4 bytes room); returns its length. */
int wg_utf8_encode(uint32_t cp, char *out);

#endif
