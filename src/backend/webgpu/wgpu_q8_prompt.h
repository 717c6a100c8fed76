/* The int8 prompt products in a few tile shapes, one of which the adapter's autotune picks
 * per token count (WGB_TUNE_Q8_PROMPT, wgpu_autotune.h). They are the int8 tiles the batched
 * decode steps use too (kernels/lib_q8_batch.wgsl with kernels/matmul_q8.wgsl), in bigger
 * shapes. The shapes are defined here once: each becomes WGSL constants put in front of the
 * kernel (wgb_q8_prompt_prefix) with the thread's generated registers (wgb_q8_tile_wgsl),
 * and sizes its dispatch and its workgroup memory. Tile 0 is the shape taken without
 * measuring and is built with the format's other int8 kernels; the others are built on first
 * use. */
#ifndef WGLLM_WGPU_Q8_PROMPT_H
#define WGLLM_WGPU_Q8_PROMPT_H

#include <stdbool.h>
#include <stdint.h>

/* X(name, TM rows, TN tokens, RT rows a thread, TT tokens a thread, KB blocks of 32 a step).
 * (TM / RT) * (TN / TT) = 256 threads; TT a multiple of 4 (a thread's tokens as vec4s);
 * TM * KB = 256 (a thread decodes one weight block a step; lib_q8_batch.wgsl's KB); 2 * KB * TN a multiple of 256
 * (whole vec4s of x staged per thread). Workgroup memory: 44 * KB * (TM + TN) bytes.
 *   128x64: the shape before the autotune, 8 x 4 a thread (16.5 KiB);
 *   128x128: 8 x 8 a thread, each staged weight word used by twice the tokens and a quarter
 *            fewer shared-memory loads per dp4a; half the workgroups (22 KiB);
 *   64x64k4: four blocks a step (half the barriers per k) and twice the workgroups, for
 *            smaller matrices (TinyLlama's 2048 rows: 16 row tiles of 128 leave most of an
 *            H100's 132 SMs idle at 512 tokens) (22 KiB).
 * All three fit lavapipe's 32 KiB, so CI checks each. */
#define WGB_Q8_PROMPT_TILES(X)          \
    X("128x64", 128, 64, 8, 4, 2)       \
    X("128x128", 128, 128, 8, 8, 2)     \
    X("64x64k4", 64, 64, 4, 4, 4)

#define WGB_Q8_PROMPT_COUNT_TILE(name, tm, tn, rt, tt, kb) +1
enum { WGB_Q8_PROMPT_TILE_COUNT = 0 WGB_Q8_PROMPT_TILES(WGB_Q8_PROMPT_COUNT_TILE) };
#undef WGB_Q8_PROMPT_COUNT_TILE

struct wgb_ctx;
struct wgb_bind;

/* The WGSL constants of tile t (a static string), its name ("128x64"), its workgroup memory. */
const char *wgb_q8_prompt_prefix(int t);
/* A thread's rows and tokens in tile t (0 for a tile that does not exist). */
void wgb_q8_prompt_thread(int t, int *rt, int *tt);
const char *wgb_q8_prompt_name(int t);
uint32_t wgb_q8_prompt_wg_bytes(int t);
/* The kernel (wgb_kernel) of int8 format f (WGB_Q8F_*) in tile t. */
int wgb_q8_prompt_kernel(int f, int t);

/* The tile for a prompt product of n tokens of format f (whose int8 kernels are built): the
 * autotune's pick, built now if it is not yet; tile 0 where the device lacks the pick's
 * workgroup memory. Ask before making x's int8 copy (a first pick may measure). */
int wgb_q8_prompt_tile(struct wgb_ctx *c, int f, int n);
/* Whether the device can run tile t (its workgroup memory). */
bool wgb_q8_prompt_fits(const struct wgb_ctx *c, int t);

/* y (+)= W x in tile t for one weight binding: bb = {w, xq, xs, y}; rows of the binding,
 * written at y[y_off + tok * y_stride + r]. */
void wgb_q8_prompt_matmul(struct wgb_ctx *c, int f, int t, const struct wgb_bind *bb, int64_t k, int64_t rows,
                          int64_t y_off, int64_t y_stride, int n, bool accumulate);

#endif
