// The write-side test script shared by write-diff.test.ts and jbd2-write-diff.test.ts: a list
// of operations, applied by lkl-ts through its system calls (lklApply) and by the host kernel
// through a loop mount (hostApply), so that the two results can be compared.

import fs from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';
import { run } from '../lib/sh.js';
import { makeExtImage, withLoopMount, e2fsckClean, type ExtImageOptions } from '../lib/images.js';
import { diffManifests, hostManifest } from '../lib/manifest.js';
import { O_CREAT, O_WRONLY, O_TRUNC, O_APPEND, AT_FDCWD, AT_SYMLINK_NOFOLLOW, type Kernel } from '../../lib/index.js';

export type Op =
  | { op: 'mkdir'; p: string; mode: number }
  | { op: 'write'; p: string; size: number; seed: number; at?: number; mode?: 'trunc' | 'append' | 'keep' }
  | { op: 'truncate'; p: string; size: number }
  | { op: 'symlink'; target: string; p: string }
  | { op: 'link'; from: string; p: string }
  | { op: 'unlink'; p: string }
  | { op: 'rmdir'; p: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'mknod'; p: string; kind: 'p' | 'c' | 'b'; major?: number; minor?: number }
  | { op: 'chmod'; p: string; mode: number }
  | { op: 'chown'; p: string; uid: number; gid: number }
  | { op: 'times'; p: string; sec: number; nsec: number }
  | { op: 'fallocate'; p: string; mode: 'alloc' | 'keep' | 'punch' | 'zero' | 'collapse' | 'insert'; off: number; len: number };

export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

export const MiB = 1024 * 1024;

/** The script; `sparseFar` is where the far sparse write lands (beyond what block maps of 1 KiB blocks reach cheaply). */
export function script(sparseFar: number, extents: boolean): Op[] {
  const ops: Op[] = [
    { op: 'mkdir', p: 'new', mode: 0o755 },
    { op: 'mkdir', p: 'new/a', mode: 0o750 },
    { op: 'mkdir', p: 'new/a/b', mode: 0o700 },
    { op: 'write', p: 'new/empty', size: 0, seed: 0 },
    { op: 'write', p: 'new/one', size: 1, seed: 1 },
    { op: 'write', p: 'new/1023', size: 1023, seed: 2 },
    { op: 'write', p: 'new/4095', size: 4095, seed: 3 },
    { op: 'write', p: 'new/4096', size: 4096, seed: 4 },
    { op: 'write', p: 'new/4097', size: 4097, seed: 5 },
    { op: 'write', p: 'new/a/70k', size: 70_000, seed: 6 },
    { op: 'write', p: 'new/a/b/big', size: 6 * MiB + 123, seed: 7 },
    { op: 'write', p: 'new/sparse', size: 5000, seed: 8, at: 3 * MiB },
    { op: 'write', p: 'new/sparse', size: 100, seed: 9, at: sparseFar, mode: 'keep' },
    { op: 'write', p: 'new/sparse', size: 10, seed: 10, at: 20, mode: 'keep' },
    { op: 'write', p: 'new/a/70k', size: 3000, seed: 11, at: 30_000, mode: 'keep' },
    { op: 'write', p: 'new/4097', size: 9000, seed: 12, mode: 'append' },
    { op: 'truncate', p: 'new/a/b/big', size: 2 * MiB + 77 },
    { op: 'truncate', p: 'new/4096', size: 0 },
    { op: 'truncate', p: 'new/1023', size: 100_000 },
    { op: 'truncate', p: 'new/sparse', size: 2 * MiB },
    { op: 'symlink', target: 'a/70k', p: 'new/fast-link' },
    { op: 'symlink', target: 'x/'.repeat(60) + 'end', p: 'new/slow-link' },
    { op: 'link', from: 'new/one', p: 'new/a/one-again' },
    { op: 'link', from: 'new/4095', p: 'new/4095-link' },
    { op: 'unlink', p: 'new/4095' },
    { op: 'mknod', p: 'new/fifo', kind: 'p' },
    { op: 'mknod', p: 'new/chr', kind: 'c', major: 1, minor: 3 },
    { op: 'mknod', p: 'new/blk-wide', kind: 'b', major: 259, minor: 70000 },
    { op: 'rename', from: 'new/empty', to: 'new/a/empty-moved' },
    { op: 'rename', from: 'new/4097', to: 'new/one' },
    { op: 'rename', from: 'new/a/b', to: 'new/b-moved' },
    { op: 'mkdir', p: 'new/gone', mode: 0o755 },
    { op: 'rmdir', p: 'new/gone' },
    { op: 'chmod', p: 'new/a/70k', mode: 0o4711 },
    { op: 'chown', p: 'new/a/one-again', uid: 1234, gid: 5678 },
    { op: 'chown', p: 'new/fast-link', uid: 77, gid: 88 },
    // Changes to the host-written starting tree.
    { op: 'write', p: 'start/f3', size: 12345, seed: 13, mode: 'trunc' },
    { op: 'unlink', p: 'start/f1' },
    { op: 'rename', from: 'start/f2', to: 'new/from-start' },
    { op: 'rename', from: 'start/sub', to: 'new/a/sub' },
    { op: 'write', p: 'new/a/sub/inner', size: 777, seed: 14, mode: 'append' },
  ];
  if (extents) {
    ops.push(
      { op: 'write', p: 'new/fa', size: 300_000, seed: 20 },
      { op: 'fallocate', p: 'new/fa', mode: 'punch', off: 5000, len: 70_000 },
      { op: 'fallocate', p: 'new/fa', mode: 'punch', off: 100, len: 50 },
      { op: 'fallocate', p: 'new/fa', mode: 'zero', off: 150_000, len: 40_000 },
      { op: 'fallocate', p: 'new/fa', mode: 'alloc', off: 250_000, len: 200_000 },
      { op: 'fallocate', p: 'new/fa', mode: 'keep', off: 600_000, len: 100_000 },
      { op: 'write', p: 'new/fa', size: 3000, seed: 21, at: 260_000, mode: 'keep' },
      { op: 'fallocate', p: 'new/prealloc', mode: 'alloc', off: 0, len: 2 * MiB + 5 },
      { op: 'write', p: 'new/prealloc', size: 10_000, seed: 22, at: 1 * MiB, mode: 'keep' },
      { op: 'write', p: 'new/b-moved/big', size: 1, seed: 23, at: 0, mode: 'keep' },
      { op: 'fallocate', p: 'new/b-moved/big', mode: 'punch', off: 4096 * 3, len: 1 * MiB },
      // Collapse and insert range (4 KiB-aligned: whole blocks of every block size here):
      // a long extent cut and split, and fa's holes and unwritten extents moved.
      { op: 'write', p: 'new/ci', size: 600_000, seed: 24 },
      { op: 'fallocate', p: 'new/ci', mode: 'collapse', off: 4096 * 10, len: 4096 * 20 },
      { op: 'fallocate', p: 'new/ci', mode: 'insert', off: 4096 * 5, len: 4096 * 8 },
      { op: 'write', p: 'new/ci', size: 5000, seed: 25, at: 4096 * 6, mode: 'keep' },
      { op: 'fallocate', p: 'new/fa', mode: 'collapse', off: 4096 * 2, len: 4096 * 4 },
      { op: 'fallocate', p: 'new/fa', mode: 'insert', off: 4096 * 30, len: 4096 * 3 },
    );
    // A file of 200 separate extents (an extent tree with leaf blocks) collapsed across
    // leaves and opened up in the middle.
    for (let i = 0; i < 200; i++) ops.push({ op: 'write', p: 'new/sparse-ci', size: 4096, seed: 300 + i, at: 8192 * i, mode: 'keep' });
    ops.push(
      { op: 'fallocate', p: 'new/sparse-ci', mode: 'collapse', off: 8192 * 50, len: 8192 * 60 + 4096 },
      { op: 'fallocate', p: 'new/sparse-ci', mode: 'insert', off: 8192 * 20, len: 4096 * 7 },
      { op: 'fallocate', p: 'new/sparse-ci', mode: 'collapse', off: 0, len: 8192 * 3 },
    );
  }
  else {
    // Block maps hold no unwritten extents: only holes can be punched (ext4_ind_remove_space).
    ops.push(
      { op: 'write', p: 'new/fa', size: 300_000, seed: 20 },
      { op: 'fallocate', p: 'new/fa', mode: 'punch', off: 5000, len: 70_000 },
      { op: 'fallocate', p: 'new/fa', mode: 'punch', off: 100, len: 50 },
      { op: 'fallocate', p: 'new/b-moved/big', mode: 'punch', off: 4096 * 3, len: 1 * MiB },
    );
  }
  for (let i = 0; i < 150; i++) ops.push({ op: 'write', p: `new/many/file-with-a-longer-name-${i}`, size: (i * 37) % 5000, seed: 100 + i });
  ops.splice(1, 0, { op: 'mkdir', p: 'new/many', mode: 0o755 });
  for (let i = 0; i < 150; i += 3) ops.push({ op: 'unlink', p: `new/many/file-with-a-longer-name-${i}` });
  return ops;
}

/** Paths whose times the script sets at the end (everything under new/ and start/ that exists). */
export const TIME_SEC = 1_600_000_000;

export async function lklApply(k: Kernel, root: string, ops: Op[]): Promise<void> {
  const sys = k.sys;
  const P = (p: string) => `${root}/${p}`;
  const ok = (what: string, r: number) => { if (r < 0) throw new Error(`lkl-ts ${what}: errno ${-r}`); return r; };
  for (const o of ops) {
    switch (o.op) {
      case 'mkdir': ok(`mkdir ${o.p}`, await sys.mkdir(P(o.p), o.mode)); break;
      case 'write': {
        const flags = O_WRONLY | O_CREAT | (o.mode === 'append' ? O_APPEND : o.mode === 'keep' ? 0 : O_TRUNC);
        const fd = ok(`open ${o.p}`, await sys.open(P(o.p), flags, 0o644));
        const data = pattern(o.size, o.seed);
        let off = 0;
        while (off < data.length) {
          const chunk = data.subarray(off, Math.min(data.length, off + 128 * 1024));
          const n = o.at !== undefined ? await sys.pwrite64(fd, chunk, o.at + off) : await sys.write(fd, chunk);
          ok(`write ${o.p}`, n);
          off += n;
        }
        ok('close', await sys.close(fd));
        break;
      }
      case 'truncate': ok(`truncate ${o.p}`, await sys.truncate(P(o.p), o.size)); break;
      case 'symlink': ok(`symlink ${o.p}`, await sys.symlink(o.target, P(o.p))); break;
      case 'link': ok(`link ${o.p}`, await sys.link(P(o.from), P(o.p))); break;
      case 'unlink': ok(`unlink ${o.p}`, await sys.unlink(P(o.p))); break;
      case 'rmdir': ok(`rmdir ${o.p}`, await sys.rmdir(P(o.p))); break;
      case 'rename': ok(`rename ${o.from}`, await sys.rename(P(o.from), P(o.to))); break;
      case 'mknod': {
        const type = o.kind === 'p' ? 0o010000 : o.kind === 'c' ? 0o020000 : 0o060000;
        const mj = o.major ?? 0, mn = o.minor ?? 0;
        const dev = ((mn & 0xff) | ((mj & 0xfff) << 8) | ((mn & ~0xff) << 12)) >>> 0;
        ok(`mknod ${o.p}`, await sys.mknodat(AT_FDCWD, P(o.p), type | 0o644, dev));
        break;
      }
      case 'chmod': ok(`chmod ${o.p}`, await sys.chmod(P(o.p), o.mode)); break;
      case 'chown': ok(`chown ${o.p}`, await sys.lchown(P(o.p), o.uid, o.gid)); break;
      case 'fallocate': {
        const fd = ok(`open ${o.p}`, await sys.open(P(o.p), O_WRONLY | O_CREAT, 0o644));
        const mode = { alloc: 0, keep: 1, punch: 3, zero: 0x10, collapse: 0x08, insert: 0x20 }[o.mode];
        ok(`fallocate ${o.p}`, await sys.fallocate(fd, mode, o.off, o.len));
        ok('close', await sys.close(fd));
        break;
      }
      case 'times': {
        const ts = { sec: o.sec, nsec: o.nsec };
        ok(`utimensat ${o.p}`, await sys.utimensat(AT_FDCWD, P(o.p), [ts, ts], AT_SYMLINK_NOFOLLOW));
        break;
      }
    }
  }
}

export async function hostApply(root: string, ops: Op[]): Promise<void> {
  const P = (p: string) => path.join(root, p);
  for (const o of ops) {
    switch (o.op) {
      case 'mkdir': fs.mkdirSync(P(o.p)); fs.chmodSync(P(o.p), o.mode); break;
      case 'write': {
        const flags = o.mode === 'append' ? 'a' : o.mode === 'keep' ? (fs.existsSync(P(o.p)) ? 'r+' : 'w') : 'w';
        const fd = fs.openSync(P(o.p), flags, 0o644);
        const data = pattern(o.size, o.seed);
        let off = 0;
        while (off < data.length) {
          const n = Math.min(data.length - off, 128 * 1024);
          if (o.at !== undefined) fs.writeSync(fd, data, off, n, o.at + off);
          else fs.writeSync(fd, data, off, n);
          off += n;
        }
        fs.closeSync(fd);
        break;
      }
      case 'truncate': fs.truncateSync(P(o.p), o.size); break;
      case 'symlink': fs.symlinkSync(o.target, P(o.p)); break;
      case 'link': fs.linkSync(P(o.from), P(o.p)); break;
      case 'unlink': fs.unlinkSync(P(o.p)); break;
      case 'rmdir': fs.rmdirSync(P(o.p)); break;
      case 'rename': fs.renameSync(P(o.from), P(o.to)); break;
      case 'mknod':
        await run('mknod', ['-m', '644', P(o.p), o.kind, ...(o.kind === 'p' ? [] : [String(o.major), String(o.minor)])]);
        break;
      case 'chmod': fs.chmodSync(P(o.p), o.mode); break;
      case 'chown': fs.lchownSync(P(o.p), o.uid, o.gid); break;
      case 'fallocate': {
        const flag = { alloc: [], keep: ['-n'], punch: ['-p'], zero: ['-z'], collapse: ['-c'], insert: ['-i'] }[o.mode];
        await run('fallocate', [...flag, '-o', String(o.off), '-l', String(o.len), P(o.p)]);
        break;
      }
      case 'times': {
        // touch reads @-1.25 as -(1.25): a negative time with nanoseconds is written from below.
        const at = o.sec < 0 && o.nsec > 0 ? `-${-(o.sec + 1)}.${String(1e9 - o.nsec).padStart(9, '0')}`
          : `${o.sec}.${String(o.nsec).padStart(9, '0')}`;
        await run('touch', ['-h', '-d', `@${at}`, P(o.p)]);
        break;
      }
    }
  }
}

/** A `times` op for every path under `rel` of a host tree (deepest first, so directories keep theirs). */
export function timeOps(root: string, rel: string, nsec: boolean): Op[] {
  const out: Op[] = [];
  let i = 0;
  const walk = (r: string) => {
    const st = fs.lstatSync(path.join(root, r));
    if (st.isDirectory()) for (const n of fs.readdirSync(path.join(root, r)).sort()) walk(`${r}/${n}`);
    out.push({ op: 'times', p: r, sec: TIME_SEC + 1000 * i, nsec: nsec ? (i * 7919) % 1e9 : 0 });
    i++;
  };
  walk(rel);
  return out;
}

/** One differential case: the image kinds of write-diff and jbd2-write-diff. */
export interface DiffCase {
  name: string; fsType: 'ext2' | 'ext4'; image: Omit<ExtImageOptions, 'dir' | 'path'>; nsec: boolean; sparseFar: number;
  /** The script's fallocate steps need extents (block maps only punch holes). */
  extents: boolean;
  /** Where the two kernels may lay things out differently, and why. */
  layout?: { path: RegExp; fields: ['dirSize']; why: string };
}

/**
 * The host kernel writes a starting tree, the image is copied, the script is applied to one
 * copy by lkl-ts (mounted with `mountData`) and to the other by a loop mount; both must pass
 * e2fsck -fn and the host kernel must read both trees alike. Returns the lkl-ts image.
 */
export async function runDiffCase(t: Test, k: Kernel, dir: string, c: DiffCase, mountData = ''): Promise<string> {
  const base = path.join(dir, `${c.name.replace(/\W+/g, '_')}.img`);
  await makeExtImage({ ...c.image, path: base });
  await withLoopMount(base, {}, async (mnt) => {
    fs.mkdirSync(path.join(mnt, 'start/sub'), { recursive: true });
    for (let i = 1; i <= 3; i++) fs.writeFileSync(path.join(mnt, `start/f${i}`), pattern(i * 3000, i));
    fs.writeFileSync(path.join(mnt, 'start/sub/inner'), 'inner\n');
  });
  const lklImg = `${base}.lkl`, hostImg = `${base}.host`;
  fs.copyFileSync(base, lklImg);
  fs.copyFileSync(base, hostImg);
  const ops = script(c.sparseFar, c.extents);

  let times: Op[] = [];
  let hostFree = '';
  await withLoopMount(hostImg, {}, async (mnt) => {
    await hostApply(mnt, ops);
    times = [...timeOps(mnt, 'new', c.nsec), ...timeOps(mnt, 'start', c.nsec),
      // Past 2038 (the epoch bits of *_extra), before 1970 (negative seconds), the last ns:
      // 128-byte inodes hold neither, and both kernels clamp them the same way.
      { op: 'times', p: 'new/one', sec: 8_500_000_000, nsec: 999_999_999 },
      { op: 'times', p: 'new/a/70k', sec: -300_000_000, nsec: 1 },
      { op: 'times', p: 'new/fast-link', sec: 2_147_483_648, nsec: 5 }];
    await hostApply(mnt, times);
    hostFree = (await run('stat', ['-f', '-c', '%c %d', mnt])).stdout.trim();
  });

  const id = await k.diskAdd({ path: lklImg });
  const mnt = await k.mountDev(id, 0, c.fsType, 0, mountData);
  t.type(mnt, 'string', `mounted read-write as ${c.fsType}`);
  if (typeof mnt !== 'string') return lklImg;
  try {
    await lklApply(k, mnt, ops);
    await lklApply(k, mnt, times);
    const st = await k.sys.statfs(mnt);
    t.equal(typeof st === 'number' ? st : `${st.files} ${st.ffree}`, hostFree, 'statfs inode counts as the host kernel\'s');
  } finally {
    t.equal(await k.umountDev(id, 0), 0, 'unmounted');
  }

  await checkBothImages(t, lklImg, hostImg, { ignore: ['ctime'], ignoreAt: [
    { path: ['.', 'lost+found'], fields: ['atime', 'mtime'], why: 'the script does not set their times' },
    ...(c.layout ? [c.layout] : []),
  ] });
  return lklImg;
}

/**
 * The checks every differential case ends with: e2fsck -fn clean on the image lkl-ts wrote
 * and on the host's, and the host kernel reading both trees alike (but for `opts`).
 */
export async function checkBothImages(t: Test, lklImg: string, hostImg: string, opts: Parameters<typeof diffManifests>[2]): Promise<void> {
  for (const [who, img] of [['lkl-ts', lklImg], ['host', hostImg]] as const) {
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, `e2fsck -fn is clean on the image ${who} wrote`, { output: ck.output });
  }
  const ref = await withLoopMount(hostImg, { ro: true }, (m) => hostManifest(m, { producer: 'host' }));
  const got = await withLoopMount(lklImg, { ro: true }, (m) => hostManifest(m, { producer: 'lkl-ts' }));
  t.same(diffManifests(ref, got, opts), [], 'the host kernel reads the tree lkl-ts wrote as the one it wrote itself');
}
