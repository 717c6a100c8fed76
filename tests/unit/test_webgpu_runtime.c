/* WebGPU runtime layer: library loading, adapters, device, buffers, a WGSL kernel.
 * Runs on any adapter (on CI: Mesa's lavapipe CPU Vulkan driver); having none is a failure. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_device.h"
#include "check.h"

#define N_ELEMS 1000003u
#define WG_SIZE 256u

static const char k_affine_wgsl[] =
    "@group(0) @binding(0) var<storage, read> x: array<f32>;\n"
    "@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n"
    "@compute @workgroup_size(256)\n"
    "fn main(@builtin(global_invocation_id) id: vec3<u32>) {\n"
    "    let i = id.x;\n"
    "    if (i < arrayLength(&x)) { y[i] = 2.0 * x[i] + 1.0; }\n"
    "}\n";

/* Missing ')' after the parameter list. */
static const char k_broken_wgsl[] =
    "@compute @workgroup_size(1)\n"
    "fn main(@builtin(global_invocation_id) id: vec3<u32> {\n"
    "}\n";

static void test_bad_library(void) {
    char err[1024] = "";
    wg_gpu *g = wg_gpu_open("/nonexistent/libwebgpu.so", err, sizeof err);
    CHECK(g == NULL);
    CHECK_MSG(strstr(err, "/nonexistent/libwebgpu.so") && strstr(err, "cannot load"), "message: %s", err);

    /* The environment override is used as given, never silently replaced by the default. */
    const char *old = getenv("WGLLM_WEBGPU_LIB");
    char *saved = old ? strdup(old) : NULL;
    setenv("WGLLM_WEBGPU_LIB", "/nonexistent/libdawn.so", 1);
    err[0] = '\0';
    g = wg_gpu_open(NULL, err, sizeof err);
    CHECK(g == NULL);
    CHECK_MSG(strstr(err, "/nonexistent/libdawn.so") != NULL, "message: %s", err);
    if (saved) setenv("WGLLM_WEBGPU_LIB", saved, 1);
    else unsetenv("WGLLM_WEBGPU_LIB");
    free(saved);

    /* A real shared library that is not a webgpu.h implementation. */
    err[0] = '\0';
    g = wg_gpu_open("libm.so.6", err, sizeof err);
    CHECK(g == NULL);
    CHECK_MSG(strstr(err, "lacks wgpuCreateInstance") != NULL, "message: %s", err);
}

static void print_adapter(int i, const wg_adapter_info *a) {
    printf("adapter %d: %s (%s, %s) vendor '%s' driver '%s'\n", i, a->name, wg_backend_type_name(a->backend),
           wg_adapter_type_name(a->type), a->vendor, a->description);
    printf("  maxStorageBufferBindingSize %llu maxBufferSize %llu workgroupStorage %u invocations %u\n",
           (unsigned long long)a->limits.max_storage_buffer_binding_size,
           (unsigned long long)a->limits.max_buffer_size, a->limits.max_compute_workgroup_storage_size,
           a->limits.max_compute_invocations_per_workgroup);
    printf("  shader-f16 %d subgroups %d timestamp-query %d\n", a->features.shader_f16, a->features.subgroups,
           a->features.timestamp_query);
}

/* y = 2x + 1 over N_ELEMS floats; y has a tail past N_ELEMS that the bounds check must leave alone. */
static void test_affine_kernel(wg_device *d) {
    const size_t n = N_ELEMS, n_y = N_ELEMS + WG_SIZE;
    const float sentinel = -12345.0f;
    float *x = malloc(n * sizeof *x), *y = malloc(n_y * sizeof *y);
    CHECK(x && y);
    if (!x || !y) goto out_host;
    /* Quarter steps in [-300, 725): 2x + 1 is exact in f32, so GPU and CPU must agree bit for bit. */
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 4099) * 0.25f - 300.0f;
    for (size_t i = 0; i < n_y; i++) y[i] = sentinel;

    char err[4096] = "";
    WGPUBuffer bx = wg_buffer_create(d, n * sizeof(float), "x", err, sizeof err);
    CHECK_MSG(bx != NULL, "%s", err);
    WGPUBuffer by = wg_buffer_create(d, n_y * sizeof(float), "y", err, sizeof err);
    CHECK_MSG(by != NULL, "%s", err);
    WGPUComputePipeline pipe = wg_pipeline_create(d, "affine", k_affine_wgsl, "main", err, sizeof err);
    CHECK_MSG(pipe != NULL, "%s", err);
    if (!bx || !by || !pipe) goto out;
    CHECK_MSG(wg_buffer_write(d, bx, 0, x, n * sizeof(float), err, sizeof err), "%s", err);
    CHECK_MSG(wg_buffer_write(d, by, 0, y, n_y * sizeof(float), err, sizeof err), "%s", err);

    const wg_wgpu *api = d->api;
    WGPUBindGroupLayout layout = api->ComputePipelineGetBindGroupLayout(pipe, 0);
    WGPUBindGroupEntry entries[2] = {
        {NULL, 0, bx, 0, n * sizeof(float), NULL, NULL},
        {NULL, 1, by, 0, n_y * sizeof(float), NULL, NULL},
    };
    WGPUBindGroupDescriptor bg_desc = {NULL, wg_sv("affine"), layout, 2, entries};
    WGPUBindGroup bg = api->DeviceCreateBindGroup(d->device, &bg_desc);
    WGPUCommandEncoder enc = api->DeviceCreateCommandEncoder(d->device, NULL);
    WGPUComputePassEncoder pass = api->CommandEncoderBeginComputePass(enc, NULL);
    api->ComputePassEncoderSetPipeline(pass, pipe);
    api->ComputePassEncoderSetBindGroup(pass, 0, bg, 0, NULL);
    api->ComputePassEncoderDispatchWorkgroups(pass, (uint32_t)((n + WG_SIZE - 1) / WG_SIZE), 1, 1);
    api->ComputePassEncoderEnd(pass);
    api->ComputePassEncoderRelease(pass);
    WGPUCommandBuffer cmd = api->CommandEncoderFinish(enc, NULL);
    api->CommandEncoderRelease(enc);
    api->QueueSubmit(d->queue, 1, &cmd);
    api->CommandBufferRelease(cmd);
    api->BindGroupRelease(bg);
    api->BindGroupLayoutRelease(layout);
    CHECK_MSG(wg_device_finish(d, err, sizeof err), "%s", err);

    float *got = malloc(n_y * sizeof *got);
    CHECK(got != NULL);
    if (got) {
        memset(got, 0, n_y * sizeof *got);
        CHECK_MSG(wg_buffer_read(d, by, 0, got, n_y * sizeof(float), err, sizeof err), "%s", err);
        size_t bad = 0, first_bad = 0;
        for (size_t i = 0; i < n; i++) {
            float want = 2.0f * x[i] + 1.0f;
            if (memcmp(&got[i], &want, sizeof want) != 0 && bad++ == 0) first_bad = i;
        }
        CHECK_MSG(bad == 0, "%zu of %zu results differ, first at %zu: got %g want %g", bad, n, first_bad,
                  (double)got[first_bad], (double)(2.0f * x[first_bad] + 1.0f));
        size_t touched = 0;
        for (size_t i = n; i < n_y; i++) touched += got[i] != sentinel;
        CHECK_MSG(touched == 0, "%zu elements past the end were written", touched);

        /* Read-back at an offset returns the same bytes. */
        float part[5];
        CHECK_MSG(wg_buffer_read(d, by, (n - 3) * sizeof(float), part, sizeof part, err, sizeof err), "%s", err);
        CHECK(memcmp(part, &got[n - 3], sizeof part) == 0);
        free(got);
    }

    /* Out-of-range and unaligned requests are refused with a message. */
    float dummy[4];
    err[0] = '\0';
    CHECK(!wg_buffer_read(d, bx, n * sizeof(float) - 4, dummy, 8, err, sizeof err));
    CHECK_MSG(strstr(err, "outside") != NULL, "message: %s", err);
    err[0] = '\0';
    CHECK(!wg_buffer_write(d, bx, 2, dummy, 4, err, sizeof err));
    CHECK_MSG(strstr(err, "multiples of 4") != NULL, "message: %s", err);

out:
    if (pipe) d->api->ComputePipelineRelease(pipe);
    wg_buffer_free(d, bx);
    wg_buffer_free(d, by);
out_host:
    free(x);
    free(y);
}

static void test_compile_error(wg_device *d) {
    char err[4096] = "";
    WGPUComputePipeline pipe = wg_pipeline_create(d, "broken_kernel", k_broken_wgsl, "main", err, sizeof err);
    CHECK(pipe == NULL);
    printf("compile error message:\n%s\n", err);
    CHECK_MSG(strstr(err, "broken_kernel") != NULL && strlen(err) > 40, "message: %s", err);
    /* The error was captured by the scope, not left for the uncaptured-error handler. */
    char err2[1024] = "";
    CHECK_MSG(wg_device_check(d, err2, sizeof err2), "%s", err2);

    /* A valid WGSL with a missing entry point fails at pipeline creation, also with a message. */
    err[0] = '\0';
    pipe = wg_pipeline_create(d, "no_entry", k_affine_wgsl, "does_not_exist", err, sizeof err);
    CHECK(pipe == NULL);
    CHECK_MSG(strstr(err, "no_entry") != NULL, "message: %s", err);
}

static void test_errors_are_reported(wg_device *d) {
    char err[4096] = "";
    /* Larger than the device allows: refused before reaching the driver. */
    WGPUBuffer huge = wg_buffer_create(d, d->limits.max_buffer_size + 4, "huge", err, sizeof err);
    CHECK(huge == NULL);
    CHECK_MSG(strstr(err, "maxBufferSize") != NULL, "message: %s", err);

    /* A validation error outside any scope reaches the uncaptured-error callback and
     * surfaces in wg_device_check; the device keeps working afterwards. */
    WGPUBuffer b = wg_buffer_create(d, 16, "small", err, sizeof err);
    CHECK_MSG(b != NULL, "%s", err);
    if (!b) return;
    const uint32_t data[2] = {1, 2};
    d->api->QueueWriteBuffer(d->queue, b, 12, data, sizeof data); /* overruns the 16-byte buffer */
    err[0] = '\0';
    CHECK(!wg_device_check(d, err, sizeof err));
    CHECK_MSG(strstr(err, "validation") != NULL, "message: %s", err);
    CHECK_MSG(wg_device_check(d, err, sizeof err), "error not cleared: %s", err);
    uint32_t back[4] = {9, 9, 9, 9}, zero[4] = {0, 0, 0, 0};
    CHECK_MSG(wg_buffer_read(d, b, 0, back, sizeof back, err, sizeof err), "%s", err);
    CHECK(memcmp(back, zero, sizeof zero) == 0); /* new buffers are zeroed; the bad write was dropped */
    wg_buffer_free(d, b);
}

/* A destroyed device (what a driver reset leaves behind): later calls fail with a message, never crash.
 * (wgpu-native only calls the device-lost callback on a real loss, so the test cannot fake one.) */
static void test_destroyed_device(wg_gpu *g) {
    char err[4096] = "";
    wg_device *d = wg_device_create(g, 0, err, sizeof err);
    CHECK_MSG(d != NULL, "%s", err);
    if (!d) return;
    d->api->DeviceDestroy(d->device);
    err[0] = '\0';
    CHECK(wg_buffer_create(d, 64, "after_destroy", err, sizeof err) == NULL);
    printf("after destroy: %s\n", err);
    CHECK_MSG(strstr(err, "after_destroy") != NULL, "message: %s", err);
    err[0] = '\0';
    CHECK(wg_pipeline_create(d, "affine_after_destroy", k_affine_wgsl, "main", err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "affine_after_destroy") != NULL, "message: %s", err);
    wg_device_destroy(d);
}

int main(void) {
    test_bad_library();

    char err[2048] = "";
    wg_gpu *g = wg_gpu_open(NULL, err, sizeof err);
    CHECK_MSG(g != NULL, "cannot open WebGPU: %s", err);
    if (!g) CHECK_DONE();
    printf("library: %s\n", g->api.path);
    CHECK_MSG(g->n_adapters >= 1,
              "no WebGPU adapter found: install Mesa's Vulkan drivers (scripts/install-webgpu.sh) or a GPU driver");
    for (int i = 0; i < g->n_adapters; i++) {
        const wg_adapter_info *a = &g->info[i];
        print_adapter(i, a);
        CHECK(a->name[0] != '\0');
        CHECK(a->limits.max_storage_buffer_binding_size >= (128u << 20)); /* WebGPU's guaranteed minimum */
        CHECK(a->limits.max_compute_invocations_per_workgroup >= 256);
        CHECK(a->limits.max_compute_workgroup_storage_size >= 16384);
    }
    if (g->n_adapters < 1) {
        wg_gpu_close(g);
        CHECK_DONE();
    }

    err[0] = '\0';
    CHECK(wg_device_create(g, g->n_adapters, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "no adapter") != NULL, "message: %s", err);

    wg_device *d = wg_device_create(g, 0, err, sizeof err);
    CHECK_MSG(d != NULL, "cannot create a device: %s", err);
    if (d) {
        /* Granted limits are what the adapter offers (we ask for its maxima). */
        CHECK(d->limits.max_storage_buffer_binding_size == g->info[0].limits.max_storage_buffer_binding_size);
        CHECK(d->limits.max_buffer_size == g->info[0].limits.max_buffer_size);
        CHECK(d->features.shader_f16 == g->info[0].features.shader_f16);
        test_affine_kernel(d);
        test_compile_error(d);
        test_errors_are_reported(d);
        CHECK_MSG(wg_device_check(d, err, sizeof err), "%s", err);
        wg_device_destroy(d);
    }
    test_destroyed_device(g);
    wg_gpu_close(g);
    CHECK_DONE();
}
