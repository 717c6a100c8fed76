/* The per-token part of the nt kernels (kernels/lib_q8_nt.wgsl), generated for a width of NT
 * tokens: WGSL has no way to give a struct or a call sequence a length from a constant, and
 * an array of accumulators indexed in a loop may live in local memory instead of registers,
 * so each width gets named fields and unrolled calls, written here once. */
#ifndef WGLLM_WGPU_Q8_NT_H
#define WGLLM_WGPU_Q8_NT_H

/* The WGSL text for nt tokens (a multiple of 8): struct Acc, acc_tokens, token_sum, the
 * chunked workgroup-memory sums and (between the SUBGROUPS markers) xor_sum, plus the
 * constants TPR, RG and NT. A malloc'ed string, NULL when out of memory or nt is not
 * a multiple of 8. */
char *wgb_q8_nt_wgsl(int nt);

#endif
