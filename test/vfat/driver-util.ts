/*
 * Helpers for the vfat driver tests: images made by mkfs.vfat + mcopy, a kernel with the
 * image as a disk, trees read through lkl-ts system calls, through mtools and from the
 * host, in one comparable shape.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startKernel, O_RDONLY, O_DIRECTORY, type Kernel, type Sys } from '../../lib/index.js';

export const TOOL_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };
export const SCRATCH = join(tmpdir(), 'lkl-ts-vfatdrv');

export function scratchDir(name: string): string {
  mkdirSync(SCRATCH, { recursive: true });
  return mkdtempSync(join(SCRATCH, `${name}-`));
}

/** mkfs.vfat arguments that really give each FAT type (size in KiB, sectors per cluster). */
export const FAT_GEOMETRY: Record<12 | 16 | 32, { kib: number; spc: number }> = {
  12: { kib: 4096, spc: 4 },
  16: { kib: 8192, spc: 2 },
  32: { kib: 40960, spc: 1 },
};

export function mkfs(img: string, bits: 12 | 16 | 32, kib?: number, extra: string[] = []): void {
  const g = FAT_GEOMETRY[bits];
  rmSync(img, { force: true });
  execFileSync('mkfs.vfat', ['-C', '-F', String(bits), '-s', String(g.spc), '-i', '12345678', ...extra, img, String(kib ?? g.kib)], { env: TOOL_ENV, stdio: 'pipe' });
}

export function mcopyIn(img: string, hostDir: string): void {
  const entries = readdirSync(hostDir).map((e) => join(hostDir, e));
  if (entries.length) execFileSync('mcopy', ['-s', '-m', '-i', img, ...entries, '::/'], { env: TOOL_ENV, stdio: 'pipe' });
}

export function fsckVfat(img: string): { status: number; out: string } {
  const r = spawnSync('fsck.vfat', ['-n', img], { env: TOOL_ENV, encoding: 'utf8' });
  return { status: r.status ?? -1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** fsck.vfat's output minus its banner and summary: whatever is left names a problem. */
export function fsckProblems(out: string): string[] {
  return out.split('\n').filter((l) => l.trim() && !/^fsck\.fat \d/.test(l) && !/: \d+ files, \d+\/\d+ clusters$/.test(l));
}

export interface TreeEntry { type: 'f' | 'd'; size: number; sha: string; mtime: number }
export type Tree = Map<string, TreeEntry>;

function sha(b: Uint8Array): string { return createHash('sha256').update(b).digest('hex'); }

/** A host directory as a Tree (paths relative, '/'-joined). */
export function hostTree(dir: string, prefix = '', out: Tree = new Map()): Tree {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    const rel = prefix + name;
    if (st.isDirectory()) {
      out.set(rel, { type: 'd', size: 0, sha: '', mtime: Math.floor(st.mtimeMs / 1000) });
      hostTree(p, rel + '/', out);
    } else out.set(rel, { type: 'f', size: st.size, sha: sha(readFileSync(p)), mtime: Math.floor(st.mtimeMs / 1000) });
  }
  return out;
}

/** What mtools sees: the image copied out with mcopy -s -m. */
export function mtoolsTree(img: string): Tree {
  const dir = scratchDir('mcopy');
  try {
    const r = spawnSync('mcopy', ['-s', '-m', '-n', '-i', img, '::/*', dir + '/'], { env: TOOL_ENV, encoding: 'utf8' });
    if (r.status !== 0 && !/not found/.test(r.stderr)) throw new Error(`mcopy failed: ${r.stderr}`);
    return hostTree(dir);
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** The tree under `path` through lkl-ts system calls. */
export async function lklTree(sys: Sys, path: string, prefix = '', out: Tree = new Map()): Promise<Tree> {
  const fd = await sys.open(path, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) throw new Error(`open ${path}: ${fd}`);
  const names: string[] = [];
  for (;;) {
    const r = await sys.getdents64(fd, 32768);
    if (typeof r === 'number') throw new Error(`getdents64 ${path}: ${r}`);
    if (r.length === 0) break;
    for (const e of r) if (e.name !== '.' && e.name !== '..') names.push(e.name);
  }
  await sys.close(fd);
  for (const name of names) {
    const p = `${path}/${name}`;
    const st = await sys.stat(p);
    if (typeof st === 'number') throw new Error(`stat ${p}: ${st}`);
    const rel = prefix + name;
    if ((st.mode & 0o170000) === 0o040000) {
      out.set(rel, { type: 'd', size: 0, sha: '', mtime: st.mtime.sec });
      await lklTree(sys, p, rel + '/', out);
    } else {
      const data = await readAll(sys, p);
      out.set(rel, { type: 'f', size: st.size, sha: sha(data), mtime: st.mtime.sec });
    }
  }
  return out;
}

export async function readAll(sys: Sys, p: string): Promise<Uint8Array> {
  const fd = await sys.open(p, O_RDONLY, 0);
  if (fd < 0) throw new Error(`open ${p}: ${fd}`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const b = new Uint8Array(65536);
    const n = await sys.read(fd, b);
    if (n < 0) throw new Error(`read ${p}: ${n}`);
    if (n === 0) break;
    chunks.push(b.subarray(0, n));
    total += n;
  }
  await sys.close(fd);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

/** Differences between two trees (mtimes compared to `slack` seconds; dirs' mtimes ignored). */
export function treeDiff(a: Tree, b: Tree, slack = 1): string[] {
  const diffs: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w) { diffs.push(`only in first: ${k}`); continue; }
    if (v.type !== w.type) diffs.push(`${k}: type ${v.type} vs ${w.type}`);
    else if (v.type === 'f') {
      if (v.size !== w.size) diffs.push(`${k}: size ${v.size} vs ${w.size}`);
      if (v.sha !== w.sha) diffs.push(`${k}: content differs`);
      if (Math.abs(v.mtime - w.mtime) > slack) diffs.push(`${k}: mtime ${v.mtime} vs ${w.mtime}`);
    }
  }
  for (const k of b.keys()) if (!a.has(k)) diffs.push(`only in second: ${k}`);
  return diffs;
}

export interface Booted { k: Kernel; sys: Sys; log: string[]; disk: number }

export async function bootWithImage(img: string, memMiB = 64): Promise<Booted> {
  const log: string[] = [];
  const k = await startKernel({ memMiB, print: (m) => log.push(m) });
  const disk = await k.diskAdd({ path: img });
  if (disk < 0) throw new Error(`diskAdd: ${disk}`);
  return { k, sys: k.sys, log, disk };
}

/** The boot sector's state byte: dirty bit set? */
export function imageDirty(img: string, bits: 12 | 16 | 32): boolean {
  const b = readFileSync(img);
  return (b[bits === 32 ? 0x41 : 0x25]! & 1) !== 0;
}
