/* Loading webgpu.h libraries wgllm cannot use: each is refused with a message that names the
 * library and what is wrong, before any of its functions is called (an older revision
 * exports the same names with other layouts, and the first call would crash). */
#include <stdio.h>
#include <string.h>

#include "backend/webgpu/wgpu_loader.h"
#include "check.h"

static bool api_empty(const wg_wgpu *api) {
    static const wg_wgpu zero;
    return memcmp(api, &zero, sizeof zero) == 0;
}

static void expect_refused(const char *path, const char *const *words, size_t n_words) {
    wg_wgpu api;
    char err[1024] = "";
    CHECK_MSG(!wg_wgpu_load(&api, path, err, sizeof err), "%s was loaded", path);
    CHECK_MSG(api_empty(&api), "%s: the table was left filled", path);
    CHECK_MSG(strstr(err, path) != NULL, "message does not name %s: %s", path, err);
    CHECK_MSG(strchr(err, '\n') == NULL, "message of more than one line: %s", err);
    for (size_t i = 0; i < n_words; i++) CHECK_MSG(strstr(err, words[i]) != NULL, "'%s' not in: %s", words[i], err);
    printf("%s\n", err);
}

int main(void) {
    const char *older[] = {"older webgpu.h revision", "lacks wgpuGetInstanceLimits",
                           "exports wgpuInstanceRequestAdapter2"};
    expect_refused(WGLLM_TEST_FAKE_OLDER, older, 3);

    const char *partial[] = {"lacks wgpuInstanceRelease"};
    expect_refused(WGLLM_TEST_FAKE_PARTIAL, partial, 1);

    const char *libc[] = {"is not a webgpu.h implementation", "lacks wgpuCreateInstance"};
    expect_refused("libc.so.6", libc, 2);

    const char *missing[] = {"cannot load WebGPU library"};
    expect_refused("/nonexistent/libwebgpu.so", missing, 1);

    /* The library of wgllm's own revision loads, unadapted. */
    wg_wgpu api;
    char err[1024] = "";
    bool ok = wg_wgpu_load(&api, NULL, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    if (ok) {
        CHECK(api.revision == NULL);
        CHECK(api.CreateInstance != NULL && api.GetVersion != NULL);
        wg_wgpu_unload(&api);
    }
    CHECK_DONE();
}
