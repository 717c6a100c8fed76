/* Builds the backend's compute pipelines with explicit layouts (the parameter binding
 * needs a dynamic offset, which automatic layouts do not give). */
#include "backend/webgpu/wgpu_pipelines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_kernels.h"
#include "backend/webgpu/wgpu_q8_gen.h"
#include "quant/types.h"

static const char *const k_fmt_names[WGB_FMT_COUNT] = {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
                                                       "q4_k", "q5_k", "q6_k"};

int wgb_format_of(uint32_t type) {
    switch (type) {
    case WG_TYPE_F32: return WGB_FMT_F32;
    case WG_TYPE_F16: return WGB_FMT_F16;
    case WG_TYPE_BF16: return WGB_FMT_BF16;
    case WG_TYPE_Q4_0: return WGB_FMT_Q4_0;
    case WG_TYPE_Q4_1: return WGB_FMT_Q4_1;
    case WG_TYPE_Q5_0: return WGB_FMT_Q5_0;
    case WG_TYPE_Q5_1: return WGB_FMT_Q5_1;
    case WG_TYPE_Q8_0: return WGB_FMT_Q8_0;
    case WG_TYPE_Q4_K: return WGB_FMT_Q4_K;
    case WG_TYPE_Q5_K: return WGB_FMT_Q5_K;
    case WG_TYPE_Q6_K: return WGB_FMT_Q6_K;
    default: return -1;
    }
}

int wgb_q8_format_of(uint32_t type) {
    switch (type) {
    case WG_TYPE_Q4_0: return WGB_Q8F_Q4_0;
    case WG_TYPE_Q8_0: return WGB_Q8F_Q8_0;
    case WG_TYPE_Q4_K: return WGB_Q8F_Q4_K;
    case WG_TYPE_Q6_K: return WGB_Q8F_Q6_K;
    case WG_TYPE_Q5_K: return WGB_Q8F_Q5_K;
    default: return -1;
    }
}

int wgb_qkv_format_of(int f_qk, int f_v) {
    if (f_qk < 0 || f_v < 0) return -1;
    if (f_qk == f_v) return f_qk;
    if (f_v != WGB_Q8F_Q6_K) return -1;
    return f_qk == WGB_Q8F_Q4_K ? WGB_QKV_FMT_Q4_K_V_Q6_K : f_qk == WGB_Q8F_Q5_K ? WGB_QKV_FMT_Q5_K_V_Q6_K : -1;
}

int64_t wgb_q8_row_multiple(int f) { return f == WGB_Q8F_Q4_0 || f == WGB_Q8F_Q8_0 ? 32 : 256; }

/* The weight format (WGB_FMT_*) and kernel files of each int8 format. */
static const int k_q8_fmt[WGB_Q8F_COUNT] = {WGB_FMT_Q4_0, WGB_FMT_Q8_0, WGB_FMT_Q4_K, WGB_FMT_Q6_K, WGB_FMT_Q5_K};
static const char *const k_q8_dot[WGB_Q8F_COUNT] = {"q8dot_q4_0", "q8dot_q8_0", "q8dot_q4_k", "q8dot_q6_k",
                                                    "q8dot_q5_k"};
/* what a format's file needs in front besides lib_q8_x, or NULL */
static const char *const k_q8_extra[WGB_Q8F_COUNT] = {"lib_q4_0_int8", NULL, "lib_k_scales", NULL, "lib_k_scales"};
/* The fused q/k/v kernel's (q and k, v) int8 formats of each WGB_QKV_FMT_*. */
static const int k_qkv_fmt[WGB_QKV_FMT_COUNT][2] = {{WGB_Q8F_Q4_0, WGB_Q8F_Q4_0}, {WGB_Q8F_Q8_0, WGB_Q8F_Q8_0},
                                                    {WGB_Q8F_Q4_K, WGB_Q8F_Q4_K}, {WGB_Q8F_Q6_K, WGB_Q8F_Q6_K},
                                                    {WGB_Q8F_Q5_K, WGB_Q8F_Q5_K}, {WGB_Q8F_Q4_K, WGB_Q8F_Q6_K},
                                                    {WGB_Q8F_Q5_K, WGB_Q8F_Q6_K}};

/* The int8 kernels' shapes as WGSL declarations (see wgpu_pipelines.h). */
#define STR_(x) #x
#define STR(x) STR_(x)
#define Q8_QUANT_SHAPE "const WG: u32 = " STR(WGB_Q8_QUANT_WG) "u;\n"
#define Q8_SHAPE "const WG: u32 = " STR(WGB_Q8_WG) "u;\nconst ROWS: u32 = " STR(WGB_Q8_ROWS) "u;\n"
#define Q8_SW_SHAPE                                                                                                    \
    "const TPR: u32 = " STR(WGB_Q8_SW_TPR) "u;\nconst RG: u32 = " STR(WGB_Q8_SW_RG) "u;\nconst ROWS: u32 = " STR(     \
        WGB_Q8_ROWS) "u;\n"
/* the nt kernels' widths, in kernel order (their shapes: wgb_q8_nt_wgsl) */
#define NT_WIDTH(w, r, l) w,
static const int k_nt_width[WGB_Q8_NT_WIDTH_COUNT] = {WGB_Q8_NT_WIDTHS(NT_WIDTH)};
#undef NT_WIDTH
#define NT_RPG(w, r, l) r,
static const int k_nt_rpg[WGB_Q8_NT_WIDTH_COUNT] = {WGB_Q8_NT_WIDTHS(NT_RPG)};
#undef NT_RPG
#define NT_LANES(w, r, l) l,
static const int k_nt_lanes[WGB_Q8_NT_WIDTH_COUNT] = {WGB_Q8_NT_WIDTHS(NT_LANES)};
#undef NT_LANES

/* The prompt attention kernels' head dims and WGSL shapes, in kernel order. */
#define FA_SHAPE                                                                                                       \
    "const ROWS: u32 = " STR(WGB_FA_ROWS) "u;\nconst BC: u32 = " STR(WGB_FA_BC) "u;\nconst TX: u32 = " STR(          \
        WGB_FA_TX) "u;\nconst WG_MEM: u32 = " STR(WGB_FA_WG_MEM) "u;\n"
#define FA_ENTRY(hd) {hd, "hd" #hd, FA_SHAPE "const HD: u32 = " #hd "u;\n"},
static const struct {
    int head_dim;
    const char *tag;
    const char *consts;
} k_fa[] = {WGB_FA_HEAD_DIMS(FA_ENTRY)};

int wgb_flash_kernel(int head_dim, bool half) {
    for (int i = 0; i < (int)(sizeof k_fa / sizeof k_fa[0]); i++)
        if (k_fa[i].head_dim == head_dim) return WGB_K_ATTN_FLASH + 2 * i + (half ? 1 : 0);
    return -1;
}

/* How a kernel is put together: body file, storage bindings ('r' read-only, 'w' read-write,
 * in binding order from 1) and the size of its parameter block. */
typedef struct {
    const char *body;
    const char *access;
    uint32_t param_slots;
    bool params_last; /* parameter block after the storage bindings */
    bool has_subgroup_entry; /* `main_subgroup` between the SUBGROUPS markers */
    bool has_subgroup_variant; /* `main` in a SUBGROUPS and a NO-SUBGROUPS section; one is kept */
    const char *prefix;      /* WGSL put in front of the body (type aliases), or NULL */
    bool needs_f16;          /* built only on devices with shader-f16 */
    const char *lib;         /* kernel files of shared functions put in front of the body (space-separated), or NULL */
    const char *consts;      /* WGSL const declarations put in front (the int8 kernels' shapes), or NULL */
    int q8;                  /* an int8 kernel: 1 + its int8 format (WGB_Q8F_*), whose files go in front too; else 0 */
    int v8;                  /* the fused q/k/v kernel: 1 + v's int8 format (see lib_q8_v_same.wgsl); else 0 */
    const char *tag;         /* label suffix of a variant (e.g. its head_dim), or NULL */
    bool flash;              /* a prompt attention kernel: built on first use (wgb_pipelines_add_flash) */
    int nt, nt_rpg, nt_lanes; /* an nt kernel: its tokens a dispatch, rows and lanes a group (wgpu_q8_gen.h); else 0 */
    int tile_rt, tile_tt;    /* an int8 tile kernel: a thread's rows and tokens (the generated lib); else 0 */
    bool tile_pairs;         /* ... whose sums are stored as gate/up pairs */
} kernel_spec;

#define KV_F32 "alias KV4 = vec4<f32>;\nalias KVS = f32;\n"
#define KV_F16 "enable f16;\nalias KV4 = vec4<f16>;\nalias KVS = f16;\n"
#define ROPE_ADJACENT "const NEOX = false;\n"
#define ROPE_NEOX "const NEOX = true;\n"
#define LIB_Q8 "lib_q8_round"
#define LIB_ROPE "lib_rope"
#define LIB_Q8_ROPE_ATTN "lib_q8_round lib_rope lib_attention"
#define LIB_ATTN "lib_attention"
#define LIB_NT "lib_q8_nt"
#define LIB_MAT_IO "lib_q8_mat_io" /* the plain int8 products' parameters and bindings */
#define LIB_QKV_IO "lib_q8_qkv_io" /* the q/k/v int8 products' */

/* The int8 kernels: one body per idea, for each int8 format. */
static kernel_spec q8_spec_of(int k) {
    static const char *const kv_neox[2] = {KV_F32 ROPE_NEOX, KV_F16 ROPE_NEOX};
    static const char *const kv_adj[2] = {KV_F32 ROPE_ADJACENT, KV_F16 ROPE_ADJACENT};
    if (k >= WGB_K_Q8_QKV) {
        const int v = (k - WGB_K_Q8_QKV) % WGB_QKV_VARIANTS, h = (v & WGB_QKV_F16) != 0;
        const int *f = k_qkv_fmt[(k - WGB_K_Q8_QKV) / WGB_QKV_VARIANTS];
        /* the rope style is a constant of the kernel, so the adjacent-pairs one pays nothing for NeoX */
        return (kernel_spec){.body = "matvec_q8_qkv", .access = "rrrrrwww", .param_slots = 3,
                             .has_subgroup_entry = true, .prefix = v & WGB_QKV_NEOX ? kv_neox[h] : kv_adj[h],
                             .consts = Q8_SHAPE, .needs_f16 = h, .lib = LIB_ROPE,
                             .q8 = 1 + f[0], .v8 = 1 + f[1]};
    }
    if (k >= WGB_K_Q8_BATCH) {
        const wgb_q8_batch_kernel b = wgb_q8_batch_spec((k - WGB_K_Q8_BATCH) % WGB_Q8_BATCH_KERNELS);
        return (kernel_spec){.body = b.body, .access = b.access, .param_slots = 1, .params_last = true,
                             .prefix = b.prefix, .lib = b.lib, .tag = b.tag,
                             .q8 = 1 + (k - WGB_K_Q8_BATCH) / WGB_Q8_BATCH_KERNELS, .tile_rt = b.rt, .tile_tt = b.tt,
                             .tile_pairs = b.pairs};
    }
    if (k >= WGB_K_Q8_MATMUL) { /* the shape's constants in front; tile 0 keeps the plain label */
        const int t = (k - WGB_K_Q8_MATMUL) % WGB_Q8_PROMPT_TILE_COUNT;
        kernel_spec s = {.body = "matmul_q8", .access = "rrrw", .param_slots = 1, .params_last = true,
                         .lib = "lib_q8_batch " LIB_MAT_IO, .consts = wgb_q8_prompt_prefix(t),
                         .tag = t ? wgb_q8_prompt_name(t) : NULL,
                         .q8 = 1 + (k - WGB_K_Q8_MATMUL) / WGB_Q8_PROMPT_TILE_COUNT};
        wgb_q8_prompt_thread(t, &s.tile_rt, &s.tile_tt);
        return s;
    }
    if (k >= WGB_K_Q8_NT_QKV)
        return (kernel_spec){.body = "matvec_q8_nt_qkv", .access = "rrrrrwww", .param_slots = 1, .params_last = true,
                             .has_subgroup_variant = true, .lib = LIB_NT " " LIB_QKV_IO,
                             .q8 = 1 + (k - WGB_K_Q8_NT_QKV) % WGB_Q8F_COUNT,
                             .nt = k_nt_width[(k - WGB_K_Q8_NT_QKV) / WGB_Q8F_COUNT],
                             .nt_rpg = k_nt_rpg[(k - WGB_K_Q8_NT_QKV) / WGB_Q8F_COUNT],
                             .nt_lanes = k_nt_lanes[(k - WGB_K_Q8_NT_QKV) / WGB_Q8F_COUNT]};
    if (k >= WGB_K_Q8_NT_SWIGLU)
        return (kernel_spec){.body = "matvec_q8_nt_swiglu", .access = "rrrrw", .param_slots = 1,
                             .has_subgroup_variant = true, .lib = LIB_NT,
                             .q8 = 1 + (k - WGB_K_Q8_NT_SWIGLU) % WGB_Q8F_COUNT,
                             .nt = k_nt_width[(k - WGB_K_Q8_NT_SWIGLU) / WGB_Q8F_COUNT],
                             .nt_rpg = k_nt_rpg[(k - WGB_K_Q8_NT_SWIGLU) / WGB_Q8F_COUNT],
                             .nt_lanes = k_nt_lanes[(k - WGB_K_Q8_NT_SWIGLU) / WGB_Q8F_COUNT]};
    if (k >= WGB_K_Q8_NT)
        return (kernel_spec){.body = "matvec_q8_nt", .access = "rrrw", .param_slots = 1, .params_last = true,
                             .has_subgroup_variant = true, .lib = LIB_NT " " LIB_MAT_IO,
                             .q8 = 1 + (k - WGB_K_Q8_NT) % WGB_Q8F_COUNT,
                             .nt = k_nt_width[(k - WGB_K_Q8_NT) / WGB_Q8F_COUNT],
                             .nt_rpg = k_nt_rpg[(k - WGB_K_Q8_NT) / WGB_Q8F_COUNT],
                             .nt_lanes = k_nt_lanes[(k - WGB_K_Q8_NT) / WGB_Q8F_COUNT]};
    if (k >= WGB_K_Q8_SWIGLU)
        return (kernel_spec){.body = "matvec_q8_swiglu", .access = "rrrrwww", .param_slots = 1, .consts = Q8_SW_SHAPE,
                             .lib = LIB_Q8, .q8 = 1 + k - WGB_K_Q8_SWIGLU};
    return (kernel_spec){.body = "matvec_q8", .access = "rrrw", .param_slots = 1, .params_last = true,
                         .has_subgroup_entry = true, .consts = Q8_SHAPE, .q8 = 1 + k - WGB_K_Q8_MATVEC};
}

static kernel_spec spec_of(int k, int *fmt) {
    *fmt = -1;
    if (k >= WGB_K_Q8_MATVEC) return q8_spec_of(k);
    if (k < WGB_K_MATMUL) {
        *fmt = k - WGB_K_MATVEC;
        return (kernel_spec){.body = "matvec", .access = "rrw", .param_slots = 1};
    }
    if (k < WGB_K_GET_ROWS) {
        *fmt = k - WGB_K_MATMUL;
        return (kernel_spec){.body = "matmul", .access = "rrw", .param_slots = 1};
    }
    if (k < WGB_K_RMS_NORM) {
        *fmt = k - WGB_K_GET_ROWS;
        return (kernel_spec){.body = "get_rows", .access = "rw", .param_slots = 2};
    }
    if (k >= WGB_K_ATTN_FLASH && k <= WGB_K_ATTN_FLASH_LAST) {
        const int v = k - WGB_K_ATTN_FLASH, h = v & 1;
        return (kernel_spec){.body = "attention_flash", .access = "rrrww", .param_slots = 1,
                             .prefix = h ? KV_F16 : KV_F32, .needs_f16 = h, .lib = LIB_ATTN,
                             .consts = k_fa[v / 2].consts, .tag = k_fa[v / 2].tag, .flash = true};
    }
    switch (k) {
    case WGB_K_RMS_NORM: return (kernel_spec){.body = "rms_norm", .access = "rrw", .param_slots = 1};
    case WGB_K_ROPE: return (kernel_spec){.body = "rope", .access = "w", .param_slots = 3, .lib = LIB_ROPE};
    case WGB_K_KV_STORE: return (kernel_spec){.body = "kv_store", .access = "rrww", .param_slots = 1, .prefix = KV_F32};
    case WGB_K_ATTENTION:
        return (kernel_spec){
            .body = "attention", .access = "rrrwwww", .param_slots = 7, .prefix = KV_F32, .has_subgroup_variant = true,
            .lib = LIB_Q8_ROPE_ATTN};
    case WGB_K_KV_STORE_ROWS:
        return (kernel_spec){
            .body = "kv_store_rows", .access = "rrww", .param_slots = 7, .prefix = KV_F32, .lib = LIB_ROPE};
    case WGB_K_KV_STORE_ROWS_F16:
        return (kernel_spec){
            .body = "kv_store_rows", .access = "rrww", .param_slots = 7, .prefix = KV_F16, .needs_f16 = true,
            .lib = LIB_ROPE};
    case WGB_K_KV_STORE_F16:
        return (kernel_spec){
            .body = "kv_store", .access = "rrww", .param_slots = 1, .prefix = KV_F16, .needs_f16 = true};
    case WGB_K_ATTENTION_F16:
        return (kernel_spec){.body = "attention",
                             .access = "rrrwwww",
                             .param_slots = 7,
                             .prefix = KV_F16,
                             .needs_f16 = true,
                             .has_subgroup_variant = true,
                             .lib = LIB_Q8_ROPE_ATTN};
    case WGB_K_ATTN_COMBINE:
        return (kernel_spec){.body = "attention_combine", .access = "rwww", .param_slots = 1,
                             .lib = LIB_Q8 " " LIB_ATTN};
    case WGB_K_SWIGLU: return (kernel_spec){.body = "swiglu", .access = "rrw", .param_slots = 1};
    case WGB_K_ADD: return (kernel_spec){.body = "add", .access = "wr", .param_slots = 1};
    case WGB_K_COPY: return (kernel_spec){.body = "copy", .access = "rw", .param_slots = 1};
    case WGB_K_QUANTIZE_X_Q8:
        return (kernel_spec){
            .body = "quantize_x_q8", .access = "rww", .param_slots = 1, .params_last = true, .lib = LIB_Q8,
            .consts = Q8_QUANT_SHAPE};
    case WGB_K_RMS_NORM_Q8:
        return (kernel_spec){.body = "rms_norm_q8", .access = "rrwww", .param_slots = 1, .lib = LIB_Q8};
    default: return (kernel_spec){.body = "argmax", .access = "rw", .param_slots = 1};
    }
}

/* Kernel text: from WGLLM_KERNEL_DIR when set (development), else the embedded copy.
 * Returns a malloc'ed string or NULL with a message. */
static char *load_kernel(const char *name, char *err, size_t err_size) {
    const char *dir = getenv("WGLLM_KERNEL_DIR");
    if (!dir || !*dir) {
        const char *src = wg_kernel_source(name);
        if (!src) {
            snprintf(err, err_size, "WebGPU: kernel '%s' is not built in", name);
            return NULL;
        }
        return strdup(src);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.wgsl", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "WebGPU: cannot open kernel %s (WGLLM_KERNEL_DIR)", path);
        return NULL;
    }
    char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        buf[len] = '\0';
    } else {
        free(buf);
        buf = NULL;
        snprintf(err, err_size, "WebGPU: cannot read kernel %s", path);
    }
    fclose(f);
    return buf;
}

/* Removes the lines from the one containing `begin_marker` to the one containing
 * `end_marker`. False if the markers are missing or out of order. */
/* Removes every section between the markers (a kernel's and its libraries'); false if there
 * is none or one is not closed. */
static bool cut_section(char *text, const char *begin_marker, const char *end_marker) {
    bool cut = false;
    for (char *begin; (begin = strstr(text, begin_marker)) != NULL; cut = true) {
        char *end = strstr(begin, end_marker);
        if (!end) return false;
        char *after = strchr(end, '\n');
        after = after ? after + 1 : end + strlen(end);
        memmove(begin, after, strlen(after) + 1);
    }
    return cut;
}

/* The SUBGROUPS-BEGIN/END section goes on devices without the subgroups feature (their
 * compiler rejects the subgroup builtins); in kernels with a fallback section, the
 * NO-SUBGROUPS-BEGIN/END section goes on devices with it. */
static bool cut_subgroups(char *text) { return cut_section(text, "// SUBGROUPS-BEGIN", "// SUBGROUPS-END"); }
static bool cut_fallback(char *text) { return cut_section(text, "// NO-SUBGROUPS-BEGIN", "// NO-SUBGROUPS-END"); }

typedef struct {
    bool done;
    WGPUPopErrorScopeStatus status;
    WGPUErrorType type;
    char message[2048];
} scope_result;

static void on_pop(WGPUPopErrorScopeStatus status, WGPUErrorType type, WGPUStringView message, void *u1, void *u2) {
    scope_result *r = u1;
    r->status = status;
    r->type = type;
    wg_sv_copy(message, r->message, sizeof r->message);
    r->done = true;
}

/* Pops one error scope; false with the message if it caught an error. The result lives
 * on the heap: after a timeout the callback may still come. */
static bool pop_scope(wg_device *d, const char *what, char *err, size_t err_size) {
    scope_result *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    WGPUPopErrorScopeCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_pop, r, NULL};
    d->api->DevicePopErrorScope(d->device, cb);
    if (!wg_device_wait(d, &r->done, WG_GPU_WAIT_TIMEOUT_MS, what, err, err_size)) return false; /* r leaks */
    bool ok = r->status == WGPUPopErrorScopeStatus_Success && r->type == WGPUErrorType_NoError;
    if (!ok) snprintf(err, err_size, "%s: %s", what, r->message[0] ? r->message : "WebGPU error");
    free(r);
    return ok;
}

/* *text = head + *text (head NULL: unchanged); false with a message (text freed) if out of memory. */
static bool prepend(char **text, const char *head, char *err, size_t err_size) {
    if (!head) return true;
    char *t = malloc(strlen(head) + strlen(*text) + 2);
    if (!t) {
        free(*text);
        *text = NULL;
        snprintf(err, err_size, "out of memory");
        return false;
    }
    sprintf(t, "%s\n%s", head, *text);
    free(*text);
    *text = t;
    return true;
}

/* The kernel files named in `list` (space-separated, or NULL) put in front of *text; false
 * with a message (text freed) when one is missing. */
static bool prepend_libs(char **text, const char *list, char *err, size_t err_size) {
    for (const char *l = list; l && *l;) {
        size_t len = strcspn(l, " ");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), l);
        l += len + (l[len] == ' ');
        char *lib = load_kernel(name, err, err_size);
        bool ok = lib && prepend(text, lib, err, err_size);
        free(lib);
        if (!ok) {
            free(*text);
            *text = NULL;
            return false;
        }
    }
    return true;
}

/* Every `from` in text replaced by `to`, of the same length. */
static void rename_all(char *text, const char *from, const char *to) {
    const size_t n = strlen(from);
    for (char *p = text; (p = strstr(p, from)) != NULL; p += n) memcpy(p, to, n);
}

/* The fused q/k/v kernel's v8_ functions (lib_q8_v_same.wgsl) for v of int8 format f_v,
 * q and k of f_qk: aliases of the q8_ ones, or f_v's q8dot file renamed. */
static bool prepend_v8(char **text, int f_qk, int f_v, char *err, size_t err_size) {
    if (f_v == f_qk) return prepend_libs(text, "lib_q8_v_same", err, err_size);
    char *lib = load_kernel(k_q8_dot[f_v], err, err_size);
    if (!lib) {
        free(*text);
        *text = NULL;
        return false;
    }
    rename_all(lib, "q8_", "v8_");
    rename_all(lib, "Q8", "V8");
    bool ok = prepend(text, lib, err, err_size);
    free(lib);
    /* what v's file needs, where q and k do not bring it */
    const char *extra = k_q8_extra[f_v], *have = k_q8_extra[f_qk];
    return ok && (!extra || (have && strcmp(extra, have) == 0) || prepend_libs(text, extra, err, err_size));
}

static bool build_one(wg_device *d, int k, bool subgroups, wgb_pipeline *out, char *err, size_t err_size) {
    const wg_wgpu *api = d->api;
    int fmt;
    kernel_spec s = spec_of(k, &fmt);
    char label[64];
    if (fmt >= 0) snprintf(label, sizeof label, "%s_%s", s.body, k_fmt_names[fmt]);
    else if (s.q8) /* matvec_q8_swiglu of Q4_K: matvec_q4_k_q8_swiglu; a v of another format: ..._v_q6_k */
        snprintf(label, sizeof label, "%.*s%s_%s%s%s%s", (int)(strstr(s.body, "q8") - s.body), s.body,
                 k_fmt_names[k_q8_fmt[s.q8 - 1]], strstr(s.body, "q8"), s.v8 && s.v8 != s.q8 ? "_v_" : "",
                 s.v8 && s.v8 != s.q8 ? k_fmt_names[k_q8_fmt[s.v8 - 1]] : "", s.needs_f16 ? "_f16" : "");
    else snprintf(label, sizeof label, "%s%s%s%s", s.body, s.tag ? "_" : "", s.tag ? s.tag : "", s.needs_f16 ? "_f16" : "");
    if (s.nt > WGB_Q8_NT) snprintf(label + strlen(label), sizeof label - strlen(label), "_w%d", s.nt);
    if (s.nt && s.nt_rpg != 2) snprintf(label + strlen(label), sizeof label - strlen(label), "_r%d", s.nt_rpg);
    if (s.nt && s.nt_lanes != WGB_Q8_NT_TPR)
        snprintf(label + strlen(label), sizeof label - strlen(label), "_l%d", s.nt_lanes);
    if (s.q8 && s.tag) /* a prompt tile's shape: matmul_q4_0_q8_128x128 */
        snprintf(label + strlen(label), sizeof label - strlen(label), "_%s", s.tag);

    char *body = load_kernel(s.body, err, err_size);
    if (!body) return false;
    char *text = body;
    if (fmt >= 0) {
        char fname[32];
        snprintf(fname, sizeof fname, "fmt_%s", k_fmt_names[fmt]);
        char *head = load_kernel(fname, err, err_size);
        /* matvec also needs the format's block dot product, matmul its weight fetch */
        char *dot = NULL;
        if (head && k < WGB_K_MATMUL) {
            snprintf(fname, sizeof fname, "dot_%s", k_fmt_names[fmt]);
            dot = load_kernel(fname, err, err_size);
        } else if (head && k < WGB_K_GET_ROWS) {
            dot = load_kernel(fmt == WGB_FMT_Q4_0 ? "matmul_fetch_q4_0" : "matmul_fetch_any", err, err_size);
        }
        bool have = head && (dot || k >= WGB_K_GET_ROWS);
        text = have ? malloc(strlen(head) + (dot ? strlen(dot) : 0) + strlen(body) + 3) : NULL;
        if (text) sprintf(text, "%s\n%s\n%s", head, dot ? dot : "", body);
        else if (have) snprintf(err, err_size, "out of memory");
        free(head);
        free(dot);
        free(body);
        if (!text) return false;
    }
    /* the libraries named in s.lib and the int8 format's files, each put in front */
    if (!prepend_libs(&text, s.lib, err, err_size) ||
        (s.q8 && (!prepend_libs(&text, "lib_q8_x", err, err_size) ||
                  !prepend_libs(&text, k_q8_extra[s.q8 - 1], err, err_size) ||
                  !prepend_libs(&text, k_q8_dot[s.q8 - 1], err, err_size))) ||
        (s.v8 && !prepend_v8(&text, s.q8 - 1, s.v8 - 1, err, err_size)) || !prepend(&text, s.consts, err, err_size) ||
        !prepend(&text, WGB_SHAPES_WGSL, err, err_size))
        return false;
    if (s.q8) { /* how many tokens' x each decoded weight unit meets (q8dot_q4_0.wgsl's choice) */
        char line[48];
        snprintf(line, sizeof line, "const X_TOKENS: u32 = %du;\n", s.nt ? s.nt : 1);
        if (!prepend(&text, line, err, err_size)) return false;
    }
    if (s.nt || s.tile_rt) {
        char *acc = s.nt ? wgb_q8_nt_wgsl(s.nt, s.nt_rpg, s.nt_lanes, subgroups ? d->gpu->info[d->adapter_index].subgroup_min_size : 0) : wgb_q8_tile_wgsl(s.tile_rt, s.tile_tt, s.tile_pairs);
        const bool ok = acc && prepend(&text, acc, err, err_size);
        if (!acc) {
            snprintf(err, err_size, "out of memory");
            free(text);
        }
        free(acc);
        if (!ok) return false;
    }
    if (!prepend(&text, s.prefix, err, err_size)) return false; /* first: `enable` directives must precede everything */
    const bool use_subgroups = s.has_subgroup_entry && subgroups;
    if (((s.has_subgroup_entry || s.has_subgroup_variant) && !subgroups && !cut_subgroups(text)) ||
        (s.has_subgroup_variant && subgroups && !cut_fallback(text))) {
        snprintf(err, err_size, "WebGPU: kernel '%s' lacks its SUBGROUPS-BEGIN/END markers", label);
        free(text);
        return false;
    }

    int n = (int)strlen(s.access);
    const uint32_t param_binding = s.params_last ? (uint32_t)n : 0, first_storage = s.params_last ? 0 : 1;
    uint32_t written = 0;
    WGPUBindGroupLayoutEntry entries[1 + WGB_MAX_STORAGE];
    for (int i = 0; i <= n; i++) {
        WGPUBindGroupLayoutEntry e = WGPU_BIND_GROUP_LAYOUT_ENTRY_INIT;
        e.visibility = WGPUShaderStage_Compute;
        if (i == 0) {
            e.binding = param_binding;
            e.buffer.type = WGPUBufferBindingType_Uniform;
            e.buffer.hasDynamicOffset = WGPU_TRUE;
            e.buffer.minBindingSize = (uint64_t)s.param_slots * WGB_SLOT_BYTES;
        } else {
            e.binding = first_storage + (uint32_t)(i - 1);
            bool w = s.access[i - 1] == 'w';
            if (w) written |= 1u << (i - 1);
            e.buffer.type = w ? WGPUBufferBindingType_Storage : WGPUBufferBindingType_ReadOnlyStorage;
        }
        entries[i] = e;
    }

    d->api->DevicePushErrorScope(d->device, WGPUErrorFilter_Validation);
    WGPUBindGroupLayoutDescriptor ld = WGPU_BIND_GROUP_LAYOUT_DESCRIPTOR_INIT;
    ld.label = wg_sv(label);
    ld.entryCount = (size_t)n + 1;
    ld.entries = entries;
    WGPUBindGroupLayout bgl = api->DeviceCreateBindGroupLayout(d->device, &ld);
    WGPUPipelineLayoutDescriptor pld = WGPU_PIPELINE_LAYOUT_DESCRIPTOR_INIT;
    pld.bindGroupLayoutCount = 1;
    pld.bindGroupLayouts = &bgl;
    WGPUPipelineLayout pl = api->DeviceCreatePipelineLayout(d->device, &pld);

    WGPUShaderSourceWGSL src = WGPU_SHADER_SOURCE_WGSL_INIT;
    src.code = wg_sv(text);
    WGPUShaderModuleDescriptor md = {&src.chain, wg_sv(label)};
    WGPUShaderModule mod = api->DeviceCreateShaderModule(d->device, &md);
    WGPUComputePipelineDescriptor pd = WGPU_COMPUTE_PIPELINE_DESCRIPTOR_INIT;
    pd.label = wg_sv(label);
    pd.layout = pl;
    pd.compute.module = mod;
    pd.compute.entryPoint = wg_sv(use_subgroups ? "main_subgroup" : "main");
    WGPUComputePipeline pipe = api->DeviceCreateComputePipeline(d->device, &pd);
    char what[96];
    snprintf(what, sizeof what, "WGSL kernel '%s'", label);
    bool ok = pop_scope(d, what, err, err_size);
    if (mod) api->ShaderModuleRelease(mod);
    if (pl) api->PipelineLayoutRelease(pl);
    free(text);
    if (!ok || !pipe || !bgl) {
        if (ok) snprintf(err, err_size, "%s: pipeline creation failed", what);
        if (pipe) api->ComputePipelineRelease(pipe);
        if (bgl) api->BindGroupLayoutRelease(bgl);
        return false;
    }
    out->pipe = pipe;
    snprintf(out->label, sizeof out->label, "%s", label);
    out->layout = bgl;
    out->n_storage = n;
    out->first_storage = first_storage;
    out->param_binding = param_binding;
    out->written = written;
    out->param_slots = s.param_slots;
    return true;
}

/* The products built with the first weight of their format: each format's tiled matmul (the
 * int8 kernels, after WGB_K_Q8_MATVEC, are built per format by wgb_pipelines_add_q8). */
static bool per_format(int k) { return k >= WGB_K_MATMUL && k < WGB_K_GET_ROWS; }

bool wgb_pipelines_create(wg_device *d, bool subgroups, bool f16, wgb_pipelines *p, char *err, size_t err_size) {
    memset(p, 0, sizeof *p);
    p->subgroups = subgroups;
    p->f16 = f16;
    for (int k = 0; k < WGB_K_Q8_MATVEC; k++) { /* the int8 kernels come after, per format */
        int fmt;
        const kernel_spec s = spec_of(k, &fmt);
        if ((s.needs_f16 && !f16) || s.flash) continue;
        if (per_format(k)) continue; /* with the first weight of their format */
        if (!build_one(d, k, subgroups, &p->k[k], err, err_size)) {
            wgb_pipelines_destroy(d, p);
            return false;
        }
    }
    return true;
}

/* Kernel k unless it is built or needs what the device lacks. */
static bool build_missing(wg_device *d, wgb_pipelines *p, int k, char *err, size_t err_size) {
    int fmt;
    if (p->k[k].pipe || (spec_of(k, &fmt).needs_f16 && !p->f16)) return true;
    return build_one(d, k, p->subgroups, &p->k[k], err, err_size);
}

bool wgb_pipelines_add_q8(wg_device *d, wgb_pipelines *p, int f, char *err, size_t err_size) {
    if (f < 0 || f >= WGB_Q8F_COUNT) return false;
    if (p->q8_built[f]) return true;
    /* the nt kernels of the first width; the wider ones at first use (wgb_pipelines_add_nt) */
    static const int family[] = {WGB_K_Q8_MATVEC, WGB_K_Q8_SWIGLU, WGB_K_Q8_NT, WGB_K_Q8_NT_SWIGLU, WGB_K_Q8_NT_QKV};
    for (size_t i = 0; i < sizeof family / sizeof family[0]; i++)
        if (!build_missing(d, p, family[i] + f, err, err_size)) return false;
    if (!build_missing(d, p, wgb_q8_prompt_kernel(f, 0), err, err_size)) return false; /* the others on first use */
    for (int v = 0; v < WGB_Q8_BATCH_KERNELS; v++)
        if (!build_missing(d, p, WGB_K_Q8_BATCH + f * WGB_Q8_BATCH_KERNELS + v, err, err_size)) return false;
    p->q8_built[f] = true;
    for (int q = 0; q < WGB_QKV_FMT_COUNT; q++) {
        if (!p->q8_built[k_qkv_fmt[q][0]] || !p->q8_built[k_qkv_fmt[q][1]]) continue;
        for (int v = 0; v < WGB_QKV_VARIANTS; v++)
            if (!build_missing(d, p, WGB_K_Q8_QKV + WGB_QKV_VARIANTS * q + v, err, err_size)) return false;
    }
    return true;
}

bool wgb_pipelines_add_format(wg_device *d, wgb_pipelines *p, int fmt, char *err, size_t err_size) {
    if (fmt < 0 || fmt >= WGB_FMT_COUNT) return false;
    return build_missing(d, p, WGB_K_MATMUL + fmt, err, err_size);
}

bool wgb_pipelines_add_nt(wg_device *d, wgb_pipelines *p, int f, int width, char *err, size_t err_size) {
    if (f < 0 || f >= WGB_Q8F_COUNT || width < 0 || width >= WGB_Q8_NT_WIDTH_COUNT || !p->q8_built[f]) return false;
    const int o = width * WGB_Q8F_COUNT + f;
    return build_missing(d, p, WGB_K_Q8_NT + o, err, err_size) && build_missing(d, p, WGB_K_Q8_NT_SWIGLU + o, err, err_size) &&
           build_missing(d, p, WGB_K_Q8_NT_QKV + o, err, err_size);
}

bool wgb_pipelines_add_flash(wg_device *d, wgb_pipelines *p, int k, char *err, size_t err_size) {
    int fmt;
    if (err_size) err[0] = '\0';
    if (k < WGB_K_ATTN_FLASH || k > WGB_K_ATTN_FLASH_LAST) return false;
    if (p->k[k].pipe) return true;
    if ((spec_of(k, &fmt).needs_f16 && !p->f16) || d->limits.max_compute_workgroup_storage_size < WGB_FA_WG_MEM)
        return false;
    return build_one(d, k, p->subgroups, &p->k[k], err, err_size);
}

bool wgb_pipelines_add_q8_prompt(wg_device *d, wgb_pipelines *p, int f, int t, char *err, size_t err_size) {
    if (err_size) err[0] = '\0';
    if (f < 0 || f >= WGB_Q8F_COUNT || t < 0 || t >= WGB_Q8_PROMPT_TILE_COUNT || !p->q8_built[f]) return false;
    if (t > 0 && d->limits.max_compute_workgroup_storage_size < wgb_q8_prompt_wg_bytes(t)) return false;
    return build_missing(d, p, wgb_q8_prompt_kernel(f, t), err, err_size);
}

void wgb_pipelines_destroy(wg_device *d, wgb_pipelines *p) {
    for (int k = 0; k < WGB_K_COUNT; k++) {
        if (p->k[k].pipe) d->api->ComputePipelineRelease(p->k[k].pipe);
        if (p->k[k].layout) d->api->BindGroupLayoutRelease(p->k[k].layout);
    }
    memset(p->k, 0, sizeof p->k);
    memset(p->q8_built, 0, sizeof p->q8_built);
}
