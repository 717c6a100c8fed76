/* A WASI command over the wasm32 engine: loads a GGUF, prints the prompt's ids and
 * then n greedy ids, one line each, for comparison with the native build; the backend
 * that ran (for WebGPU, its adapter) goes to stderr.
 * Usage: wgllm_probe MODEL PROMPT N [cpu|webgpu] (default cpu) */
#include "wgllm.h"

#include "backend/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static bool print_id(wgllm_token t, void *user) {
    (void)user;
    printf("%d\n", (int)t);
    return true;
}

int main(int argc, char **argv) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = WGLLM_BACKEND_CPU;
    if ((argc != 4 && argc != 5) || (argc == 5 && !wgllm_backend_kind_from_name(argv[4], &mp.backend))) {
        fprintf(stderr, "usage: %s MODEL PROMPT N [cpu|webgpu]\n", argv[0]);
        return 2;
    }
    char err[512] = "";
    mp.n_threads = 1;
    wgllm_model *m = NULL;
    if (wgllm_model_load(argv[1], &mp, &m, err, sizeof err) != WGLLM_OK) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    wgllm_model_info info;
    wgllm_model_get_info(m, &info);
    fprintf(stderr, "backend: %s\n", info.backend);
    if (mp.backend == WGLLM_BACKEND_WEBGPU) { /* which adapter the page's WebGPU gave */
        wg_backend_device_list *l = wg_backend_devices_list(WGLLM_BACKEND_WEBGPU, err, sizeof err);
        for (int i = 0; l && i < l->n_devices; i++)
            fprintf(stderr, "adapter %d: %s (%s)\n", i, l->devices[i].name, l->devices[i].vendor);
        wg_backend_devices_free(l);
    }
    wgllm_context_params cp = wgllm_context_default_params();
    wgllm_context *c = NULL;
    if (wgllm_context_create(m, &cp, &c, err, sizeof err) != WGLLM_OK) {
        fprintf(stderr, "context: %s\n", err);
        wgllm_model_free(m);
        return 1;
    }
    wgllm_token ids[512];
    int64_t n = wgllm_tokenize(m, argv[2], strlen(argv[2]), wgllm_add_bos_default(m), ids, 512);
    int rc = 1;
    double t0 = now_ms(), t1 = 0;
    int64_t got = -1;
    if (n <= 0 || n > 512 || wgllm_eval(c, ids, (int)n, false) != WGLLM_OK) {
        fprintf(stderr, "prompt: %s\n", wgllm_context_error(c));
    } else if (t1 = now_ms(), (got = wgllm_generate_greedy(c, atoi(argv[3]), print_id, NULL, false)) < 0) {
        fprintf(stderr, "generate: %s\n", wgllm_context_error(c));
    } else {
        double t2 = now_ms();
        fprintf(stderr, "prompt: %d tokens in %.1f ms; generated %lld tokens in %.1f ms (%.1f tokens/s)\n", (int)n,
                t1 - t0, (long long)got, t2 - t1, got > 0 && t2 > t1 ? 1e3 * (double)got / (t2 - t1) : 0.0);
        rc = 0;
    }
    wgllm_context_free(c);
    wgllm_model_free(m);
    return rc;
}
