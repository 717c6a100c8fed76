/* Code point classes by binary search over the generated ranges, and a strict
 * UTF-8 decoder (Unicode ch. 3, table 3-7 well-formed byte sequences). */
#include "tokenizer/unicode.h"

int wg_unicode_class(uint32_t cp) {
    if (cp < 0x80) { /* ASCII fast path; identical to the tables */
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return WG_UC_LETTER;
        if (cp >= '0' && cp <= '9') return WG_UC_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return WG_UC_SPACE;
        return WG_UC_OTHER;
    }
    size_t lo = 0, hi = wg_unicode_n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < wg_unicode_ranges[mid].lo) hi = mid;
        else if (cp > wg_unicode_ranges[mid].hi) lo = mid + 1;
        else return wg_unicode_ranges[mid].cls;
    }
    return WG_UC_OTHER;
}

int wg_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *cp = WG_UTF8_INVALID | c;
        return 1;
    }
    if ((size_t)len > n || s[1] < lo || s[1] > hi) {
        *cp = WG_UTF8_INVALID | c;
        return 1;
    }
    for (int k = 1; k < len; k++) {
        if (s[k] < 0x80 || s[k] > 0xBF) {
            *cp = WG_UTF8_INVALID | c;
            return 1;
        }
        v = (v << 6) | (s[k] & 0x3F);
    }
    *cp = v;
    return len;
}

int wg_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
