/* The WebGPU backend of a unit test, on the first adapter: a GPU, or Mesa's lavapipe on CI. No
 * device is a failure with the reason, never a skip. Include after check.h. */
#ifndef WGLLM_TEST_WEBGPU_TEST_H
#define WGLLM_TEST_WEBGPU_TEST_H

#include "backend/webgpu/wgpu_backend.h"

static wg_backend *test_webgpu_create(void) {
    char err[2048] = "";
    wg_backend *g = wg_backend_webgpu_create(-1, err, sizeof err);
    CHECK_MSG(g != NULL, "no usable WebGPU device (a GPU, or Mesa's lavapipe on CI): %s", err);
    return g;
}

#endif
