// The known tree the jbd2 crash children write and sync before they are killed, and how to
// check it through a host mount.
import fs from 'node:fs';
import path from 'node:path';

export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

export interface TreeEntry { path: string; type: 'dir' | 'file' | 'symlink'; size?: number; seed?: number; target?: string; targetBytes?: Uint8Array }

/** A slow symlink whose block starts with the jbd2 magic: the commit must escape it. */
export const ESCAPED_TARGET = new Uint8Array([0xc0, 0x3b, 0x39, 0x98, ...new TextEncoder().encode('-escape-me'.repeat(10))]);

/** Directories, files of sizes around block edges and a few MiB, symlinks; in creation order. */
export function knownTree(seed: number): TreeEntry[] {
  const r = rng(seed);
  const out: TreeEntry[] = [{ path: 'known', type: 'dir' }];
  for (let d = 0; d < 4; d++) {
    out.push({ path: `known/d${d}`, type: 'dir' });
    for (let f = 0; f < 12; f++) {
      const sizes = [0, 1, 1023, 1024, 4095, 4096, 4097, 65536, 100_000];
      const size = f < sizes.length ? sizes[f]! : r() % 300_000;
      out.push({ path: `known/d${d}/file-${f}`, type: 'file', size, seed: seed * 100 + d * 20 + f });
    }
  }
  out.push({ path: 'known/big', type: 'file', size: 3 * 1024 * 1024 + 17, seed: seed + 5000 });
  out.push({ path: 'known/link', type: 'symlink', target: 'd1/file-3' });
  out.push({ path: 'known/long-link', type: 'symlink', target: 'y/'.repeat(80) + 'end' });
  out.push({ path: 'known/escaped-link', type: 'symlink', targetBytes: ESCAPED_TARGET });
  return out;
}

/** Differences between a mounted tree and the known one (plus the fsynced file): [] if none. */
export function checkKnownTree(root: string, seed: number, fsynced = true): string[] {
  const bad: string[] = [];
  const want = [...knownTree(seed), ...fsynced ? [{ path: 'known/fsynced', type: 'file' as const, size: 77_777, seed: seed + 999 }] : []];
  for (const e of want) {
    const p = path.join(root, e.path);
    let st: fs.Stats;
    try { st = fs.lstatSync(p); } catch { bad.push(`${e.path}: missing`); continue; }
    if (e.type === 'dir') { if (!st.isDirectory()) bad.push(`${e.path}: not a directory`); continue; }
    if (e.type === 'symlink') {
      const ok = st.isSymbolicLink() && (e.targetBytes
        ? Buffer.compare(fs.readlinkSync(p, { encoding: 'buffer' }), Buffer.from(e.targetBytes)) === 0
        : fs.readlinkSync(p) === e.target);
      if (!ok) bad.push(`${e.path}: bad symlink`);
      continue;
    }
    if (!st.isFile() || st.size !== e.size) { bad.push(`${e.path}: size ${st.size}, want ${e.size}`); continue; }
    if (Buffer.compare(fs.readFileSync(p), Buffer.from(pattern(e.size!, e.seed!))) !== 0) bad.push(`${e.path}: content differs`);
  }
  return bad;
}
