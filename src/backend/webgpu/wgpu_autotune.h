/* Kernel choices per adapter, measured on the adapter at first need and remembered on disk.
 *
 * A choice (a "kind") picks one of a few candidate kernel routes for a range of sizes (its
 * rows, e.g. decode steps of 9-16, 17-32 and 33-64 tokens). The first time the backend asks
 * for a kind, its rows are read from the cache file or, when missing there, timed on the
 * device with synthetic operands and written back. A kind is rows in the table of
 * wgpu_autotune.c plus its measuring function (the prompt tiles' shapes share the decode
 * kind's: the real op, each candidate forced).
 *
 * The cache: $WGLLM_WEBGPU_AUTOTUNE_FILE, else $XDG_CACHE_HOME/wgllm/webgpu-autotune.tsv,
 * else ~/.cache/wgllm/webgpu-autotune.tsv. One tab-separated line per adapter and row, keyed
 * by the adapter (backend, vendor and device ids, architecture, name), its driver and a hash
 * of the kinds' kernel sources, so that a new driver or kernel set measures again. Written
 * atomically (a temporary file renamed over it); a file that cannot be read or written only
 * costs a measurement. Malformed lines are dropped with one warning.
 *
 * WGLLM_WEBGPU_AUTOTUNE=0: no measuring, no file (each kind's fixed defaults) | 1 (default)
 * | force: measure again and rewrite | verbose: as 1, and say on stderr what was measured
 * or read. */
#ifndef WGLLM_WGPU_AUTOTUNE_H
#define WGLLM_WGPU_AUTOTUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct wgb_ctx;

/* Kinds of choice, and their candidates. */
typedef enum {
    /* a batched decode step of 9-64 tokens with Q4_0 weights (wgpu_q8_batch.h) */
    WGB_TUNE_Q4_0_DECODE,
    /* the int8 prompt tiles' shape for products of 65 or more tokens; its candidates are
     * the tiles of wgpu_q8_prompt.h, in their order (Q4_0 timed, taken for every int8 format) */
    WGB_TUNE_Q8_PROMPT,
    /* a step of 2-8 tokens with int8-format weights: one pass of 8 through the nt kernels
     * with whole-run groups or groups of 8 lanes of two or four rows (Q4_0 timed, taken for
     * every int8 format) */
    WGB_TUNE_Q4_0_FEW,
    WGB_TUNE_KINDS
} wgb_tune_kind;
/* passes of 8 tokens through the nt kernels, the batch tiles, then the wider nt widths in
 * their order (WGB_Q8_NT_WIDTHS: candidate i >= 2 is width i - 1): passes of 16 or of 32,
 * of 16 with four rows a group, and the same three with groups of 8 lanes */
enum {
    WGB_TUNE_DECODE_NT,
    WGB_TUNE_DECODE_BATCH,
    WGB_TUNE_DECODE_NT16,
    WGB_TUNE_DECODE_NT32,
    WGB_TUNE_DECODE_NT16R4,
    WGB_TUNE_DECODE_NT16L8,
    WGB_TUNE_DECODE_NT32L8,
    WGB_TUNE_DECODE_NT16R4L8,
    WGB_TUNE_DECODE_CANDIDATES
};
/* the few kind's: WGB_Q8_NT_WIDTHS' first width, and its last two (8 tokens, groups of 8
 * lanes of two or four rows) */
enum { WGB_TUNE_FEW_NT8, WGB_TUNE_FEW_NT8L8, WGB_TUNE_FEW_NT8R4L8, WGB_TUNE_FEW_CANDIDATES };

/* The candidate for a step of n tokens (a kind's first candidate outside its rows). May
 * flush, wait for the device and time kernels the first time (the int8 copy of x in
 * scratch is then gone: ask before making it). */
int wgb_autotune_pick(struct wgb_ctx *c, wgb_tune_kind kind, int n);

/* Frees the choices made (the backend's destroy). */
void wgb_autotune_free(struct wgb_ctx *c);

/* Tests: every row of `kind` takes candidate `pick` from now on (no measuring, no file);
 * and how often this backend measured a kind or took one from the file. */
void wgb_autotune_force(struct wgb_ctx *c, wgb_tune_kind kind, int pick);
void wgb_autotune_counts(const struct wgb_ctx *c, int *measured, int *from_file);

/* An adapter as the cache names it (the strings of `wgllm devices`). */
typedef struct wgb_tune_adapter {
    const char *backend, *name, *architecture, *driver;
    uint32_t vendor_id, device_id;
} wgb_tune_adapter;

/* Prints the cached choices of an adapter, one "  autotune ..." line each; returns how
 * many. Reads the file only. */
int wgb_autotune_print(FILE *out, const wgb_tune_adapter *a);

/* The cache file's path in buf (false when there is none: no HOME, or too long). */
bool wgb_autotune_path(char *buf, size_t size);

#endif
