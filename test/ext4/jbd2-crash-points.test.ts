// Power cuts at many points of one run, from a log of what reached the device (as Linux's
// dm-log-writes and xfstests' replay tests do). A seeded workload runs on a journalled ext4
// image through a RecordingStore: files written and fsync'd, files written and left,
// renames, unlinks, a subdirectory, sync(); each step leaves a mark in the log. For each
// crash point, the image is rebuilt as a power cut there would leave it (everything before
// the last flush, and a seeded subset of the writes completed since), then recovered by the
// host kernel (its mount replays the journal) and by lkl-ts's own mount. Both must give a
// tree that the marks allow, the same tree, and e2fsck -fn must be clean; `e2fsck -fy` on a
// third copy must find nothing worse than what replaying the journal fixes (exit 0 or 1):
//   - a file fsync'd (or synced) and not touched since is there, whole;
//   - a durable file renamed since is under exactly one of its names (a chain of renames
//     since the last sync may have committed up to any link of it), whole; one
//     renamed over another (an editor's save) leaves the target name with either whole;
//   - an unlinked one is whole or gone (gone once a sync followed);
//   - a file never made durable is absent or a prefix of what was written: never garbage;
//   - nothing else is there.
// The same runs with data=journal (file data journalled too) keep the same promises.
// LKL_TEST_CRASH_SEEDS / LKL_TEST_CRASH_JOURNAL_SEEDS / LKL_TEST_CRASH_POINTS set the
// campaign's size (CI: 4 seeds, and 2 with data=journal, x 25 cuts), LKL_TEST_CRASH_FIRST_SEED
// its first seed.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { prngBytes } from '../lib/tree.js';
import { RecordingStore, crashImage, type LogEntry } from '../lib/recording-store.js';
import { FileStore, MemoryStore } from '../../lib/drivers/stores.js';
import { O_CREAT, O_DIRECTORY, O_EXCL, O_RDONLY, O_WRONLY, startKernel, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount'], { root: true });
const SEEDS = Number(process.env.LKL_TEST_CRASH_SEEDS ?? 4);
/** Seeds run again with data=journal (file data through the journal too). */
const JOURNAL_SEEDS = Number(process.env.LKL_TEST_CRASH_JOURNAL_SEEDS ?? 2);
/** The first seed (a campaign's slice, or one seed replayed). */
const FIRST_SEED = Number(process.env.LKL_TEST_CRASH_FIRST_SEED ?? 1);
const POINTS = Number(process.env.LKL_TEST_CRASH_POINTS ?? 25);

/** xorshift32, replayable from the seed. */
function rng(seed: number): (n: number) => number {
  let x = (Math.imul(seed + 0x51ed, 2654435761) >>> 0) || 1;
  return (n) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
}

/** What the workload did to one file (its identity is its content). */
interface FileModel {
  data: Buffer; name: string;
  /** Its earlier names since the last sync (a chain of renames none of which may have committed). */
  from: string[];
  durable: boolean; unlinked: boolean; gone: boolean;
}

/** The files as the marks before log entry `at` leave them. */
function modelAt(log: readonly LogEntry[], at: number, contents: Map<string, Buffer>): FileModel[] {
  const files: FileModel[] = [];
  const byName = new Map<string, FileModel>();
  const drop = (name: string) => { const f = byName.get(name); if (f) { f.unlinked = true; byName.delete(name); } };
  for (let i = 0; i < at; i++) {
    const e = log[i]!;
    if (e.kind !== 'mark') continue;
    const [op, a, b] = e.label.split(' ') as [string, string, string | undefined];
    if (op === 'create') {
      const f: FileModel = { data: contents.get(a)!, name: a, from: [], durable: false, unlinked: false, gone: false };
      files.push(f);
      byName.set(a, f);
    } else if (op === 'fsync') byName.get(a)!.durable = true;
    else if (op === 'rename') {
      // Over an existing name: the file there is replaced (whole or gone, as an unlinked one).
      drop(b!);
      const f = byName.get(a)!;
      byName.delete(a);
      if (!f.from.includes(a)) f.from.push(a);
      f.name = b!;
      byName.set(b!, f);
    } else if (op === 'unlink') drop(a);
    else if (op === 'sync') {
      for (const f of files) {
        if (f.unlinked) f.gone = true;
        else { f.durable = true; f.from = []; }
      }
    }
  }
  return files;
}

/**
 * Where the tree breaks the model's rules (empty: a tree the marks allow). Files are told
 * apart by content (each is random): a name holds a file when its bytes are that file's
 * (whole, or a prefix for one never made durable).
 */
function judge(tree: Map<string, Buffer>, model: FileModel[]): string[] {
  const bad: string[] = [];
  const claimed = new Set<string>();
  const holds = (f: FileModel, got: Buffer) => f.durable ? got.equals(f.data)
    : got.length <= f.data.length && got.equals(f.data.subarray(0, got.length));
  for (const f of model) {
    const names = [...new Set([f.name, ...f.from])].filter((n) => tree.has(n) && holds(f, tree.get(n)!));
    names.forEach((n) => claimed.add(n));
    const desc = `${f.name}${f.from.length ? ` (renamed from ${f.from.join(', ')})` : ''}${f.unlinked ? ' (unlinked or replaced)' : ''}`;
    if (f.gone) { if (names.length && f.data.length) bad.push(`${desc}: gone after a sync, but there`); continue; }
    if (names.length > 1 && f.data.length) bad.push(`${desc}: under both names`);
    if (f.durable && !f.unlinked && names.length === 0) bad.push(`${desc}: durable but missing or not whole`);
  }
  for (const [n, got] of tree) if (!claimed.has(n)) bad.push(`${n}: ${got.length} bytes that no operation wrote there`);
  return bad;
}

const sameTree = (a: Map<string, Buffer>, b: Map<string, Buffer>): boolean =>
  a.size === b.size && [...a].every(([n, d]) => b.get(n)?.equals(d) ?? false);

/** Regular files under `root` (relative names) from the host's view of a mount. */
function hostTree(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.set(r, fs.readFileSync(path.join(d, e.name)));
    }
  };
  if (fs.existsSync(root)) walk(root, '');
  return out;
}

/** The same through lkl-ts's system calls. */
async function kernelTree(k: Kernel, root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string, rel: string): Promise<void> => {
    const fd = await k.sys.open(d, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    const names: { name: string; type: number }[] = [];
    for (;;) {
      const ents = await k.sys.getdents64(fd, 32768);
      if (typeof ents === 'number' || ents.length === 0) break;
      for (const e of ents) if (e.name !== '.' && e.name !== '..') names.push(e);
    }
    await k.sys.close(fd);
    for (const e of names) {
      const p = `${d}/${e.name}`, r = rel ? `${rel}/${e.name}` : e.name;
      if (e.type === 4) { await walk(p, r); continue; }
      const st = await k.sys.lstat(p);
      if (typeof st === 'number') throw new Error(`lstat ${p}: ${st}`);
      const buf = new Uint8Array(st.size);
      const f = await k.sys.open(p, O_RDONLY);
      const n = await k.sys.pread64(f, buf, 0);
      await k.sys.close(f);
      if (n !== st.size) throw new Error(`read ${p}: ${n} of ${st.size}`);
      out.set(r, Buffer.from(buf));
    }
  };
  await walk(root, '');
  return out;
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'jbd2-crash-points');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 64, print: () => {} }); });
  t.teardown(async () => { await k?.halt(); });

  const runs: { seed: number; opts: string }[] = [
    ...Array.from({ length: SEEDS }, (_, i) => ({ seed: FIRST_SEED + i, opts: '' })),
    ...Array.from({ length: JOURNAL_SEEDS }, (_, i) => ({ seed: FIRST_SEED + i, opts: 'data=journal' })),
  ];
  for (const { seed, opts } of runs) {
    t.test(`seed ${seed}${opts ? ` (${opts})` : ''}: ${POINTS} power cuts replayed from the write log`, async (t) => {
      const img = path.join(dir, `s${seed}${opts ? '-dj' : ''}.img`);
      await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: seed % 2 ? 4096 : 1024, path: img });
      const base = new Uint8Array(fs.readFileSync(img));
      const store = new RecordingStore(await FileStore.open(img));
      const id = await k.diskAdd({ store });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, opts);
      if (typeof mnt !== 'string') throw new Error(`mount: ${mnt}`);
      const w = `${mnt}/w`;
      t.equal(await k.sys.mkdir(w, 0o755), 0, 'mkdir w');
      t.equal(await k.sys.sync(), 0, 'sync');
      store.mark('sync');
      // The workload: each step's mark goes in the log before it starts (create, rename,
      // unlink) or after it returned (fsync, sync).
      const r = rng(seed);
      const contents = new Map<string, Buffer>();
      const live: string[] = [];
      let next = 0, failures = 0;
      const create = async (name: string, sync: boolean) => {
        const data = prngBytes(seed * 7919 + next, 1 + r(40 * 1024));
        contents.set(name, data);
        store.mark(`create ${name}`);
        const fd = await k.sys.open(`${w}/${name}`, O_WRONLY | O_CREAT | O_EXCL, 0o644);
        if (fd < 0) { failures++; return; }
        if (await k.sys.pwrite64(fd, data, 0) !== data.length) failures++;
        if (sync) {
          // fdatasync is enough for a new file's data and size (ext4 commits the inode with them).
          if (await (r(2) ? k.sys.fsync(fd) : k.sys.fdatasync(fd)) !== 0) failures++;
          else store.mark(`fsync ${name}`);
        }
        await k.sys.close(fd);
        live.push(name);
      };
      for (let i = 0; i < 40; i++) {
        const op = r(10);
        if (op <= 3) await create(`f${next++}`, true);
        else if (op <= 5) await create(`f${next++}`, false);
        else if (op === 6 && live.length) {
          // A rename to a new name, or (every other time) the editor's save: a new file
          // written and fsync'd, renamed over an existing one.
          if (r(2) && live.filter((n) => !n.includes('/')).length) {
            const flat = live.filter((n) => !n.includes('/'));
            const target = flat[r(flat.length)]!;
            const tmp = `f${next++}`;
            await create(tmp, true);
            if (!live.includes(tmp)) continue; // its creation failed (counted)
            live.splice(live.indexOf(tmp), 1);
            store.mark(`rename ${tmp} ${target}`);
            if (await k.sys.rename(`${w}/${tmp}`, `${w}/${target}`) !== 0) failures++;
          } else {
            const a = live.splice(r(live.length), 1)[0]!, b = `f${next++}`;
            store.mark(`rename ${a} ${b}`);
            if (await k.sys.rename(`${w}/${a}`, `${w}/${b}`) !== 0) failures++;
            live.push(b);
          }
        } else if (op === 7 && live.length) {
          const a = live.splice(r(live.length), 1)[0]!;
          store.mark(`unlink ${a}`);
          if (await k.sys.unlink(`${w}/${a}`) !== 0) failures++;
        } else if (op === 8) {
          const d = `d${next++}`;
          if (await k.sys.mkdir(`${w}/${d}`, 0o755) !== 0) failures++;
          await create(`${d}/f${next++}`, true);
        } else {
          if (await k.sys.sync() !== 0) failures++;
          else store.mark('sync');
        }
      }
      t.equal(failures, 0, 'every call of the workload succeeded');
      t.equal(await k.umountDev(id, 0), 0, 'unmounted');
      await k.diskRemove(id);
      const log = store.log;
      const flushes = log.filter((e) => e.kind === 'flush').length;
      const writes = log.filter((e) => e.kind === 'write').length;
      t.ok(flushes >= 5 && writes > 50, `the log holds ${writes} writes and ${flushes} flushes`);

      // Crash points: the last one is the whole log (the clean unmount); the others are
      // spread over it, each with a seeded choice of the unflushed writes.
      const pick = rng(seed * 31 + 7);
      const points = [log.length];
      for (let i = 1; i < POINTS; i++) points.push(1 + Math.floor((log.length - 1) * i / POINTS) + pick(Math.max(1, Math.floor(log.length / POINTS))));
      const problems: string[] = [];
      for (const at of points) {
        const keepSeed = rng(at * 13 + seed);
        const image = crashImage(base, log, Math.min(at, log.length), () => keepSeed(2) === 0);
        const model = modelAt(log, Math.min(at, log.length), contents);
        // The host kernel's recovery.
        const hostImg = path.join(dir, `s${seed}-host.img`);
        fs.writeFileSync(hostImg, image);
        let hostView: Map<string, Buffer> | undefined;
        try {
          hostView = await withLoopMount(hostImg, {}, async (m) => hostTree(path.join(m, 'w')));
          for (const b of judge(hostView, model)) problems.push(`cut at ${at}/${log.length}, host recovery: ${b}`);
        } catch (e) {
          problems.push(`cut at ${at}/${log.length}, host recovery: ${(e as Error).message}`);
        }
        const fh = await e2fsckClean(hostImg);
        if (!fh.clean) problems.push(`cut at ${at}: e2fsck after the host's recovery: ${fh.output}`);
        // lkl-ts's recovery, on a second copy.
        const mem = new MemoryStore(image.slice());
        const id2 = await k.diskAdd({ store: mem });
        const m2 = await k.mountDev(id2, 0, 'ext4', 0, '');
        if (typeof m2 !== 'string') { problems.push(`cut at ${at}: lkl-ts does not mount it: ${m2}`); await k.diskRemove(id2); continue; }
        try {
          const ourView = await kernelTree(k, `${m2}/w`);
          for (const b of judge(ourView, model)) problems.push(`cut at ${at}/${log.length}, lkl-ts recovery: ${b}`);
          if (hostView && !sameTree(hostView, ourView)) problems.push(`cut at ${at}/${log.length}: the host's and lkl-ts's recoveries give different trees`);
        } catch (e) {
          problems.push(`cut at ${at}/${log.length}, lkl-ts recovery: ${(e as Error).message}`);
        }
        if (await k.umountDev(id2, 0) !== 0) problems.push(`cut at ${at}: lkl-ts unmount failed`);
        await k.diskRemove(id2);
        const ourImg = path.join(dir, `s${seed}-lkl.img`);
        fs.writeFileSync(ourImg, mem.data);
        const fo = await e2fsckClean(ourImg);
        if (!fo.clean) problems.push(`cut at ${at}: e2fsck after lkl-ts's recovery: ${fo.output}`);
        // e2fsck's own recovery, on a third copy: nothing worse than what replaying the
        // journal fixes (exit 0 or 1).
        const fsckImg = path.join(dir, `s${seed}-fsck.img`);
        fs.writeFileSync(fsckImg, image);
        const fy = await run('e2fsck', ['-fy', fsckImg], { allowFail: true, timeoutMs: 120_000 });
        if (fy.code === null || fy.code > 1) problems.push(`cut at ${at}: e2fsck -fy exit ${fy.code}: ${fy.stdout}${fy.stderr}`);
      }
      t.strictSame(problems, [], `${points.length} power cuts: both recoveries give the same tree, one the marks allow, e2fsck -fn clean; e2fsck -fy exits 0 or 1`);
    });
  }
}
