// Runs a WASI command module under Node's node:wasi with the current directory preopened
// and the WGLLM_* environment variables passed on (and the webgpu imports, wasm/webgpu.mjs).
// Usage: node run-node.mjs MODULE.wasm ARGS...
import { readFile } from 'node:fs/promises';
import { createWebGPUImports } from './webgpu.mjs';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [mod, ...args] = process.argv.slice(2);
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('WGLLM_')));
const wasi = new WASI({ version: 'preview1', args: [mod, ...args], env, preopens: { '.': '.' }, returnOnExit: true });
// wasiImport rather than getImportObject(), which Node 18 (Debian 12's) does not have
// Node has no navigator.gpu: the WebGPU backend, if built in, reports that it has no adapter.
let instance;
const imports = { wasi_snapshot_preview1: wasi.wasiImport, ...createWebGPUImports(globalThis.navigator?.gpu, () => instance) };
({ instance } = await WebAssembly.instantiate(await readFile(mod), imports));
process.exitCode = wasi.start(instance);
