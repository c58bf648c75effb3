// Shared helpers for the VFS suites: boot one kernel per test file, run as another user,
// and check errno results table by table.
import type { Test } from 'tap';
import { startKernel, errnoName, type Sys } from '../../lib/index.js';

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array) => new TextDecoder().decode(b);

export interface Booted { sys: Sys; halt(): Promise<void>; messages: string[] }

export async function boot(memMiB = 64): Promise<Booted> {
  const messages: string[] = [];
  const k = await startKernel({ memMiB, print: (m) => messages.push(m) });
  return { sys: k.sys, halt: () => k.halt(), messages };
}

/** Expect a call to fail with -errno (or succeed when errno is 0). */
export async function expectErrno(t: Test, p: Promise<unknown>, errno: number, what: string): Promise<void> {
  const r = await p;
  if (errno === 0) {
    const ok = typeof r !== 'number' || r >= 0;
    t.ok(ok, `${what}: succeeds${ok ? '' : ` (got ${errnoName(r as number)})`}`);
  } else {
    t.equal(r, -errno, `${what}: ${errnoName(errno)}${r === -errno ? '' : ` (got ${typeof r === 'number' ? (r < 0 ? errnoName(r) : r) : typeof r})`}`);
  }
}

export type Case = [what: string, call: () => Promise<unknown>, errno: number];
/** Run a table of [description, call, expected errno] in order. */
export async function table(t: Test, cases: Case[]): Promise<void> {
  for (const [what, call, errno] of cases) await expectErrno(t, call(), errno, what);
}

/** Run fn with effective uid/gid (and groups) changed, restoring root afterwards. */
export async function asUser<T>(sys: Sys, uid: number, gid: number, groups: number[], fn: () => Promise<T>): Promise<T> {
  if (await sys.setgroups(groups) !== 0) throw new Error('setgroups failed');
  if (await sys.setresgid(-1, gid, -1) !== 0) throw new Error('setresgid failed');
  if (await sys.setresuid(-1, uid, -1) !== 0) throw new Error('setresuid failed');
  try { return await fn(); } finally {
    await sys.setresuid(-1, 0, -1);
    await sys.setresgid(-1, 0, -1);
    await sys.setgroups([]);
  }
}

/** Create a file with contents; returns 0 or -errno. */
export async function writeFile(sys: Sys, path: string, data: string | Uint8Array, mode = 0o644): Promise<number> {
  const fd = await sys.open(path, 0o1101 /* O_WRONLY|O_CREAT|O_TRUNC */, mode);
  if (fd < 0) return fd;
  const b = typeof data === 'string' ? enc(data) : data;
  const n = await sys.write(fd, b);
  await sys.close(fd);
  return n < 0 ? n : 0;
}
/** A whole file's bytes through read(2), or -errno. */
export async function readBytes(sys: Sys, path: string): Promise<Uint8Array | number> {
  const fd = await sys.open(path, 0, 0);
  if (fd < 0) return fd;
  const chunks: Uint8Array[] = [];
  for (;;) {
    const b = new Uint8Array(65536);
    const n = await sys.read(fd, b);
    if (n < 0) { await sys.close(fd); return n; }
    if (n === 0) break;
    chunks.push(b.subarray(0, n));
  }
  await sys.close(fd);
  return new Uint8Array(Buffer.concat(chunks));
}
export async function readFile(sys: Sys, path: string): Promise<string | number> {
  const b = await readBytes(sys, path);
  return typeof b === 'number' ? b : dec(b);
}
