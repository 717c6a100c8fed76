/* libFuzzer target for the model loader (GGUF metadata, hyperparameters, the
 * architecture table, tensor views, the vocabulary): the input becomes a file in
 * memory (memfd) that wgllm_model_load opens by its /proc/self/fd path, loaded on
 * the CPU backend with one thread as vocab_only, with weights, and with a private
 * copy. A refused file must leave a one-line message; an accepted one must give
 * consistent info. Seeds: written by tests/fuzz/make_model_corpus.py (scripts/test.sh). */
#include "wgllm.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) __builtin_trap(); \
    } while (0)

static void load_once(const char *path, bool vocab_only, bool private_copy) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = WGLLM_BACKEND_CPU;
    mp.n_threads = 1;
    mp.vocab_only = vocab_only;
    mp.private_copy = private_copy;
    wgllm_model *m = NULL;
    char err[512] = "";
    wgllm_status st = wgllm_model_load(path, &mp, &m, err, sizeof err);
    if (st != WGLLM_OK) {
        REQUIRE(m == NULL);
        REQUIRE(err[0] != '\0' && strchr(err, '\n') == NULL);
        return;
    }
    REQUIRE(m != NULL);
    wgllm_model_info info;
    wgllm_model_get_info(m, &info);
    REQUIRE(info.n_vocab > 0);
    REQUIRE(info.name != NULL && info.backend != NULL && info.arch != NULL);
    (void)strlen(info.name);
    (void)strlen(info.arch);
    if (!vocab_only) REQUIRE(info.n_embd > 0 && info.n_layer > 0 && info.n_head > 0 && info.head_dim > 0);
    wgllm_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1; /* one memfd for the whole run, rewritten per input */
    if (fd < 0) {
        fd = memfd_create("fuzz_model_load", MFD_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    REQUIRE(ftruncate(fd, 0) == 0);
    size_t off = 0;
    while (off < size) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
        REQUIRE(n > 0);
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    load_once(path, true, false);
    load_once(path, false, false);
    load_once(path, false, true);
    return 0;
}
