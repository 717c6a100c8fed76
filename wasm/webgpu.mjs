// The webgpu.h entry points that wgllm's WebGPU backend imports (import module "webgpu",
// the names of src/backend/webgpu/wgpu_loader.h's WG_WGPU_REQUIRED_PROCS), implemented
// over a page's or worker's GPU object (navigator.gpu). Typed against the webgpu.h that
// wgllm builds with, for wasm32: pointers and size_t are 32-bit, uint64_t and WGPUFlags
// arrive as BigInt, structs passed by value arrive as a pointer to a copy, and WGPUFuture
// (one uint64_t) is returned as a BigInt. The struct offsets below are checked against the
// header at compile time (src/backend/webgpu/wgpu_loader_wasm.c).
//
// Waiting: the C code waits for a callback by calling wgpuInstanceProcessEvents in a loop.
// That import is a WebAssembly.Suspending function (JSPI): when nothing has completed yet
// it suspends the module until one of the pending promises (adapter, device, map, error
// scope, queue done) settles, then fires the settled callbacks. So an export that can reach
// WebGPU must be called through WebAssembly.promising, and its result awaited. JSPI was
// chosen over binaryen's Asyncify because Chromium ships it (since 137) and it leaves the
// module as compiled: Asyncify rewrites every function that can reach the import, which
// here is most of the engine, growing the code and slowing all of it. Without JSPI the
// adapter request fails with a message that says so (the CPU backend still works).
//
// Handles are small integers into a table of JS objects (0 is NULL). Callbacks are called
// through the module's exported function table; WGPUStringView arguments are built in
// memory from the module's exported malloc and freed after the call.

const STATUS_SUCCESS = 1, STATUS_ERROR = 2;
const REQUEST_ADAPTER_SUCCESS = 1, REQUEST_ADAPTER_UNAVAILABLE = 3, REQUEST_ADAPTER_ERROR = 4;
const REQUEST_DEVICE_SUCCESS = 1, REQUEST_DEVICE_ERROR = 3;
const MAP_SUCCESS = 1, MAP_ERROR = 3;
const POP_SUCCESS = 1, POP_ERROR = 3;
const WORK_DONE_SUCCESS = 1, WORK_DONE_ERROR = 3;
const ERROR_NONE = 1, ERROR_VALIDATION = 2, ERROR_OOM = 3, ERROR_INTERNAL = 4, ERROR_UNKNOWN = 5;
const LOST_UNKNOWN = 1, LOST_DESTROYED = 2;
const STYPE_SHADER_SOURCE_WGSL = 2;
const ADAPTER_TYPE_CPU = 3, ADAPTER_TYPE_UNKNOWN = 4, BACKEND_WEBGPU = 2;
const U32_UNDEFINED = 0xffffffff, U64_UNDEFINED = 0xffffffffffffffffn;

const ERROR_FILTERS = { 1: 'validation', 2: 'out-of-memory', 3: 'internal' };
const BUFFER_BINDING_TYPES = { 1: 'uniform', 2: 'uniform', 3: 'storage', 4: 'read-only-storage' };
const QUERY_TYPES = { 1: 'occlusion', 2: 'timestamp' };
const POWER_PREFERENCES = { 1: 'low-power', 2: 'high-performance' };
// WGPUFeatureName values (webgpu.h) and their WebGPU names.
const FEATURES = {
  1: 'core-features-and-limits', 2: 'depth-clip-control', 3: 'depth32float-stencil8',
  4: 'texture-compression-bc', 5: 'texture-compression-bc-sliced-3d', 6: 'texture-compression-etc2',
  7: 'texture-compression-astc', 8: 'texture-compression-astc-sliced-3d', 9: 'timestamp-query',
  10: 'indirect-first-instance', 11: 'shader-f16', 12: 'rg11b10ufloat-renderable',
  13: 'bgra8unorm-storage', 14: 'float32-filterable', 15: 'float32-blendable', 16: 'clip-distances',
  17: 'dual-source-blending', 18: 'subgroups', 19: 'texture-formats-tier1', 20: 'texture-formats-tier2',
  21: 'primitive-index', 22: 'texture-component-swizzle',
};
const FEATURE_IDS = Object.fromEntries(Object.entries(FEATURES).map(([k, v]) => [v, Number(k)]));

// WGPULimits after nextInChain, in header order (64: uint64_t); offsets follow C alignment.
const LIMIT_FIELDS = [
  ['maxTextureDimension1D', 32], ['maxTextureDimension2D', 32], ['maxTextureDimension3D', 32],
  ['maxTextureArrayLayers', 32], ['maxBindGroups', 32], ['maxBindGroupsPlusVertexBuffers', 32],
  ['maxBindingsPerBindGroup', 32], ['maxDynamicUniformBuffersPerPipelineLayout', 32],
  ['maxDynamicStorageBuffersPerPipelineLayout', 32], ['maxSampledTexturesPerShaderStage', 32],
  ['maxSamplersPerShaderStage', 32], ['maxStorageBuffersPerShaderStage', 32],
  ['maxStorageTexturesPerShaderStage', 32], ['maxUniformBuffersPerShaderStage', 32],
  ['maxUniformBufferBindingSize', 64], ['maxStorageBufferBindingSize', 64],
  ['minUniformBufferOffsetAlignment', 32], ['minStorageBufferOffsetAlignment', 32],
  ['maxVertexBuffers', 32], ['maxBufferSize', 64], ['maxVertexAttributes', 32],
  ['maxVertexBufferArrayStride', 32], ['maxInterStageShaderVariables', 32],
  ['maxColorAttachments', 32], ['maxColorAttachmentBytesPerSample', 32],
  ['maxComputeWorkgroupStorageSize', 32], ['maxComputeInvocationsPerWorkgroup', 32],
  ['maxComputeWorkgroupSizeX', 32], ['maxComputeWorkgroupSizeY', 32], ['maxComputeWorkgroupSizeZ', 32],
  ['maxComputeWorkgroupsPerDimension', 32], ['maxImmediateSize', 32],
];
const LIMITS = (() => {
  let at = 4; // after nextInChain
  return LIMIT_FIELDS.map(([name, bits]) => {
    const size = bits / 8;
    at = Math.ceil(at / size) * size;
    const field = { name, bits, at };
    at += size;
    return field;
  });
})();

function errorType(e) {
  if (!e) return ERROR_NONE;
  if (typeof GPUValidationError !== 'undefined' && e instanceof GPUValidationError) return ERROR_VALIDATION;
  if (typeof GPUOutOfMemoryError !== 'undefined' && e instanceof GPUOutOfMemoryError) return ERROR_OOM;
  if (typeof GPUInternalError !== 'undefined' && e instanceof GPUInternalError) return ERROR_INTERNAL;
  return ERROR_UNKNOWN;
}

/**
 * The import object part for a module built with the WebGPU backend.
 * gpu: navigator.gpu (or undefined: every adapter request then fails with a message).
 * getInstance: () => the WebAssembly.Instance, whose exports memory, malloc, free and
 *   __indirect_function_table are used (called only once the module runs).
 * Returns {webgpu: {...}}; merge it into the imports. Exports that can reach WebGPU
 * (anything that loads a model on it or runs one) must be called through
 * WebAssembly.promising(fn), and no other export may be called while one is suspended.
 */
export function createWebGPUImports(gpu, getInstance) {
  const enc = new TextEncoder(), dec = new TextDecoder();
  const jspi = typeof WebAssembly.Suspending === 'function';
  let exportsCache = null;
  const ex = () => (exportsCache ??= getInstance().exports);
  let dvBuf = null, dvCache = null;
  const dv = () => {
    const buf = ex().memory.buffer;
    if (buf !== dvBuf) { dvBuf = buf; dvCache = new DataView(buf); }
    return dvCache;
  };
  const u8 = () => new Uint8Array(ex().memory.buffer);
  const u32 = (p) => dv().getUint32(p, true);
  const u64 = (p) => dv().getBigUint64(p, true);
  const malloc = (n) => {
    const p = ex().malloc(n) >>> 0;
    if (!p) throw new Error(`webgpu.mjs: out of wasm memory (${n} bytes)`);
    return p;
  };

  // ---- handles
  const objs = new Map();
  let nextHandle = 1;
  const put = (o) => { if (o == null) return 0; const h = nextHandle++; objs.set(h, o); return h; };
  const get = (h) => objs.get(h >>> 0);
  const release = (h) => { objs.delete(h >>> 0); };

  // ---- strings
  function readSV(p) {
    const data = u32(p), len = u32(p + 4);
    if (!data) return undefined;
    const mem = u8();
    let end = data + len;
    if (len === U32_UNDEFINED) { end = data; while (mem[end]) end++; }
    return dec.decode(mem.slice(data, end));
  }
  // Writes a NUL-terminated malloc'd copy of s into the WGPUStringView at p.
  function writeSV(p, s) {
    const b = enc.encode(s ?? '');
    const data = malloc(b.length + 1);
    u8().set(b, data);
    u8()[data + b.length] = 0;
    dv().setUint32(p, data, true);
    dv().setUint32(p + 4, b.length, true);
  }
  // Calls a C callback: `sv` (a string) is passed as a WGPUStringView at the position of
  // the argument that is the symbol SV.
  const SV = Symbol('string view');
  function call(fn, args, sv) {
    if (!fn) return;
    const i = args.indexOf(SV);
    let p = 0;
    if (i >= 0) { p = malloc(8); writeSV(p, sv); args[i] = p; }
    try {
      ex().__indirect_function_table.get(fn)(...args);
    } finally {
      if (p) { ex().free(u32(p)); ex().free(p); }
    }
  }
  // A WGPU*CallbackInfo (by value, so a pointer): {nextInChain, mode, callback, userdata1, userdata2}.
  const callbackInfo = (p) => ({ fn: u32(p + 8), u1: u32(p + 12), u2: u32(p + 16) });

  // ---- asynchronous steps: settled promises queue their callbacks, ProcessEvents fires them
  const pending = new Set();
  const ready = [];
  let nextFuture = 1n;
  function track(promise, settle) {
    const p = promise.then((v) => { ready.push(() => settle(v, null)); },
                           (e) => { ready.push(() => settle(null, e ?? new Error('failed'))); })
      .finally(() => pending.delete(p));
    pending.add(p);
    return nextFuture++;
  }
  function flush() {
    while (ready.length) ready.shift()();
  }
  function processEvents() {
    if (ready.length || !pending.size) { flush(); return undefined; }
    return Promise.race(pending).then(flush);
  }

  // ---- devices: uncaptured errors and loss are queued like the rest
  function deviceCallbacks(w, descPtr) {
    const lost = { fn: u32(descPtr + 36 + 8), u1: u32(descPtr + 36 + 12), u2: u32(descPtr + 36 + 16) };
    const uncaptured = { fn: u32(descPtr + 56 + 4), u1: u32(descPtr + 56 + 8), u2: u32(descPtr + 56 + 12) };
    const handleAt = () => { const p = malloc(4); dv().setUint32(p, w.handle, true); return p; };
    w.fireLost = (reason, message) => {
      if (w.lostFired || w.dead) return;
      w.lostFired = true;
      const p = handleAt();
      try { call(lost.fn, [p, reason, SV, lost.u1, lost.u2], message); } finally { ex().free(p); }
    };
    w.reportError = (type, message) => {
      ready.push(() => {
        if (w.dead) return;
        const p = handleAt();
        try { call(uncaptured.fn, [p, type, SV, uncaptured.u1, uncaptured.u2], message); } finally { ex().free(p); }
      });
    };
    w.device.onuncapturederror = (ev) => w.reportError(errorType(ev.error), ev.error?.message ?? 'uncaptured error');
    w.device.lost.then((info) => ready.push(() => w.fireLost(info.reason === 'destroyed' ? LOST_DESTROYED : LOST_UNKNOWN,
                                                            info.message || 'device lost')));
  }
  // A JS exception (a TypeError, a RangeError) becomes the device's uncaptured error.
  function guard(w, what, fn, fallback = 0) {
    try {
      return fn();
    } catch (e) {
      w?.reportError?.(ERROR_VALIDATION, `${what}: ${e?.message ?? e}`);
      return fallback;
    }
  }

  function writeLimits(p, limits) {
    for (const f of LIMITS) {
      const v = limits[f.name];
      if (typeof v !== 'number') continue;
      if (f.bits === 64) dv().setBigUint64(p + f.at, BigInt(v), true);
      else dv().setUint32(p + f.at, v, true);
    }
  }
  function readLimits(p, supported) {
    const out = {};
    for (const f of LIMITS) {
      if (!(f.name in supported)) continue;
      if (f.bits === 64) { const v = u64(p + f.at); if (v !== U64_UNDEFINED) out[f.name] = Number(v); }
      else { const v = u32(p + f.at); if (v !== U32_UNDEFINED) out[f.name] = v; }
    }
    return out;
  }
  const size64 = (v) => (v === U64_UNDEFINED ? undefined : Number(v));
  const devOf = (h) => get(h)?.dev;

  const webgpu = {
    wgpuCreateInstance: () => put({ kind: 'instance' }),
    wgpuInstanceRelease: release,
    wgpuInstanceRequestAdapter(inst, opts, cbp) {
      const cb = callbackInfo(cbp >>> 0);
      opts >>>= 0;
      const settle = (status, adapter, message) =>
        call(cb.fn, [status, adapter ? put({ adapter }) : 0, SV, cb.u1, cb.u2], message);
      let why = null;
      if (!gpu) why = 'navigator.gpu is missing: this browser has no WebGPU, or it is off, or the page is not a secure context';
      else if (!jspi) why = 'WebGPU from wasm needs JSPI (WebAssembly.Suspending), which this JavaScript engine lacks';
      if (why) { // queued now: without JSPI no promise settles while the module runs
        ready.push(() => settle(REQUEST_ADAPTER_ERROR, null, why));
        return nextFuture++;
      }
      const o = {};
      if (opts) {
        const pp = POWER_PREFERENCES[u32(opts + 8)];
        if (pp) o.powerPreference = pp;
        if (u32(opts + 12)) o.forceFallbackAdapter = true;
      }
      return track(gpu.requestAdapter(o), (a, e) => {
        if (e) settle(REQUEST_ADAPTER_ERROR, null, String(e?.message ?? e));
        else if (!a) settle(REQUEST_ADAPTER_UNAVAILABLE, null, 'navigator.gpu.requestAdapter() found no adapter');
        else settle(REQUEST_ADAPTER_SUCCESS, a, '');
      });
    },
    wgpuInstanceProcessEvents: jspi ? new WebAssembly.Suspending(processEvents) : flush,

    wgpuAdapterGetInfo(ah, p) {
      p >>>= 0;
      const info = get(ah).adapter.info ?? {};
      u8().fill(0, p, p + 60);
      writeSV(p + 4, info.vendor);
      writeSV(p + 12, info.architecture);
      // browsers often leave the device name empty (fingerprinting); the description says more
      writeSV(p + 20, info.device || info.description || [info.vendor, info.architecture].filter(Boolean).join(' '));
      writeSV(p + 28, info.description);
      dv().setUint32(p + 36, BACKEND_WEBGPU, true);
      // a fallback (software) adapter is what AUTO skips for the CPU backend (registry.c)
      const soft = info.isFallbackAdapter || /swiftshader/i.test(`${info.architecture} ${info.description}`);
      dv().setUint32(p + 40, soft ? ADAPTER_TYPE_CPU : ADAPTER_TYPE_UNKNOWN, true);
      dv().setUint32(p + 52, info.subgroupMinSize ?? 0, true);
      dv().setUint32(p + 56, info.subgroupMaxSize ?? 0, true);
      return STATUS_SUCCESS;
    },
    wgpuAdapterInfoFreeMembers(p) {
      p >>>= 0;
      for (const at of [4, 12, 20, 28]) ex().free(u32(p + at));
    },
    wgpuAdapterGetLimits(ah, p) { writeLimits(p >>> 0, get(ah).adapter.limits); return STATUS_SUCCESS; },
    wgpuAdapterGetFeatures(ah, p) {
      p >>>= 0;
      const ids = [...get(ah).adapter.features].map((f) => FEATURE_IDS[f]).filter(Boolean);
      const arr = malloc(4 * ids.length + 4);
      ids.forEach((id, i) => dv().setUint32(arr + 4 * i, id, true));
      dv().setUint32(p, ids.length, true);
      dv().setUint32(p + 4, arr, true);
    },
    wgpuSupportedFeaturesFreeMembers(p) { ex().free(u32((p >>> 0) + 4)); },
    wgpuAdapterHasFeature: (ah, f) => (get(ah).adapter.features.has(FEATURES[f >>> 0]) ? 1 : 0),
    wgpuAdapterRequestDevice(ah, descp, cbp) {
      const cb = callbackInfo(cbp >>> 0);
      descp >>>= 0;
      const adapter = get(ah).adapter;
      const d = {};
      if (descp) {
        d.label = readSV(descp + 4);
        const n = u32(descp + 12), feats = u32(descp + 16), lim = u32(descp + 20);
        d.requiredFeatures = [];
        for (let i = 0; i < n; i++) {
          const name = FEATURES[u32(feats + 4 * i)];
          if (name) d.requiredFeatures.push(name);
        }
        if (lim) d.requiredLimits = readLimits(lim, adapter.limits);
      }
      const w = { device: null, handle: 0, dead: false };
      const settle = (status, message) => call(cb.fn, [status, w.handle, SV, cb.u1, cb.u2], message);
      return track(adapter.requestDevice(d), (device, e) => {
        if (e) { settle(REQUEST_DEVICE_ERROR, String(e?.message ?? e)); return; }
        w.device = device;
        w.dev = w;
        w.handle = put(w);
        if (descp) deviceCallbacks(w, descp);
        settle(REQUEST_DEVICE_SUCCESS, '');
      });
    },
    wgpuAdapterRelease: release,

    wgpuDeviceCreateBuffer(dh, p) {
      p >>>= 0;
      const w = get(dh);
      return guard(w, 'wgpuDeviceCreateBuffer', () => {
        const size = Number(u64(p + 24));
        const buffer = w.device.createBuffer({
          label: readSV(p + 4), usage: Number(u64(p + 16)), size, mappedAtCreation: !!u32(p + 32),
        });
        return put({ buffer, size, dev: w, ranges: [] });
      });
    },
    wgpuDeviceCreateShaderModule(dh, p) {
      p >>>= 0;
      const w = get(dh);
      return guard(w, 'wgpuDeviceCreateShaderModule', () => {
        const chain = u32(p);
        if (!chain || u32(chain + 4) !== STYPE_SHADER_SOURCE_WGSL) throw new TypeError('only WGSL sources are supported');
        // Tint wants `enable subgroups;` before subgroup built-ins; wgpu-native's naga rejects
        // it, so the kernels leave it out and it is added here (as for Dawn, wgpu_dawn2024.c).
        let code = readSV(chain + 8) ?? '';
        if (w.device.features.has('subgroups')) code = 'enable subgroups;\n' + code;
        return put(w.device.createShaderModule({ label: readSV(p + 4), code }));
      });
    },
    wgpuDeviceCreateComputePipeline(dh, p) {
      p >>>= 0;
      const w = get(dh);
      return guard(w, 'wgpuDeviceCreateComputePipeline', () => {
        const layout = u32(p + 12), c = p + 16;
        const constants = {};
        for (let i = 0, n = u32(c + 16), at = u32(c + 20); i < n; i++, at += 24)
          constants[readSV(at + 4)] = dv().getFloat64(at + 16, true);
        return put(w.device.createComputePipeline({
          label: readSV(p + 4),
          layout: layout ? get(layout) : 'auto',
          compute: { module: get(u32(c + 4)), entryPoint: readSV(c + 8), constants },
        }));
      });
    },
    wgpuDeviceCreateBindGroupLayout(dh, p) {
      p >>>= 0;
      const w = get(dh);
      return guard(w, 'wgpuDeviceCreateBindGroupLayout', () => {
        const entries = [];
        for (let i = 0, n = u32(p + 12), at = u32(p + 16); i < n; i++, at += 88) {
          const type = BUFFER_BINDING_TYPES[u32(at + 28)];
          if (!type) throw new TypeError(`binding ${u32(at + 4)}: only buffer bindings are supported`);
          entries.push({
            binding: u32(at + 4), visibility: Number(u64(at + 8)),
            buffer: { type, hasDynamicOffset: !!u32(at + 32), minBindingSize: Number(u64(at + 40)) },
          });
        }
        return put(w.device.createBindGroupLayout({ label: readSV(p + 4), entries }));
      });
    },
    wgpuDeviceCreatePipelineLayout(dh, p) {
      p >>>= 0;
      const w = get(dh);
      return guard(w, 'wgpuDeviceCreatePipelineLayout', () => {
        const bindGroupLayouts = [];
        for (let i = 0, n = u32(p + 12), at = u32(p + 16); i < n; i++) bindGroupLayouts.push(get(u32(at + 4 * i)));
        return put(w.device.createPipelineLayout({ label: readSV(p + 4), bindGroupLayouts }));
      });
    },
    wgpuDeviceCreateBindGroup(dh, p) {
      p >>>= 0;
      const w = get(dh);
      return guard(w, 'wgpuDeviceCreateBindGroup', () => {
        const entries = [];
        for (let i = 0, n = u32(p + 16), at = u32(p + 20); i < n; i++, at += 40) {
          const b = get(u32(at + 8));
          if (!b) throw new TypeError(`binding ${u32(at + 4)}: only buffer bindings are supported`);
          entries.push({ binding: u32(at + 4), resource: { buffer: b.buffer, offset: Number(u64(at + 16)), size: size64(u64(at + 24)) } });
        }
        return put(w.device.createBindGroup({ label: readSV(p + 4), layout: get(u32(p + 12)), entries }));
      });
    },
    wgpuDeviceCreateCommandEncoder(dh, p) {
      p >>>= 0;
      const w = get(dh);
      return guard(w, 'wgpuDeviceCreateCommandEncoder',
                   () => put({ encoder: w.device.createCommandEncoder(p ? { label: readSV(p + 4) } : {}), dev: w }));
    },
    wgpuDeviceCreateQuerySet(dh, p) {
      p >>>= 0;
      const w = get(dh);
      return guard(w, 'wgpuDeviceCreateQuerySet', () => put(w.device.createQuerySet({
        label: readSV(p + 4), type: QUERY_TYPES[u32(p + 12)], count: u32(p + 16),
      })));
    },
    wgpuDeviceGetQueue: (dh) => put({ queue: get(dh).device.queue, dev: get(dh) }),
    wgpuDeviceGetLimits(dh, p) { writeLimits(p >>> 0, get(dh).device.limits); return STATUS_SUCCESS; },
    wgpuDeviceHasFeature: (dh, f) => (get(dh).device.features.has(FEATURES[f >>> 0]) ? 1 : 0),
    wgpuDevicePushErrorScope(dh, filter) {
      const w = get(dh);
      guard(w, 'wgpuDevicePushErrorScope', () => w.device.pushErrorScope(ERROR_FILTERS[filter] ?? 'validation'));
    },
    wgpuDevicePopErrorScope(dh, cbp) {
      const cb = callbackInfo(cbp >>> 0);
      const w = get(dh);
      let popped;
      try { popped = w.device.popErrorScope(); } catch (e) { popped = Promise.reject(e); }
      return track(popped, (err, e) => {
        if (e) call(cb.fn, [POP_ERROR, ERROR_UNKNOWN, SV, cb.u1, cb.u2], String(e?.message ?? e));
        else call(cb.fn, [POP_SUCCESS, errorType(err), SV, cb.u1, cb.u2], err?.message ?? '');
      });
    },
    wgpuDeviceDestroy(dh) {
      const w = get(dh);
      w.device.destroy();
      // delivered at the next ProcessEvents, which the caller runs while its state is alive
      ready.push(() => w.fireLost(LOST_DESTROYED, 'device destroyed'));
    },
    wgpuDeviceRelease(dh) {
      const w = get(dh);
      if (w) w.dead = true; // no callback may reach the freed C state
      release(dh);
    },

    wgpuQueueWriteBuffer(qh, bh, offset, data, size) {
      const q = get(qh), b = get(bh);
      guard(q.dev, 'wgpuQueueWriteBuffer',
            () => q.queue.writeBuffer(b.buffer, Number(offset), ex().memory.buffer, data >>> 0, size >>> 0));
    },
    wgpuQueueSubmit(qh, n, p) {
      const q = get(qh), cmds = [];
      for (let i = 0; i < n >>> 0; i++) cmds.push(get(u32((p >>> 0) + 4 * i)));
      guard(q.dev, 'wgpuQueueSubmit', () => q.queue.submit(cmds));
    },
    wgpuQueueOnSubmittedWorkDone(qh, cbp) {
      const cb = callbackInfo(cbp >>> 0);
      return track(get(qh).queue.onSubmittedWorkDone(), (v, e) =>
        call(cb.fn, [e ? WORK_DONE_ERROR : WORK_DONE_SUCCESS, SV, cb.u1, cb.u2], e ? String(e?.message ?? e) : ''));
    },
    wgpuQueueRelease: release,

    wgpuBufferMapAsync(bh, mode, offset, size, cbp) {
      const cb = callbackInfo(cbp >>> 0);
      const b = get(bh);
      size >>>= 0;
      let mapped;
      try {
        mapped = b.buffer.mapAsync(Number(mode), offset >>> 0, size === U32_UNDEFINED ? undefined : size);
      } catch (e) { mapped = Promise.reject(e); }
      return track(mapped, (v, e) =>
        call(cb.fn, [e ? MAP_ERROR : MAP_SUCCESS, SV, cb.u1, cb.u2], e ? String(e?.message ?? e) : ''));
    },
    // The mapped bytes are copied into malloc'd memory; a writable range is copied back at unmap.
    wgpuBufferGetConstMappedRange: (bh, offset, size) => mappedRange(get(bh), offset >>> 0, size >>> 0, false),
    wgpuBufferGetMappedRange: (bh, offset, size) => mappedRange(get(bh), offset >>> 0, size >>> 0, true),
    wgpuBufferUnmap(bh) {
      const b = get(bh);
      for (const r of b.ranges) {
        if (r.write) new Uint8Array(r.range).set(u8().subarray(r.ptr, r.ptr + r.range.byteLength));
        ex().free(r.ptr);
      }
      b.ranges = [];
      guard(b.dev, 'wgpuBufferUnmap', () => b.buffer.unmap(), undefined);
    },
    wgpuBufferGetSize: (bh) => BigInt(get(bh).size),
    wgpuBufferDestroy: (bh) => get(bh).buffer.destroy(),
    wgpuBufferRelease: release,
    wgpuShaderModuleRelease: release,

    wgpuComputePipelineGetBindGroupLayout: (ph, i) => put(get(ph).getBindGroupLayout(i >>> 0)),
    wgpuComputePipelineRelease: release,
    wgpuBindGroupLayoutRelease: release,
    wgpuPipelineLayoutRelease: release,
    wgpuBindGroupRelease: release,

    wgpuCommandEncoderBeginComputePass(eh, p) {
      p >>>= 0;
      const e = get(eh), d = {};
      if (p) {
        d.label = readSV(p + 4);
        const tw = u32(p + 12);
        if (tw) {
          const begin = u32(tw + 8), end = u32(tw + 12);
          d.timestampWrites = {
            querySet: get(u32(tw + 4)),
            beginningOfPassWriteIndex: begin === U32_UNDEFINED ? undefined : begin,
            endOfPassWriteIndex: end === U32_UNDEFINED ? undefined : end,
          };
        }
      }
      return put({ pass: e.encoder.beginComputePass(d), dev: e.dev });
    },
    wgpuCommandEncoderCopyBufferToBuffer(eh, src, srcOffset, dst, dstOffset, size) {
      const e = get(eh);
      guard(e.dev, 'wgpuCommandEncoderCopyBufferToBuffer', () => e.encoder.copyBufferToBuffer(
        get(src).buffer, Number(srcOffset), get(dst).buffer, Number(dstOffset), size64(size)), undefined);
    },
    wgpuCommandEncoderClearBuffer(eh, bh, offset, size) {
      const e = get(eh);
      guard(e.dev, 'wgpuCommandEncoderClearBuffer',
            () => e.encoder.clearBuffer(get(bh).buffer, Number(offset), size64(size)), undefined);
    },
    wgpuCommandEncoderResolveQuerySet(eh, qs, first, count, dst, dstOffset) {
      const e = get(eh);
      guard(e.dev, 'wgpuCommandEncoderResolveQuerySet', () => e.encoder.resolveQuerySet(
        get(qs), first >>> 0, count >>> 0, get(dst).buffer, Number(dstOffset)), undefined);
    },
    wgpuCommandEncoderFinish(eh, p) {
      p >>>= 0;
      const e = get(eh);
      return guard(e.dev, 'wgpuCommandEncoderFinish', () => put(e.encoder.finish(p ? { label: readSV(p + 4) } : {})));
    },
    wgpuCommandEncoderRelease: release,

    wgpuComputePassEncoderSetPipeline: (ch, ph) => get(ch).pass.setPipeline(get(ph)),
    wgpuComputePassEncoderSetBindGroup(ch, i, gh, n, p) {
      n >>>= 0;
      const offsets = n ? new Uint32Array(ex().memory.buffer, p >>> 0, n) : [];
      get(ch).pass.setBindGroup(i >>> 0, gh ? get(gh) : null, offsets);
    },
    wgpuComputePassEncoderDispatchWorkgroups: (ch, x, y, z) => get(ch).pass.dispatchWorkgroups(x >>> 0, y >>> 0, z >>> 0),
    wgpuComputePassEncoderDispatchWorkgroupsIndirect: (ch, bh, offset) =>
      get(ch).pass.dispatchWorkgroupsIndirect(get(bh).buffer, Number(offset)),
    wgpuComputePassEncoderEnd: (ch) => get(ch).pass.end(),
    wgpuComputePassEncoderRelease: release,
    wgpuCommandBufferRelease: release,
    wgpuQuerySetDestroy: (qh) => get(qh).destroy(),
    wgpuQuerySetRelease: release,
  };

  function mappedRange(b, offset, size, write) {
    return guard(b.dev, 'wgpuBufferGetMappedRange', () => {
      const range = b.buffer.getMappedRange(offset, size === U32_UNDEFINED ? undefined : size);
      const ptr = malloc(range.byteLength || 1);
      u8().set(new Uint8Array(range), ptr);
      b.ranges.push({ ptr, range, write });
      return ptr;
    });
  }

  return { webgpu };
}
