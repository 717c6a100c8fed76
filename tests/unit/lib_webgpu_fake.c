/* Stand-ins for webgpu.h libraries the loader must refuse (test_webgpu_loader). Only the
 * exported names matter: the loader calls none of these. */
#ifdef WEBGPU_FAKE_OLDER
/* An older revision: a name of the late-2024 callback-info transition, no wgpuGetInstanceLimits. */
void wgpuInstanceRequestAdapter2(void) {}
#else
/* wgllm's revision by its names, but with most entry points missing. */
void wgpuGetInstanceLimits(void) {}
#endif
void wgpuCreateInstance(void) {}
