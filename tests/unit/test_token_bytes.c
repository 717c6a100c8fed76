/* wgllm_token_bytes: the public view of one token's piece in running text. Pieces of
 * an encoded text concatenate to that text (with the dummy-prefix space), control
 * tokens are empty, and bad ids or a NULL model give NULL with length 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wgllm.h"

static void check_model(const char *path) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.vocab_only = true;
    wgllm_model *m = NULL;
    char err[512];
    if (wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        CHECK_MSG(0, "load %s: %s", path, err);
        return;
    }
    static const char text[] = "Once upon a time, Lily and Tom played.";
    wgllm_token ids[64];
    int64_t n = wgllm_tokenize(m, text, strlen(text), false, ids, 64);
    CHECK(n > 1 && n <= 64);
    char joined[256] = "";
    size_t used = 0;
    for (int64_t i = 0; i < n && i < 64; i++) {
        size_t len = 99;
        const char *p = wgllm_token_bytes(m, ids[i], &len);
        CHECK(p != NULL);
        if (!p || used + len >= sizeof joined) break;
        memcpy(joined + used, p, len);
        used += len;
    }
    joined[used] = '\0';
    /* SentencePiece adds a dummy-prefix space that the whole-sequence decoder strips. */
    CHECK_MSG(strcmp(joined, " Once upon a time, Lily and Tom played.") == 0, "joined '%s'", joined);

    size_t len = 99;
    CHECK(wgllm_token_bytes(m, wgllm_token_bos(m), &len) != NULL && len == 0);
    len = 99;
    CHECK(wgllm_token_bytes(m, -1, &len) == NULL && len == 0);
    wgllm_model_info info;
    wgllm_model_get_info(m, &info);
    len = 99;
    CHECK(wgllm_token_bytes(m, info.n_vocab, &len) == NULL && len == 0);
    CHECK(wgllm_token_bytes(m, info.n_vocab - 1, NULL) != NULL); /* len may be NULL */
    wgllm_model_free(m);
}

int main(void) {
    const char *shared = getenv("WGLLM_SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/aidreams260K-f32.gguf", shared ? shared : "../shared");
    check_model(path);
    size_t len = 99;
    CHECK(wgllm_token_bytes(NULL, 0, &len) == NULL && len == 0);
    CHECK_DONE();
}
