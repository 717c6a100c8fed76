// A WASI preview1 host for a browser page. Files are named sources: a Uint8Array, a Blob
// or File (read slice by slice with FileReaderSync, so only in a Worker: the file's bytes
// are copied once, into the module's memory, never held whole by this host), or any
// {size, read(pos, len) -> Uint8Array}. stdout and stderr are collected as text. Only the
// calls the engine's modules import are implemented; anything else reports ENOSYS.
const ESUCCESS = 0, EBADF = 8, EINVAL = 28, EIO = 29, ENOENT = 44, ENOSYS = 52;
const FILETYPE_CHAR = 2, FILETYPE_DIR = 3, FILETYPE_REG = 4;
const SLICE = 8 << 20; // bytes of a Blob read at once: the most this host holds at a time

export function fileSource(data) {
  if (data instanceof Uint8Array) return { size: data.length, read: (pos, len) => data.subarray(pos, pos + len) };
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    const reader = new FileReaderSync();
    return {
      size: data.size,
      read: (pos, len) => new Uint8Array(reader.readAsArrayBuffer(data.slice(pos, pos + Math.min(len, SLICE)))),
    };
  }
  return data;
}

class Exit extends Error {
  constructor(code) { super(`exit ${code}`); this.code = code; }
}

export class MemWasi {
  // files: a Map of name -> source (see fileSource); onRead(bytes), if given, is told of
  // every read from a file (load progress).
  constructor(args, files, onRead = null) {
    this.args = args;
    this.files = files;
    this.onRead = onRead;
    this.fds = new Map([[3, { dir: true }]]); // fd 3: the preopened directory "."
    this.next = 4;
    this.out = ['', ''];
    this.memory = null;
  }

  view() { return new DataView(this.memory.buffer); }
  bytes() { return new Uint8Array(this.memory.buffer); }

  start(instance) {
    this.memory = instance.exports.memory;
    try {
      instance.exports._start();
      return 0;
    } catch (e) {
      if (e instanceof Exit) return e.code;
      throw e;
    }
  }

  // start() for a module whose imports may suspend (JSPI, as the WebGPU backend's waits
  // do, wasm/webgpu.mjs): _start runs through WebAssembly.promising. Resolves to the status.
  async startAsync(instance) {
    this.memory = instance.exports.memory;
    try {
      await WebAssembly.promising(instance.exports._start)();
      return 0;
    } catch (e) {
      if (e instanceof Exit) return e.code;
      throw e;
    }
  }

  // A reactor module (no _start): runs its constructors.
  initialize(instance) {
    this.memory = instance.exports.memory;
    instance.exports._initialize?.();
  }

  // Copies from the file at `at` into the iovecs; returns bytes read, or -1 when the
  // source failed (a File changed or removed since it was picked).
  readv(f, iovs, n, at) {
    const v = this.view(), mem = this.bytes();
    let pos = at, total = 0;
    try {
      for (let i = 0; i < n; i++) {
        const ptr = v.getUint32(iovs + 8 * i, true), len = v.getUint32(iovs + 8 * i + 4, true);
        let done = 0;
        while (done < len && pos < f.src.size) {
          const chunk = f.src.read(pos, Math.min(len - done, f.src.size - pos));
          if (!chunk.length) break;
          mem.set(chunk, ptr + done);
          done += chunk.length;
          pos += chunk.length;
          this.onRead?.(chunk.length);
        }
        total += done;
        if (done < len) break;
      }
    } catch {
      return -1;
    }
    return total;
  }

  imports() {
    const enc = new TextEncoder(), dec = new TextDecoder();
    const argBytes = this.args.map((a) => enc.encode(a + '\0'));
    const file = (fd) => { const f = this.fds.get(fd); return f && !f.dir ? f : null; };
    return {
      args_sizes_get: (argc, size) => {
        this.view().setUint32(argc, argBytes.length, true);
        this.view().setUint32(size, argBytes.reduce((s, b) => s + b.length, 0), true);
        return ESUCCESS;
      },
      args_get: (argv, buf) => {
        for (const [i, b] of argBytes.entries()) {
          this.view().setUint32(argv + 4 * i, buf, true);
          this.bytes().set(b, buf);
          buf += b.length;
        }
        return ESUCCESS;
      },
      environ_sizes_get: (count, size) => {
        this.view().setUint32(count, 0, true);
        this.view().setUint32(size, 0, true);
        return ESUCCESS;
      },
      environ_get: () => ESUCCESS,
      clock_time_get: (id, precision, out) => {
        const ns = id === 0 ? BigInt(Date.now()) * 1000000n : BigInt(Math.round(performance.now() * 1e6));
        this.view().setBigUint64(out, ns, true);
        return ESUCCESS;
      },
      fd_prestat_get: (fd, out) => {
        if (fd !== 3) return EBADF;
        this.view().setUint8(out, 0); // a directory
        this.view().setUint32(out + 4, 1, true); // its name: "."
        return ESUCCESS;
      },
      fd_prestat_dir_name: (fd, ptr, len) => {
        if (fd !== 3 || len < 1) return EBADF;
        this.bytes()[ptr] = 46; // "."
        return ESUCCESS;
      },
      path_open: (dirfd, dirflags, path, pathLen, oflags, rightsBase, rightsInh, fdflags, out) => {
        if (dirfd !== 3) return EBADF;
        const name = dec.decode(this.bytes().subarray(path, path + pathLen));
        const data = this.files.get(name);
        if (!data) return ENOENT;
        const fd = this.next++;
        this.fds.set(fd, { src: fileSource(data), pos: 0 });
        this.view().setUint32(out, fd, true);
        return ESUCCESS;
      },
      fd_close: (fd) => (this.fds.delete(fd) ? ESUCCESS : ESUCCESS),
      fd_fdstat_get: (fd, out) => {
        const v = this.view();
        const type = fd <= 2 ? FILETYPE_CHAR : this.fds.get(fd)?.dir ? FILETYPE_DIR : this.fds.has(fd) ? FILETYPE_REG : -1;
        if (type < 0) return EBADF;
        v.setUint8(out, type);
        v.setUint16(out + 2, 0, true);
        v.setBigUint64(out + 8, 0xffffffffffffffffn, true);
        v.setBigUint64(out + 16, 0xffffffffffffffffn, true);
        return ESUCCESS;
      },
      fd_fdstat_set_flags: () => ESUCCESS,
      fd_filestat_get: (fd, out) => {
        const f = file(fd);
        if (!f) return EBADF;
        const v = this.view();
        for (let i = 0; i < 64; i += 8) v.setBigUint64(out + i, 0n, true);
        v.setBigUint64(out + 8, BigInt(fd), true); // ino
        v.setUint8(out + 16, FILETYPE_REG);
        v.setBigUint64(out + 24, 1n, true); // nlink
        v.setBigUint64(out + 32, BigInt(f.src.size), true);
        return ESUCCESS;
      },
      fd_seek: (fd, offset, whence, out) => {
        const f = file(fd);
        if (!f) return EBADF;
        const base = whence === 0 ? 0 : whence === 1 ? f.pos : f.src.size;
        const pos = base + Number(offset);
        if (pos < 0) return EINVAL;
        f.pos = pos;
        this.view().setBigUint64(out, BigInt(pos), true);
        return ESUCCESS;
      },
      fd_read: (fd, iovs, n, out) => {
        const f = file(fd);
        if (!f) return EBADF;
        const got = this.readv(f, iovs, n, f.pos);
        if (got < 0) return EIO;
        f.pos += got;
        this.view().setUint32(out, got, true);
        return ESUCCESS;
      },
      fd_pread: (fd, iovs, n, offset, out) => {
        const f = file(fd);
        if (!f) return EBADF;
        const got = this.readv(f, iovs, n, Number(offset));
        if (got < 0) return EIO;
        this.view().setUint32(out, got, true);
        return ESUCCESS;
      },
      fd_write: (fd, iovs, n, out) => {
        if (fd !== 1 && fd !== 2) return EBADF;
        const v = this.view();
        let total = 0;
        for (let i = 0; i < n; i++) {
          const ptr = v.getUint32(iovs + 8 * i, true), len = v.getUint32(iovs + 8 * i + 4, true);
          this.out[fd - 1] += dec.decode(this.bytes().subarray(ptr, ptr + len));
          total += len;
        }
        v.setUint32(out, total, true);
        return ESUCCESS;
      },
      proc_exit: (code) => { throw new Exit(code); },
      sched_yield: () => ESUCCESS,
    };
  }

  importObject() {
    const known = this.imports();
    const handler = { get: (t, name) => known[name] ?? (() => ENOSYS) };
    return { wasi_snapshot_preview1: new Proxy({}, handler) };
  }
}
