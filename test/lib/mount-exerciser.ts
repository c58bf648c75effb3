/*
 * A seeded random exerciser of a mounted filesystem through the HOST's system calls (for
 * lklfuse mounts: scripts/soak.ts and its CI slice), with an in-memory model of its tree.
 * Operations: create and pwrite at random offsets, append, truncate up and down, unlink,
 * mkdir, rmdir (also of a non-empty directory: ENOTEMPTY), rename of files (also over an
 * existing file) and of directories, read-back of a random file; every result and errno is
 * checked against the model. At the end of a seed the whole tree is compared with the model,
 * then removed. Names are lowercase and distinct, and there are no links, so the same model
 * holds on FAT.
 *
 * The in-process exercisers (test/ext4/write-exerciser.test.ts, test/vfat/driver-exerciser.test.ts)
 * drive the kernel's Sys directly; this one drives a mount and shares nothing with them yet.
 */
import fs from 'node:fs';
import path from 'node:path';

/** xorshift32: the only randomness, so a seed reproduces a run. */
export class Rng {
  private x: number;
  constructor(seed: number) { this.x = (Math.imul(seed, 2654435761) >>> 0) || 1; }
  next(): number { let x = this.x; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.x = x >>> 0; return this.x; }
  int(n: number): number { return this.next() % n; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
}

type Node = { type: 'file'; data: Buffer } | { type: 'dir' };

export interface ExerciseResult { ops: number; files: number; dirs: number; bytesWritten: number; errnoChecks: number }

const MAX_FILE = 256 * 1024;

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = rng.next() || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff; }
  return b;
}

function errCode(fn: () => unknown): string | null {
  try { fn(); return null; } catch (e) { return (e as NodeJS.ErrnoException).code ?? String(e); }
}

/**
 * Runs `ops` random operations in `root/dir` (created; must not exist), checks the tree
 * against the model, removes it. Throws on the first disagreement, with the last operations.
 */
export function exerciseSeed(root: string, dir: string, seed: number, ops: number): ExerciseResult {
  const rng = new Rng(seed);
  const model = new Map<string, Node>();
  const log: string[] = [];
  const base = path.join(root, dir);
  fs.mkdirSync(base);
  model.set('', { type: 'dir' });
  const abs = (p: string) => (p ? path.join(base, p) : base);
  const fail = (msg: string): never => { throw new Error(`seed ${seed}: ${msg}\nlast operations:\n${log.slice(-12).join('\n')}`); };
  const keys = (t: Node['type']) => [...model.keys()].filter((k) => model.get(k)!.type === t);
  const childrenOf = (d: string) => [...model.keys()].filter((k) => k !== '' && path.dirname(k) === (d || '.'));
  const fresh = (d: string) => { for (;;) { const n = `${rng.pick(['f', 'file-with-a-longer-name-', 'x', 'data'])}${rng.int(1000)}`; const p = d ? `${d}/${n}` : n; if (!model.has(p)) return p; } };
  let bytesWritten = 0, errnoChecks = 0;
  const expectErr = (what: string, got: string | null, want: string | null) => {
    if (got !== want) fail(`${what}: got ${got ?? 'success'}, the model says ${want ?? 'success'}`);
    if (want) errnoChecks++;
  };
  for (let i = 0; i < ops; i++) {
    const r = rng.int(100);
    const dirs = keys('dir');
    const files = keys('file');
    if (r < 30 || files.length === 0) {
      // pwrite at a random offset into a new or existing file
      const p = files.length && rng.int(2) ? rng.pick(files) : fresh(rng.pick(dirs));
      const old = (model.get(p) as { data: Buffer } | undefined)?.data ?? Buffer.alloc(0);
      const off = rng.int(Math.min(MAX_FILE, old.length + 65536));
      const data = randomBytes(rng, 1 + rng.int(Math.min(65536, MAX_FILE - off)));
      log.push(`pwrite ${p} @${off} +${data.length}`);
      const fd = fs.openSync(abs(p), fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
      try { fs.writeSync(fd, data, 0, data.length, off); } finally { fs.closeSync(fd); }
      const nd = Buffer.alloc(Math.max(old.length, off + data.length));
      old.copy(nd);
      data.copy(nd, off);
      model.set(p, { type: 'file', data: nd });
      bytesWritten += data.length;
    } else if (r < 38) {
      const p = rng.pick(files);
      const old = (model.get(p) as { data: Buffer }).data;
      const data = randomBytes(rng, 1 + rng.int(8192));
      if (old.length + data.length > MAX_FILE) continue;
      log.push(`append ${p} +${data.length}`);
      fs.appendFileSync(abs(p), data);
      model.set(p, { type: 'file', data: Buffer.concat([old, data]) });
      bytesWritten += data.length;
    } else if (r < 46) {
      const p = rng.pick(files);
      const old = (model.get(p) as { data: Buffer }).data;
      const len = rng.int(2) ? rng.int(old.length + 1) : old.length + rng.int(100000);
      log.push(`truncate ${p} ${len}`);
      fs.truncateSync(abs(p), len);
      const nd = Buffer.alloc(len);
      old.copy(nd, 0, 0, Math.min(len, old.length));
      model.set(p, { type: 'file', data: nd });
    } else if (r < 54) {
      const p = rng.pick(files);
      log.push(`unlink ${p}`);
      fs.unlinkSync(abs(p));
      model.delete(p);
      expectErr(`unlink ${p} again`, errCode(() => fs.unlinkSync(abs(p))), 'ENOENT');
    } else if (r < 62) {
      if (dirs.length > 40) continue;
      const p = fresh(rng.pick(dirs));
      log.push(`mkdir ${p}`);
      fs.mkdirSync(abs(p));
      model.set(p, { type: 'dir' });
      expectErr(`mkdir ${p} again`, errCode(() => fs.mkdirSync(abs(p))), 'EEXIST');
    } else if (r < 68) {
      const cands = dirs.filter((d) => d !== '');
      if (!cands.length) continue;
      const p = rng.pick(cands);
      const empty = childrenOf(p).length === 0;
      log.push(`rmdir ${p} (${empty ? 'empty' : 'not empty'})`);
      expectErr(`rmdir ${p}`, errCode(() => fs.rmdirSync(abs(p))), empty ? null : 'ENOTEMPTY');
      if (empty) model.delete(p);
    } else if (r < 80) {
      // rename a file to a new name or over another file
      const src = rng.pick(files);
      const over = files.filter((f) => f !== src);
      const dst = over.length && rng.int(3) === 0 ? rng.pick(over) : fresh(rng.pick(dirs));
      log.push(`rename ${src} -> ${dst}`);
      fs.renameSync(abs(src), abs(dst));
      model.set(dst, model.get(src)!);
      model.delete(src);
      expectErr(`stat ${src} after rename`, errCode(() => fs.lstatSync(abs(src))), 'ENOENT');
    } else if (r < 86) {
      // rename a directory (not into itself) to a new name
      const cands = dirs.filter((d) => d !== '');
      if (!cands.length) continue;
      const src = rng.pick(cands);
      const to = rng.pick(dirs.filter((d) => d !== src && !d.startsWith(src + '/')));
      const dst = fresh(to);
      log.push(`rename dir ${src} -> ${dst}`);
      fs.renameSync(abs(src), abs(dst));
      for (const k of [...model.keys()]) {
        if (k === src || k.startsWith(src + '/')) { model.set(dst + k.slice(src.length), model.get(k)!); model.delete(k); }
      }
    } else {
      const p = rng.pick(files);
      log.push(`read ${p}`);
      const got = fs.readFileSync(abs(p));
      if (!got.equals((model.get(p) as { data: Buffer }).data)) fail(`read ${p}: ${got.length} bytes differ from the model's ${(model.get(p) as { data: Buffer }).data.length}`);
    }
  }
  // The whole tree against the model.
  const seen = new Set<string>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(abs(rel))) {
      const p = rel ? `${rel}/${name}` : name;
      seen.add(p);
      const m = model.get(p);
      if (!m) fail(`${p}: on disk, not in the model`);
      const st = fs.lstatSync(abs(p));
      if (m!.type === 'dir') {
        if (!st.isDirectory()) fail(`${p}: should be a directory`);
        walk(p);
      } else if (!st.isFile() || !fs.readFileSync(abs(p)).equals(m!.data)) fail(`${p}: content differs from the model`);
    }
  };
  walk('');
  for (const k of model.keys()) if (k !== '' && !seen.has(k)) fail(`${k}: in the model, missing on disk`);
  const res = { ops, files: keys('file').length, dirs: keys('dir').length - 1, bytesWritten, errnoChecks };
  fs.rmSync(base, { recursive: true });
  if (fs.existsSync(base)) fail(`${dir}: still there after rm -r`);
  return res;
}
