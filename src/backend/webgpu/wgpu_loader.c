#include "backend/webgpu/wgpu_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

WGPUStringView wg_sv(const char *s) {
    WGPUStringView v = {s, s ? strlen(s) : 0};
    return v;
}

void wg_sv_copy(WGPUStringView v, char *dst, size_t dst_size) {
    if (!dst_size) return;
    size_t n = 0;
    if (v.data) n = v.length == WGPU_STRLEN ? strlen(v.data) : v.length;
    if (n >= dst_size) n = dst_size - 1;
    if (n) memcpy(dst, v.data, n);
    dst[n] = '\0';
}

/* wasm32 has no dlopen: the entry points are the module's imports (wgpu_loader_wasm.c). */
#ifndef __wasm__

#include "backend/webgpu/wgpu_dawn2024.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#ifndef WGLLM_WEBGPU_DEFAULT_LIB
#define WGLLM_WEBGPU_DEFAULT_LIB ""
#endif

static const char k_soname[] = "libwgpu_native.so";

const char *wg_wgpu_default_path(void) {
    const char *env = getenv("WGLLM_WEBGPU_LIB");
    if (env && *env) return env;
    if (WGLLM_WEBGPU_DEFAULT_LIB[0] && access(WGLLM_WEBGPU_DEFAULT_LIB, R_OK) == 0) return WGLLM_WEBGPU_DEFAULT_LIB;
    return k_soname;
}

/* dlsym returns an object pointer; POSIX guarantees it converts to a function pointer,
 * ISO C does not, hence the copy instead of a cast. */
static bool resolve(void *lib, const char *name, void *fn_ptr, size_t fn_size) {
    void *sym = dlsym(lib, name);
    if (!sym) return false;
    memcpy(fn_ptr, &sym, fn_size);
    return true;
}

/* webgpu.h changed its ABI several times before it settled (callback-info structs, one flat
 * WGPULimits, renumbered WGPUSType and WGPUFeatureName values, subgroup sizes in
 * WGPUAdapterInfo). A library of an older revision exports the names wgllm calls with other
 * layouts, and the first call crashes; so the revision is told apart by exported names,
 * before any call. wgllm's headers (the pinned wgpu-native's) have the functions below,
 * which came last of those changes (webgpu-headers #533, 2025); older revisions lack them. */
static const char *const k_revision_needs[] = {"wgpuGetInstanceLimits"};

/* Names only older revisions export, to say which one a refused library implements
 * (the first match is named). */
typedef struct {
    const char *symbol;
    const char *revision;
} revision_marker;

static const revision_marker k_older_revisions[] = {
    {"wgpuInstanceRequestAdapter2", "the late-2024 move to callback-info structs"},
    {"wgpuGetInstanceCapabilities", "late 2024 to spring 2025"},
    {"wgpuAdapterGetProperties", "mid-2024 or older"},
};

#define WG_COUNT_(a) (sizeof(a) / sizeof((a)[0]))

/* Which implementation the library is, for messages: wgpu-native reports its version,
 * Dawn has its own entry points (wgpuDeviceTick). Empty when neither. */
static void implementation_name(void *lib, char *out, size_t out_size) {
    WGLLMProcGetVersion get_version = NULL;
    if (resolve(lib, "wgpuGetVersion", &get_version, sizeof get_version)) {
        uint32_t v = get_version();
        snprintf(out, out_size, " (wgpu-native %u.%u.%u.%u)", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
    } else if (dlsym(lib, "wgpuDeviceTick")) {
        snprintf(out, out_size, " (Dawn)");
    } else {
        out[0] = '\0';
    }
}

/* True if the library implements wgllm's revision of webgpu.h; else err names what differs. */
static bool check_revision(void *lib, const char *path, char *err, size_t err_size) {
    char lacks[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < WG_COUNT_(k_revision_needs); i++) {
        if (dlsym(lib, k_revision_needs[i]) || n >= sizeof lacks) continue;
        n += (size_t)snprintf(lacks + n, sizeof lacks - n, "%s%s", n ? ", " : "", k_revision_needs[i]);
    }
    if (!lacks[0]) return true;
    char older[160] = "";
    for (size_t i = 0; i < WG_COUNT_(k_older_revisions) && !older[0]; i++) {
        if (dlsym(lib, k_older_revisions[i].symbol))
            snprintf(older, sizeof older, " and exports %s (%s)", k_older_revisions[i].symbol,
                     k_older_revisions[i].revision);
    }
    char impl[64];
    implementation_name(lib, impl, sizeof impl);
    /* The verdict first: callers with short buffers (auto's CPU fallback note) cut the end. */
    snprintf(err, err_size,
             "WebGPU library '%s'%s implements an older webgpu.h revision than wgllm (callbacks, limits and enum "
             "values differ): it lacks %s%s",
             path, impl, lacks, older);
    return false;
}

bool wg_wgpu_load(wg_wgpu *api, const char *path, char *err, size_t err_size) {
    memset(api, 0, sizeof *api);
    const char *env = getenv("WGLLM_WEBGPU_LIB");
    const char *hint = "; check the path";
    if (!path || !*path) {
        path = wg_wgpu_default_path();
        hint = env && *env ? "; check WGLLM_WEBGPU_LIB"
                           : "; run scripts/install-webgpu.sh or point WGLLM_WEBGPU_LIB at a webgpu.h library";
    }

    /* Mesa's device-select Vulkan layer only reorders devices (wgpu lists them all
     * anyway) and prints errors about XDG_RUNTIME_DIR on headless machines. A value
     * the user set is kept. */
    setenv("NODEVICE_SELECT", "1", 0);
    dlerror();
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(err, err_size, "cannot load WebGPU library '%s': %s%s", path, why ? why : "unknown error", hint);
        return false;
    }

    /* First, so that an unrelated library (libc, a wrong .so) is called what it is. */
    if (!dlsym(lib, "wgpuCreateInstance")) {
        snprintf(err, err_size, "WebGPU library '%s' is not a webgpu.h implementation: it lacks wgpuCreateInstance%s",
                 path, hint);
        dlclose(lib);
        return false;
    }
    /* One older revision, Dawn's of late 2024, is adapted (wgpu_dawn2024.c); others are refused. */
    bool dawn2024 = wg_dawn2024_detect(lib);
    if (!dawn2024 && !check_revision(lib, path, err, err_size)) {
        dlclose(lib);
        return false;
    }

#define WG_WGPU_RESOLVE_REQUIRED_(name)                                                               \
    if (!resolve(lib, "wgpu" #name, &api->name, sizeof api->name)) {                                  \
        const char *why_ = dlerror();                                                                 \
        snprintf(err, err_size, "WebGPU library '%s' lacks wgpu" #name ": %s (not a compatible webgpu.h " \
                 "implementation?)", path, why_ ? why_ : "symbol not found");                         \
        dlclose(lib);                                                                                 \
        memset(api, 0, sizeof *api);                                                                  \
        return false;                                                                                 \
    }
#define WG_WGPU_RESOLVE_NATIVE_(name) resolve(lib, "wgpu" #name, &api->name, sizeof api->name);
    WG_WGPU_REQUIRED_PROCS(WG_WGPU_RESOLVE_REQUIRED_)
    WG_WGPU_NATIVE_PROCS(WG_WGPU_RESOLVE_NATIVE_)
#undef WG_WGPU_RESOLVE_REQUIRED_
#undef WG_WGPU_RESOLVE_NATIVE_
    dlerror(); /* an absent optional symbol is not an error */
    if (dawn2024) {
        char why[256];
        if (!wg_dawn2024_bind(api, lib, why, sizeof why)) {
            snprintf(err, err_size, "WebGPU library '%s': %s", path, why);
            dlclose(lib);
            memset(api, 0, sizeof *api);
            return false;
        }
        api->revision = "Dawn's webgpu.h of late 2024, adapted";
    }

    api->lib = lib;
    snprintf(api->path, sizeof api->path, "%s", path);
    return true;
}

void wg_wgpu_unload(wg_wgpu *api) {
    /* Deliberately no dlclose (see the header). dlopen of the same path later reuses the mapping. */
    memset(api, 0, sizeof *api);
}

/* dl_iterate_phdr visits objects in load order: pin everything from the one holding `anchor`
 * (the WebGPU library) on, i.e. its dependencies and what it loaded later (Vulkan loader,
 * drivers, LLVM). Objects loaded before it belong to the host process and are left alone.
 * The names are collected first: dlopen is not called under dl_iterate_phdr's lock. */
struct pin_walk {
    uintptr_t anchor;
    bool seen;
    char **names;
    size_t n, cap;
};

static int collect_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct pin_walk *w = data;
    for (int i = 0; i < info->dlpi_phnum && !w->seen; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        w->seen = ph->p_type == PT_LOAD && w->anchor >= start && w->anchor - start < ph->p_memsz;
    }
    if (!w->seen || !info->dlpi_name || !info->dlpi_name[0]) return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 32;
        char **names = realloc(w->names, cap * sizeof *names);
        if (!names) return 1; /* best effort: pin what was collected */
        w->names = names;
        w->cap = cap;
    }
    w->names[w->n] = strdup(info->dlpi_name);
    if (w->names[w->n]) w->n++;
    return 0;
}

void wg_wgpu_keep_loaded(const wg_wgpu *api) {
    if (!api->lib || !api->CreateInstance) return;
    struct pin_walk w = {0};
    _Static_assert(sizeof w.anchor == sizeof api->CreateInstance, "function pointers are addresses");
    memcpy(&w.anchor, &api->CreateInstance, sizeof w.anchor);
    dl_iterate_phdr(collect_object, &w);
    for (size_t i = 0; i < w.n; i++) {
        /* RTLD_NOLOAD: never loads anything; RTLD_NODELETE: later dlclose calls keep it mapped. */
        (void)dlopen(w.names[i], RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
        free(w.names[i]);
    }
    free(w.names);
}

#endif /* !__wasm__ */
