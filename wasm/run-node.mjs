// Runs a WASI command module under Node's node:wasi with the current directory preopened
// and the WGLLM_* environment variables passed on.
// Usage: node run-node.mjs MODULE.wasm ARGS...
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [mod, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [mod, ...args], env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('WGLLM_'))), preopens: { '.': '.' }, returnOnExit: true });
const { instance } = await WebAssembly.instantiate(await readFile(mod), wasi.getImportObject());
process.exitCode = wasi.start(instance);
