/* `wgllm info`: a GGUF file's architecture as the loader resolves it, its metadata and
 * tensor table. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/types.h"

static const char *yes_no(bool b) { return b ? "yes" : "no"; }

/* The family the file declares and what the loader resolves from it; a file it would
 * refuse says why, and its metadata and tensors are still listed. */
static void print_architecture(const gguf_file *f) {
    char err[256];
    wg_hparams hp;
    wg_arch_features ft;
    const wg_arch *a = wg_arch_of_file(f, err, sizeof err);
    if (!a) {
        printf("architecture: not loadable: %s\n\n", err);
        return;
    }
    printf("architecture: %s (keys %s.*)\n", a->name, a->prefix);
    if (!wg_hparams_load(f, &hp, err, sizeof err) || !wg_arch_features_resolve(a, f, &ft, err, sizeof err)) {
        printf("  not loadable: %s\n\n", err);
        return;
    }
    char window[32] = "none";
    if (hp.swa_window > 0) snprintf(window, sizeof window, "%d", hp.swa_window);
    printf("  rope: %s, %d of %d dims per head, base %g, scaling %s\n", hp.rope_neox ? "neox" : "adjacent",
           hp.rope_dims, hp.head_dim, (double)hp.rope_base,
           hp.rope_llama3          ? "llama3"
           : hp.rope_scale != 1.0f ? "linear"
                                   : "none");
    printf("  attention: %d heads, %d kv heads, head size %d, sliding window %s\n", hp.n_head, hp.n_head_kv,
           hp.head_dim, window);
    printf("  q/k/v bias: %s, q/k norm: %s, fused qkv: %s, fused gate/up: %s, output: %s\n", yes_no(ft.qkv_bias),
           yes_no(ft.qk_norm), yes_no(ft.fused_qkv), yes_no(ft.fused_gate_up), ft.tied_output ? "tied" : "separate");
    printf("  embedding scale: %s, logit softcap: %s\n\n", yes_no(a->embd_scale), yes_no(a->logit_softcap));
}

int cmd_info(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            printf("usage: wgllm info FILE\n");
            return 0;
        }
        return usage_error("info", argc == 2 ? "unknown option '%s'" : "expected exactly one FILE%s",
                           argc == 2 ? argv[1] : "");
    }
    char err[512];
    gguf_file *f = gguf_open(argv[1], err, sizeof err);
    if (!f) {
        fprintf(stderr, "wgllm info: error: %s: %s\n", argv[1], err);
        return 1;
    }
    printf("file: %s\nGGUF version %u, %zu bytes, alignment %u, data at offset %llu\n\n", argv[1], gguf_version(f),
           gguf_file_size(f), gguf_alignment(f), (unsigned long long)gguf_data_offset(f));
    print_architecture(f);
    printf("metadata (%lld keys):\n", (long long)gguf_n_kv(f));
    char buf[512];
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_kv_format(f, i, buf, sizeof buf);
        printf("  %-44s %-8s %s\n", gguf_kv_key(f, i), gguf_vtype_name(gguf_kv_type(f, i)), buf);
    }
    printf("\ntensors (%lld):\n  %-36s %-6s %-22s %12s %12s\n", (long long)gguf_n_tensors(f), "name", "type", "shape",
           "bytes", "offset");
    uint64_t total = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor_info *t = gguf_tensor(f, i);
        char shape[64];
        int n = snprintf(shape, sizeof shape, "[%lld", (long long)t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims && n > 0 && (size_t)n < sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, ", %lld", (long long)t->ne[d]);
        if (n > 0 && (size_t)n < sizeof shape) snprintf(shape + n, sizeof shape - (size_t)n, "]");
        const char *tn = wg_type_name(t->type);
        printf("  %-36s %-6s %-22s %12llu %12llu\n", t->name, tn ? tn : "?", shape, (unsigned long long)t->nbytes,
               (unsigned long long)t->offset);
        total += t->nbytes;
    }
    printf("\ntotal tensor data: %llu bytes (%.2f MiB)\n", (unsigned long long)total, (double)total / (1024.0 * 1024.0));
    gguf_close(f);
    return 0;
}
