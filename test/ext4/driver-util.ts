// Helpers for the ext4 driver tests: a manifest producer that reads a tree through lkl-ts's
// system calls (the same shape hostManifest() makes through the host kernel), an in-memory
// Ext4Dev over an image file for tests that drive the filesystem code without a kernel,
// and image fingerprints.

import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Sys } from '../../lib/kernel/include/sys.js';
import {
  AT_FDCWD, AT_SYMLINK_NOFOLLOW, O_DIRECTORY, O_RDONLY, SEEK_DATA, SEEK_HOLE, ENXIO, S_IFMT,
  type stat,
} from '../../lib/kernel/include/uapi.js';
import { comparePaths, fingerprintFile, matchPath, rdevString, type FileType, type Manifest, type ManifestEntry, type PathPattern } from '../lib/manifest.js';
import type { Ext4Dev } from '../../lib/kernel/fs/ext4/ext4.js';

const tsNs = (t: { sec: number; nsec: number }) => BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);

function typeOfMode(mode: number): FileType {
  switch (mode & S_IFMT) {
    case 0o100000: return 'file';
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o010000: return 'fifo';
    case 0o020000: return 'chr';
    case 0o060000: return 'blk';
    default: return 'sock';
  }
}

async function check<T>(what: string, r: T | number): Promise<T> {
  if (typeof r === 'number' && r < 0) throw new Error(`${what}: errno ${-r}`);
  return r as T;
}

/** sha256 of a file read through lkl-ts; large files skip holes via SEEK_DATA/SEEK_HOLE. */
async function hashLkl(sys: Sys, abs: string, size: number): Promise<string> {
  const h = crypto.createHash('sha256');
  const fd = await check('open ' + abs, await sys.open(abs, O_RDONLY, 0));
  try {
    const CH = 1 << 20;
    const buf = new Uint8Array(CH);
    const zeros = new Uint8Array(CH);
    let pos = 0;
    const readTo = async (end: number) => {
      while (pos < end) {
        const n = await sys.pread64(fd, buf.subarray(0, Math.min(CH, end - pos)), pos);
        if (n < 0) throw new Error(`pread ${abs} at ${pos}: errno ${-n}`);
        if (n === 0) throw new Error(`pread ${abs}: unexpected EOF at ${pos} of ${size}`);
        h.update(buf.subarray(0, n));
        pos += n;
      }
    };
    if (size < 64 * 1024 * 1024) {
      await readTo(size);
    } else {
      while (pos < size) {
        let data = await sys.lseek(fd, pos, SEEK_DATA);
        if (data === -ENXIO) data = size;
        if (data < 0) throw new Error(`SEEK_DATA ${abs}: errno ${-data}`);
        while (pos < data) { const n = Math.min(CH, data - pos); h.update(zeros.subarray(0, n)); pos += n; }
        if (pos >= size) break;
        const hole = await sys.lseek(fd, pos, SEEK_HOLE);
        if (hole < 0) throw new Error(`SEEK_HOLE ${abs}: errno ${-hole}`);
        await readTo(Math.min(hole, size));
      }
    }
  } finally { await sys.close(fd); }
  return h.digest('hex');
}

export interface LklManifestOptions { producer?: string; exclude?: PathPattern[]; hash?: boolean; xattrs?: boolean }

/** Walk `root` (a path inside lkl-ts) with lstat, readlink, getdents64, pread and the xattr calls. */
export async function lklManifest(sys: Sys, root: string, opts: LklManifestOptions = {}): Promise<Manifest> {
  const entries: ManifestEntry[] = [];
  const byIno = new Map<number, ManifestEntry[]>();
  const modeOf = new Map<ManifestEntry, number>();
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === '.' ? root : `${root}/${rel}`;
    const st = await check<stat>('lstat ' + abs, await sys.newfstatat(AT_FDCWD, abs, AT_SYMLINK_NOFOLLOW));
    const e: ManifestEntry = {
      path: rel, type: typeOfMode(st.mode), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid,
      size: st.size, nlink: st.nlink, atimeNs: tsNs(st.atime), mtimeNs: tsNs(st.mtime), ctimeNs: tsNs(st.ctime),
    };
    if (e.type === 'chr' || e.type === 'blk') e.rdev = rdevString(BigInt(st.rdev));
    if (e.type === 'symlink') e.target = await check<string>('readlink ' + abs, await sys.readlink(abs));
    if (e.type === 'file' && opts.hash !== false) e.sha256 = await hashLkl(sys, abs, st.size);
    if (opts.xattrs !== false) {
      const names = await check<string[]>('llistxattr ' + abs, await sys.llistxattr(abs));
      const x: Record<string, string> = {};
      for (const n of [...names].sort()) {
        const v = await check<Uint8Array>(`lgetxattr ${abs} ${n}`, await sys.lgetxattr(abs, n));
        x[n] = Buffer.from(v).toString('hex');
      }
      e.xattrs = x;
    }
    entries.push(e);
    modeOf.set(e, st.mode);
    if (e.type !== 'dir') {
      const g = byIno.get(st.ino);
      if (g) g.push(e); else byIno.set(st.ino, [e]);
    } else {
      const fd = await check<number>('open ' + abs, await sys.open(abs, O_RDONLY | O_DIRECTORY, 0));
      const names: string[] = [];
      const dtypes = new Map<string, number>();
      try {
        for (;;) {
          const ents = await sys.getdents64(fd, 32768);
          if (typeof ents === 'number') throw new Error(`getdents64 ${abs}: errno ${-ents}`);
          if (ents.length === 0) break;
          for (const d of ents) if (d.name !== '.' && d.name !== '..') { names.push(d.name); dtypes.set(d.name, d.type); }
        }
      } finally { await sys.close(fd); }
      const seen = new Set<string>();
      for (const name of names) {
        if (seen.has(name)) throw new Error(`${abs}: readdir returned ${JSON.stringify(name)} twice`);
        seen.add(name);
        const child = rel === '.' ? name : `${rel}/${name}`;
        if (matchPath(child, opts.exclude)) continue;
        const before = entries.length;
        await walk(child);
        // d_type from getdents must agree with lstat (DT_UNKNOWN is allowed: no filetype feature).
        const dt = dtypes.get(name)!;
        const ce = entries[before]!;
        if (dt !== 0 && dt !== ((modeOf.get(ce) ?? 0) >>> 12)) throw new Error(`${abs}/${name}: d_type ${dt} but lstat says mode ${(modeOf.get(ce) ?? 0).toString(8)}`);
      }
    }
  };
  await walk('.');
  for (const g of byIno.values()) {
    if (g.length < 2) continue;
    const paths = g.map((x) => x.path).sort(comparePaths);
    for (const x of g) x.links = paths;
  }
  entries.sort((a, b) => comparePaths(a.path, b.path));
  return { producer: opts.producer ?? 'lkl-ts', entries };
}

/** An Ext4Dev over an image held in memory (tests without a kernel). Writes are refused. */
export function memDev(img: Uint8Array, opts: { readOnly?: boolean; onRead?: (blk: number) => void } = {}): Ext4Dev & { reads: number; writes: Map<number, Uint8Array> } {
  let bs = 1024;
  const writes = new Map<number, Uint8Array>();
  const dev = {
    sizeBytes: img.length,
    readOnly: opts.readOnly ?? true,
    reads: 0,
    writes,
    async setBlockSize(size: number) { bs = size; },
    async bread(blk: number) {
      dev.reads++;
      opts.onRead?.(blk);
      const w = writes.get(blk);
      if (w) return w;
      if ((blk + 1) * bs > img.length) throw Object.assign(new Error('EIO'), { errno: 5 });
      return img.slice(blk * bs, (blk + 1) * bs);
    },
    async write(blk: number, data: Uint8Array) {
      if (dev.readOnly) throw new Error('write to a read-only memDev');
      writes.set(blk, data.slice());
    },
    async flush() {},
  };
  return dev;
}

/** What "the image is unchanged" compares: bytes and hole map, streamed (images pass 2 GiB). */
export function sha256File(p: string): Promise<string> {
  return fingerprintFile(p);
}
