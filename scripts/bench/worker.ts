/*
 * One benchmark workload, run in its own process against a mounted directory:
 *   node worker.js '{"op":"seqwrite","file":"/mnt/big","bytes":268435456}'
 * prints one JSON line ({ok:true, seconds, ...} or {ok:false, error}) and exits.
 *
 * Why a separate process: the workloads use synchronous system calls (no event-loop or
 * thread-pool overhead inside the timed loops), and a mounter that hangs must not hang the
 * benchmark: the parent kills this process (and the daemon) when its time is up.
 *
 * Each workload checks its own result (sizes, counts, names, sha256 of the data) and
 * reports failure rather than a number when the check fails. Only the loop itself is timed;
 * checks run after the clock stops.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type WorkOp =
  | { op: 'seqwrite'; file: string; bytes: number; chunk: number }
  | { op: 'seqread'; file: string; bytes: number; chunk: number; sha256: string }
  | { op: 'create'; dir: string; n: number; size: number }
  | { op: 'stat'; dir: string; n: number; size: number }
  | { op: 'hotstat'; file: string; size: number; seconds: number }
  | { op: 'readdir'; dir: string; n: number }
  | { op: 'unlink'; dir: string; n: number }
  | { op: 'cp'; src: string; dst: string; files: number; timeoutMs: number }
  | { op: 'diff'; src: string; dst: string; files: number; timeoutMs: number };

export type WorkResult =
  | { ok: true; seconds: number; count: number; sha256?: string; note?: string }
  | { ok: false; error: string };

class CheckError extends Error {}
const check = (cond: boolean, msg: string) => { if (!cond) throw new CheckError(msg); };

const now = () => process.hrtime.bigint();
const secondsSince = (t0: bigint) => Number(now() - t0) / 1e9;

export const smallName = (i: number) => `f${String(i).padStart(6, '0')}`;

/** The content of small file i: deterministic, different per file (so a mix-up shows). */
export function smallContent(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = (i * 2654435761 + 12345) >>> 0;
  for (let o = 0; o + 4 <= size; o += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, o);
  }
  b.writeUInt32LE(i, 0);
  return b;
}

function countFiles(dir: string): number {
  let n = 0;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    if (ent.isDirectory()) n += countFiles(`${dir}/${ent.name}`);
    else if (ent.isFile()) n++;
  }
  return n;
}

function runWork(w: WorkOp): WorkResult {
  switch (w.op) {
    case 'seqwrite': {
      const data = crypto.randomFillSync(Buffer.allocUnsafe(w.bytes));
      const t0 = now();
      const fd = fs.openSync(w.file, fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_WRONLY, 0o644);
      for (let off = 0; off < w.bytes;) {
        const n = fs.writeSync(fd, data, off, Math.min(w.chunk, w.bytes - off));
        check(n > 0, `short write at ${off}`);
        off += n;
      }
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      const seconds = secondsSince(t0);
      check(fs.statSync(w.file).size === w.bytes, 'file size after write is wrong');
      return { ok: true, seconds, count: w.bytes, sha256: crypto.createHash('sha256').update(data).digest('hex') };
    }
    case 'seqread': {
      const buf = Buffer.allocUnsafe(w.bytes + w.chunk);
      const t0 = now();
      const fd = fs.openSync(w.file, 'r');
      let off = 0;
      for (;;) {
        const n = fs.readSync(fd, buf, off, Math.min(w.chunk, buf.length - off), null);
        if (n === 0) break;
        off += n;
      }
      fs.closeSync(fd);
      const seconds = secondsSince(t0);
      check(off === w.bytes, `read ${off} bytes, expected ${w.bytes}`);
      const sha256 = crypto.createHash('sha256').update(buf.subarray(0, off)).digest('hex');
      check(sha256 === w.sha256, 'sha256 of the data read differs from the data written');
      return { ok: true, seconds, count: off, sha256 };
    }
    case 'create': {
      fs.mkdirSync(w.dir);
      const bufs = Array.from({ length: w.n }, (_, i) => smallContent(i, w.size));
      const t0 = now();
      for (let i = 0; i < w.n; i++) {
        const fd = fs.openSync(`${w.dir}/${smallName(i)}`, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
        check(fs.writeSync(fd, bufs[i]!) === w.size, `short write to ${smallName(i)}`);
        fs.closeSync(fd);
      }
      const seconds = secondsSince(t0);
      check(fs.readdirSync(w.dir).length === w.n, 'wrong number of files after create');
      return { ok: true, seconds, count: w.n };
    }
    case 'stat': {
      const t0 = now();
      let bad = 0;
      for (let i = 0; i < w.n; i++) {
        const st = fs.lstatSync(`${w.dir}/${smallName(i)}`);
        if (!st.isFile() || st.size !== w.size) bad++;
      }
      const seconds = secondsSince(t0);
      check(bad === 0, `${bad} files have the wrong type or size`);
      // Spot-check contents (untimed): every 50th file and the last.
      for (const i of [...Array.from({ length: Math.ceil(w.n / 50) }, (_, k) => k * 50), w.n - 1]) {
        check(fs.readFileSync(`${w.dir}/${smallName(i)}`).equals(smallContent(i, w.size)), `${smallName(i)}: wrong content`);
      }
      return { ok: true, seconds, count: w.n };
    }
    case 'hotstat': {
      // The same file again and again: with caching off every stat is a LOOKUP + GETATTR
      // answered by the daemon. A warm-up first (the file's inode and blocks in the daemon's caches).
      let bad = 0;
      for (const end = Date.now() + 200; Date.now() < end;) fs.statSync(w.file);
      const t0 = now(), ns = BigInt(Math.round(w.seconds * 1e9));
      let n = 0;
      while (now() - t0 < ns) {
        for (let i = 0; i < 100; i++) {
          const st = fs.statSync(w.file);
          if (!st.isFile() || st.size !== w.size) bad++;
        }
        n += 100;
      }
      const seconds = secondsSince(t0);
      check(bad === 0, `${bad} stats saw the wrong type or size`);
      return { ok: true, seconds, count: n };
    }
    case 'readdir': {
      const t0 = now();
      const names = fs.readdirSync(w.dir);
      const seconds = secondsSince(t0);
      check(names.length === w.n, `readdir returned ${names.length} names, expected ${w.n}`);
      const set = new Set(names);
      for (let i = 0; i < w.n; i++) check(set.has(smallName(i)), `readdir lacks ${smallName(i)}`);
      return { ok: true, seconds, count: names.length };
    }
    case 'unlink': {
      const t0 = now();
      for (let i = 0; i < w.n; i++) fs.unlinkSync(`${w.dir}/${smallName(i)}`);
      const seconds = secondsSince(t0);
      const left = fs.readdirSync(w.dir).length;
      check(left === 0, `${left} names left after unlinking all`);
      fs.rmdirSync(w.dir);
      return { ok: true, seconds, count: w.n };
    }
    case 'cp':
    case 'diff': {
      const args = w.op === 'cp' ? ['-r', w.src, w.dst] : ['-r', '-q', w.src, w.dst];
      const t0 = now();
      const r = spawnSync(w.op, args, { encoding: 'utf8', timeout: w.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 24 });
      const seconds = secondsSince(t0);
      const out = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n')[0] ?? '';
      check(r.status === 0, `${w.op} -r ${r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}${out ? `: ${out}` : ''}`);
      const n = countFiles(w.dst);
      check(n === w.files, `${n} files under the copy, expected ${w.files}`);
      return { ok: true, seconds, count: n };
    }
  }
}

/** "open /mnt/big.bin: EROFS (read-only file system)" from a Node system error. */
function describeError(err: NodeJS.ErrnoException): string {
  if (!err?.code || !err.syscall) return String(err?.message ?? err);
  const text = /^[A-Z]+: ([^,]+)/.exec(err.message)?.[1];
  return `${err.syscall}${err.path ? ` ${err.path}` : ''}: ${err.code}${text ? ` (${text})` : ''}`;
}

function main(): void {
  let res: WorkResult;
  try {
    res = runWork(JSON.parse(process.argv[2] ?? '') as WorkOp);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    res = { ok: false, error: e instanceof CheckError ? `check failed: ${err.message}` : describeError(err) };
  }
  process.stdout.write(JSON.stringify(res) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) main();
