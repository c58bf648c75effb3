/*
 * lkl-ts benchmark: lklfuse against fuse2fs and the host kernel, in one run, on the same
 * freshly made ext4 image (plus lklfuse-only rows on a vfat image), reported as values per
 * mounter and lklfuse's ratios. See scripts/bench/README.md for what each row measures.
 *
 *   node dist/scripts/bench.js [--quick] [--json out.json] [--keep] [--dir DIR]
 *        [--only host,fuse2fs,lklfuse,lklfuse-fn] [--no-vfat] [--lklfuse PATH] [--lklfuse-o OPTS]
 *        [--tree-src DIR] [--timeout SECONDS]
 *
 * Must run as root (loop mounts, drop_caches, FUSE). Never leaves a mount, a loop device or
 * a daemon behind: everything is unmounted and detached in finally blocks and on signals.
 * A mounter that fails gets "n/a (reason)" for the rows it could not do; the run goes on.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Mounter, MounterName } from './bench/mounters.js';
import { Fuse2fsMounter, HostMounter, LklfuseMounter, MOUNTERS, detachLoops, stopMounting, unmountAll } from './bench/mounters.js';
import type { Cell, Row } from './bench/report.js';
import { renderTable, rowsToJson } from './bench/report.js';
import { countTree, describeRun, dropHostCaches, firstLine, must, run } from './bench/util.js';
import type { WorkOp, WorkResult } from './bench/worker.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(HERE, 'bench', 'worker.js');
const MiB = 1 << 20;
const CHUNK = 128 * 1024;
const SMALL = 4096;

interface Sizes {
  imageMiB: number;
  vfatMiB: number;
  fileMiB: number;
  nFiles: number;
  treeFiles: number;
  /** Largest file taken into the source tree. */
  treeMaxFile: number;
  /** How long the hot-stat row stats its file. */
  hotStatSeconds: number;
}
const FULL: Sizes = { imageMiB: 512, vfatMiB: 512, fileMiB: 256, nFiles: 5000, treeFiles: 3000, treeMaxFile: 256 * 1024, hotStatSeconds: 5 };
const QUICK: Sizes = { imageMiB: 128, vfatMiB: 128, fileMiB: 32, nFiles: 500, treeFiles: 300, treeMaxFile: 256 * 1024, hotStatSeconds: 2 };

interface Args {
  quick: boolean;
  json?: string;
  keep: boolean;
  dir: string;
  only: MounterName[];
  vfat: boolean;
  lklfuse: string;
  lklfuseOpts: string[];
  treeSrc?: string;
  timeoutS?: number;
  /** mke2fs -O for the ext4 image. */
  ext4Features: string;
}

function usage(msg?: string): never {
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write('usage: node dist/scripts/bench.js [--quick] [--json FILE] [--keep] [--dir DIR] [--only host,fuse2fs,lklfuse,lklfuse-fn]\n' +
    '       [--no-vfat] [--lklfuse PATH] [--lklfuse-o OPTS] [--tree-src DIR] [--timeout SECONDS]\n' +
    '       [--ext4-features LIST]   mke2fs -O for the ext4 image (default: mke2fs\'s own, with a journal;\n' +
    '                                e.g. ^has_journal to compare without one)\n');
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    quick: false, keep: false, dir: os.tmpdir(), only: [...MOUNTERS], vfat: true,
    lklfuse: path.resolve(HERE, '..', 'bin', 'lklfuse.js'), lklfuseOpts: [], ext4Features: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const o = argv[i]!;
    const val = () => argv[++i] ?? usage(`${o} needs a value`);
    switch (o) {
      case '--quick': a.quick = true; break;
      case '--json': a.json = path.resolve(val()); break;
      case '--keep': a.keep = true; break;
      case '--dir': a.dir = path.resolve(val()); break;
      case '--only': {
        const list = val().split(',');
        for (const m of list) if (!(MOUNTERS as readonly string[]).includes(m)) usage(`--only: unknown mounter ${m}`);
        a.only = list as MounterName[];
        break;
      }
      case '--no-vfat': a.vfat = false; break;
      case '--ext4-features': a.ext4Features = val(); break;
      case '--lklfuse': a.lklfuse = path.resolve(val()); break;
      case '--lklfuse-o': a.lklfuseOpts.push(val()); break;
      case '--tree-src': a.treeSrc = path.resolve(val()); break;
      case '--timeout': a.timeoutS = Number(val()); if (!(a.timeoutS > 0)) usage('--timeout needs a positive number'); break;
      case '-h': case '--help': usage();
      // falls through (usage exits)
      default: usage(`unknown argument ${o}`);
    }
  }
  return a;
}

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const errMsg = (e: unknown) => firstLine((e as Error)?.message ?? String(e));

/* ---------- the source tree for cp -r ---------- */

/* Names every filesystem under test takes (vfat: no reserved characters, no trailing dot or space). */
const PORTABLE = /^[^<>:"\\|?*\x00-\x1f]{1,200}$/;
const portable = (n: string) => PORTABLE.test(n) && !/[. ]$/.test(n);

/**
 * Copies up to `max` regular files (each at most `maxFile` bytes) from `src` into `dst`,
 * in sorted order, keeping the directory structure; skips symlinks and names that differ
 * only in case (vfat would merge them).
 */
function buildTree(src: string, dst: string, max: number, maxFile: number): { files: number; dirs: number; bytes: number } {
  let files = 0;
  const walk = (s: string, d: string) => {
    fs.mkdirSync(d, { recursive: true });
    const seen = new Set<string>();
    const ents = fs.readdirSync(s, { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const e of ents) {
      if (files >= max) return;
      if (!portable(e.name) || seen.has(e.name.toLowerCase())) continue;
      const sp = path.join(s, e.name), dp = path.join(d, e.name);
      if (e.isDirectory()) {
        seen.add(e.name.toLowerCase());
        walk(sp, dp);
      } else if (e.isFile()) {
        const st = fs.statSync(sp);
        if (st.size > maxFile) continue;
        seen.add(e.name.toLowerCase());
        fs.copyFileSync(sp, dp);
        files++;
      }
    }
  };
  walk(src, dst);
  // Drop directories left empty by the file limit, so counts stay meaningful.
  const prune = (d: string): boolean => {
    let empty = true;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory() && prune(path.join(d, e.name))) fs.rmdirSync(path.join(d, e.name));
      else empty = false;
    }
    return empty;
  };
  prune(dst);
  return countTree(dst);
}

function findTreeSource(explicit?: string): string {
  const candidates = explicit ? [explicit] : [path.join(process.cwd(), 'node_modules'), path.resolve(HERE, '..', '..', 'node_modules'), '/usr/share/doc'];
  for (const c of candidates) if (fs.existsSync(c) && fs.statSync(c).isDirectory()) return c;
  throw new Error(`no source tree for cp -r (tried ${candidates.join(', ')}); give --tree-src DIR`);
}

/* ---------- running workloads ---------- */

interface Ctx {
  args: Args;
  sizes: Sizes;
  tmp: string;
  timeoutMs: number;
  tree: { path: string; files: number; dirs: number; bytes: number };
  dropCaches: () => Promise<void>;
  /** Mounters ever created, for cleanup. */
  all: Mounter[];
}

/** Runs one workload in a worker process; a workload that overruns aborts the mount. */
async function work(ctx: Ctx, m: Mounter | undefined, op: WorkOp): Promise<WorkResult> {
  if (m?.broken) return { ok: false, error: `skipped: ${m.broken}` };
  let aborted = false;
  const timer = setTimeout(() => {
    aborted = true;
    void m?.abort(`${op.op} did not finish within ${ctx.timeoutMs / 1000}s`);
  }, ctx.timeoutMs);
  const r = await run(process.execPath, [WORKER, JSON.stringify(op)], { timeoutMs: ctx.timeoutMs + 30_000 });
  clearTimeout(timer);
  if (aborted) return { ok: false, error: `timed out after ${ctx.timeoutMs / 1000}s (mount aborted)` };
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as WorkResult;
  } catch {
    return { ok: false, error: `worker ${describeRun(r)}` };
  }
}

type RowId = 'write' | 'read' | 'create' | 'stat' | 'hotstat' | 'readdir' | 'unlink' | 'cp' | 'diff' | 'rss';

interface RowDef { id: RowId; label: string; unit: string; better: 'higher' | 'lower' }

function rowDefs(s: Sizes, tree: Ctx['tree']): RowDef[] {
  return [
    { id: 'write', label: `seq write ${s.fileMiB} MiB (128 KiB writes + fsync)`, unit: 'MB/s', better: 'higher' },
    { id: 'read', label: `seq read ${s.fileMiB} MiB, cold`, unit: 'MB/s', better: 'higher' },
    { id: 'create', label: `create ${s.nFiles} x 4 KiB files`, unit: 'ops/s', better: 'higher' },
    { id: 'stat', label: `stat ${s.nFiles} files, cold`, unit: 'ops/s', better: 'higher' },
    { id: 'hotstat', label: 'stat of one hot file, attr caching off', unit: 'ops/s', better: 'higher' },
    { id: 'readdir', label: `readdir ${s.nFiles} entries, cold`, unit: 'ent/s', better: 'higher' },
    { id: 'unlink', label: `unlink ${s.nFiles} files`, unit: 'ops/s', better: 'higher' },
    { id: 'cp', label: `cp -r tree (${tree.files} files, ${tree.dirs} dirs, ${(tree.bytes / MiB).toFixed(1)} MiB)`, unit: 's', better: 'lower' },
    { id: 'diff', label: 'diff -r tree back, cold', unit: 's', better: 'lower' },
    { id: 'rss', label: 'daemon peak RSS (VmHWM)', unit: 'MiB', better: 'lower' },
  ];
}

type Cells = Partial<Record<RowId, Cell>>;

/**
 * The whole sequence for one mounter on its own copy of the image. Sessions are separated by
 * unmount + drop_caches + mount, so every "cold" row starts with nothing cached anywhere.
 * When the mounter cannot write (lklfuse on a journalled ext4, for now), the data its read rows
 * need is written by a seeder (the host kernel for ext4, mtools for vfat), and those rows say so.
 */
async function runSuite(ctx: Ctx, m: Mounter, fsType: 'ext4' | 'vfat'): Promise<{ cells: Cells; fsck: string }> {
  const { sizes } = ctx;
  const cells: Cells = {};
  const at = (base: string) => ({ big: `${base}/big.bin`, meta: `${base}/meta`, tree: `${base}/tree` });
  const P = at(m.mnt);
  const bytes = sizes.fileMiB * MiB;
  let mountFailure: string | undefined;
  let mountedOnce = false;

  const record = (id: RowId, r: WorkResult, value: (r: WorkResult & { ok: true }) => number, note?: string): boolean => {
    if (!r.ok) r = { ok: false, error: r.error.split(m.mnt + '/').join('') };
    cells[id] = r.ok ? { value: value(r), ...(note ? { note } : {}) } : { na: r.error };
    log(`${fsType} ${m.name} ${id}: ${r.ok ? `${value(r).toFixed(2)}${note ? ` (${note})` : ''}` : `n/a (${r.error})`}`);
    return r.ok;
  };
  const session = async (ids: RowId[], body: () => Promise<void>, fuseOpts: string[] = []) => {
    if (mountFailure === undefined) {
      await ctx.dropCaches();
      try {
        await m.mount(fuseOpts);
        mountedOnce = true;
      } catch (e) {
        mountFailure = `mount failed: ${errMsg(e)}`;
        log(`${fsType} ${m.name}: ${mountFailure}`);
      }
    }
    if (mountFailure !== undefined) {
      for (const id of ids) cells[id] ??= { na: mountFailure };
      return;
    }
    try {
      await body();
    } finally {
      await m.unmount();
    }
  };

  // Seeding: write what a later row needs with something that can write this image.
  const seederName = fsType === 'ext4' ? 'the host kernel' : 'mtools';
  const seed = async (what: 'big' | 'meta' | 'tree', mkOp: (base: string) => WorkOp): Promise<WorkResult> => {
    if (m.name === 'host' || mountFailure !== undefined) return { ok: false, error: 'no seeding' };
    if (fsType === 'ext4') {
      const h = new HostMounter(m.image, m.mnt);
      ctx.all.push(h);
      try {
        await h.mount();
        fs.rmSync(at(m.mnt)[what], { recursive: true, force: true });
        return await work(ctx, h, mkOp(m.mnt));
      } catch (e) {
        return { ok: false, error: errMsg(e) };
      } finally {
        await h.unmount();
      }
    }
    const stage = path.join(ctx.tmp, 'stage');
    fs.rmSync(stage, { recursive: true, force: true });
    fs.mkdirSync(stage);
    try {
      const r = await work(ctx, undefined, mkOp(stage));
      if (!r.ok) return r;
      const name = path.basename(at(stage)[what]);
      await run('mdeltree', ['-i', m.image, `::/${name}`]);
      await run('mdel', ['-i', m.image, `::/${name}`]);
      await must('mcopy', ['-i', m.image, '-s', '-o', '-Q', path.join(stage, name), '::/'], ctx.timeoutMs);
      return r;
    } catch (e) {
      return { ok: false, error: errMsg(e) };
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  };

  /* A row's number stands only if a later row read its result back correctly. */
  const verifiedBy = (earlier: RowId, later: RowId) => {
    const e = cells[earlier], l = cells[later];
    if (!e || !('value' in e) || !l || !('na' in l)) return;
    cells[earlier] = l.na.startsWith('check failed')
      ? { na: `did not read back: ${later}: ${l.na}` }
      : { ...e, note: `unverified: ${later} could not run` };
  };
  const mbps = (r: { seconds: number; count: number }) => r.count / 1e6 / r.seconds;
  const perS = (r: { seconds: number; count: number }) => r.count / r.seconds;
  const secs = (r: { seconds: number }) => r.seconds;
  const writeOp = (base: string): WorkOp => ({ op: 'seqwrite', file: at(base).big, bytes, chunk: CHUNK });
  const createOp = (base: string): WorkOp => ({ op: 'create', dir: at(base).meta, n: sizes.nFiles, size: SMALL });
  const cpOp = (base: string): WorkOp => ({ op: 'cp', src: ctx.tree.path, dst: at(base).tree, files: ctx.tree.files, timeoutMs: ctx.timeoutMs });

  // 1. Sequential write.
  let sha: string | undefined, bigNote: string | undefined, bigMissing = 'not written';
  await session(['write'], async () => {
    const r = await work(ctx, m, writeOp(m.mnt));
    if (record('write', r, mbps) && r.ok) sha = r.sha256;
  });
  if (!sha) {
    const why = 'na' in (cells.write ?? {}) ? (cells.write as { na: string }).na : 'not written';
    const r = await seed('big', writeOp);
    if (r.ok) { sha = r.sha256; bigNote = `file written by ${seederName} (${m.name} could not: ${why})`; } else bigMissing = `no file to read (write: ${why})`;
  }

  // 2. Cold sequential read; then create the small files.
  let metaNote: string | undefined, metaOk = false;
  await session(['read', 'create'], async () => {
    if (sha) record('read', await work(ctx, m, { op: 'seqread', file: P.big, bytes, chunk: CHUNK, sha256: sha }), mbps, bigNote);
    else cells.read = { na: bigMissing };
    metaOk = record('create', await work(ctx, m, createOp(m.mnt)), perS);
  });
  verifiedBy('write', 'read');
  let metaMissing = `no files to stat (create: ${'na' in (cells.create ?? {}) ? (cells.create as { na: string }).na : 'not run'})`;
  if (!metaOk && mountFailure === undefined) {
    const r = await seed('meta', createOp);
    if (r.ok) { metaOk = true; metaNote = `files created by ${seederName}`; } else if (m.name !== 'host') metaMissing += `; seeding failed: ${r.error}`;
  }

  // 3. Cold stat of every small file.
  await session(['stat'], async () => {
    if (metaOk) record('stat', await work(ctx, m, { op: 'stat', dir: P.meta, n: sizes.nFiles, size: SMALL }), perS, metaNote);
    else cells.stat = { na: metaMissing };
  });
  verifiedBy('create', 'stat');

  // 3b. Per-request cost: stat of one file in a loop, every FUSE cache of names and
  // attributes off, so each stat is a round trip to the daemon (the host: its kernel's stat).
  await session(['hotstat'], async () => {
    if (sha) record('hotstat', await work(ctx, m, { op: 'hotstat', file: P.big, size: bytes, seconds: sizes.hotStatSeconds }), perS, bigNote);
    else cells.hotstat = { na: bigMissing };
  }, ['entry_timeout=0', 'attr_timeout=0']);

  // 4. Cold readdir, unlink all, cp -r the tree in.
  let treeOk = false, treeNote: string | undefined;
  await session(['readdir', 'unlink', 'cp'], async () => {
    if (metaOk) {
      record('readdir', await work(ctx, m, { op: 'readdir', dir: P.meta, n: sizes.nFiles }), perS, metaNote);
      record('unlink', await work(ctx, m, { op: 'unlink', dir: P.meta, n: sizes.nFiles }), perS);
    } else {
      cells.readdir = { na: metaMissing };
      cells.unlink = { na: metaMissing };
    }
    treeOk = record('cp', await work(ctx, m, cpOp(m.mnt)), secs);
  });
  let treeMissing = `no copy to compare (cp: ${'na' in (cells.cp ?? {}) ? (cells.cp as { na: string }).na : 'not run'})`;
  if (!treeOk && mountFailure === undefined) {
    const r = await seed('tree', cpOp);
    if (r.ok) { treeOk = true; treeNote = `tree copied in by ${seederName}`; } else if (m.name !== 'host') treeMissing += `; seeding failed: ${r.error}`;
  }

  // 5. Cold diff -r.
  await session(['diff'], async () => {
    if (treeOk) record('diff', await work(ctx, m, { op: 'diff', src: ctx.tree.path, dst: P.tree, files: ctx.tree.files, timeoutMs: ctx.timeoutMs }), secs, treeNote);
    else cells.diff = { na: treeMissing };
  });
  verifiedBy('cp', 'diff');

  if (m.name === 'host') cells.rss = { na: 'in the kernel, no daemon' };
  else if (m.peakKiB > 0) cells.rss = { value: m.peakKiB / 1024 };
  else cells.rss = { na: mountFailure ?? 'daemon process not found' };
  if (m.warnings.length) log(`${fsType} ${m.name}: ${m.warnings.join('; ')}`);

  // The image must still be consistent after everything this mounter (and seeders) did.
  const r = fsType === 'ext4' ? await run('e2fsck', ['-fn', m.image], { timeoutMs: 300_000 }) : await run('fsck.vfat', ['-n', m.image], { timeoutMs: 300_000 });
  const problem = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim())
    .filter((l) => l && !/^(fsck\.fat|e2fsck) \d/.test(l) && !/^Pass \d/.test(l))[0];
  const fsck = r.status === 0 ? (mountedOnce ? 'clean' : 'clean (never mounted)')
    : `NOT CLEAN (exit ${r.status ?? r.signal}${problem ? `: ${problem}` : ''})`;
  log(`${fsType} ${m.name}: ${fsType === 'ext4' ? 'e2fsck -fn' : 'fsck.vfat -n'}: ${fsck}`);
  if (r.status !== 0) {
    // A mounter that leaves a damaged image gets no numbers for the rows that wrote to it.
    for (const id of ['write', 'create', 'unlink', 'cp'] as const) {
      if (cells[id] && 'value' in cells[id]!) cells[id] = { na: `image ${fsck} after the run` };
    }
  }
  return { cells, fsck };
}

/* ---------- main ---------- */

function machine(): Record<string, string | number> {
  const tool = (cmd: string, a: string[]) => {
    const r = spawnSync(cmd, a, { encoding: 'utf8' });
    const lines = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim());
    return lines.find((l) => l.startsWith(cmd)) ?? 'unknown';
  };
  let rev = 'unknown';
  for (const cwd of [HERE, process.cwd()]) {
    try {
      rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      break;
    } catch { /* not a checkout */ }
  }
  return {
    host: os.hostname(), kernel: os.release(), cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length,
    memMiB: Math.round(os.totalmem() / MiB), loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '), node: process.version, fuse2fs: tool('fuse2fs', ['-V']),
    mke2fs: tool('mke2fs', ['-V']), lklTsCommit: rev,
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const sizes = args.quick ? QUICK : FULL;
  const timeoutMs = (args.timeoutS ?? (args.quick ? 60 : 600)) * 1000;
  const isRoot = process.getuid?.() === 0;
  const started = new Date();
  const info = machine(); // before the run: the load average and commit it started with
  const tmp = fs.mkdtempSync(path.join(args.dir, 'lkl-bench-'));
  const all: Mounter[] = [];
  const notes: string[] = [];

  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    stopMounting();
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  const cleanup = async () => {
    await unmountAll(all);
    for (const m of all) await detachLoops(m.image);
    if (!args.keep) fs.rmSync(tmp, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  const rows: Row[] = [];
  const fsck: Record<string, string> = {};
  try {
    if (!isRoot) notes.push('not run as root: no host mounts, FUSE may fail, and host caches could not be dropped');
    log(`working in ${tmp}${args.quick ? ' (quick sizes)' : ''}`);

    // The tree cp -r copies, on the host's own filesystem.
    const treeSrc = findTreeSource(args.treeSrc);
    const treePath = path.join(tmp, 'src');
    const t = buildTree(treeSrc, treePath, sizes.treeFiles, sizes.treeMaxFile);
    const tree = { path: treePath, ...t };
    log(`source tree: ${t.files} files, ${t.dirs} dirs, ${(t.bytes / MiB).toFixed(1)} MiB from ${treeSrc}`);

    // One fresh ext4 image; every mounter gets its own copy of it, so each starts identical.
    const pristine = path.join(tmp, 'pristine-ext4.img');
    fs.writeFileSync(pristine, '');
    fs.truncateSync(pristine, sizes.imageMiB * MiB);
    // No lazy init: the host kernel would otherwise zero inode tables in the background.
    await must('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', ...(args.ext4Features ? ['-O', args.ext4Features] : []),
      '-E', 'lazy_itable_init=0,lazy_journal_init=0', pristine]);

    const ctx: Ctx = {
      args, sizes, tmp, timeoutMs, tree, all,
      dropCaches: isRoot ? dropHostCaches : async () => {},
    };
    const defs = rowDefs(sizes, tree);
    const results: Record<'ext4' | 'vfat', Partial<Record<MounterName, Cells>>> = { ext4: {}, vfat: {} };
    const skipped: Record<'ext4' | 'vfat', Partial<Record<MounterName, string>>> = { ext4: {}, vfat: {} };

    const lklfuseProblem = fs.existsSync(args.lklfuse) ? undefined : `${args.lklfuse} not found (npm run build)`;
    const haveFuse2fs = spawnSync('fuse2fs', ['-V']).error === undefined;
    for (const name of MOUNTERS) {
      if (interrupted) break;
      if (!args.only.includes(name)) { skipped.ext4[name] = 'not selected (--only)'; continue; }
      if (name === 'host' && !isRoot) { skipped.ext4[name] = 'needs root'; continue; }
      if (name === 'fuse2fs' && !haveFuse2fs) { skipped.ext4[name] = 'fuse2fs not installed (apt-get install fuse2fs)'; continue; }
      if ((name === 'lklfuse' || name === 'lklfuse-fn') && lklfuseProblem) { skipped.ext4[name] = lklfuseProblem; continue; }
      if (name === 'lklfuse' && !isRoot) { skipped.ext4[name] = 'the kernel transport needs root'; continue; }
      const image = path.join(tmp, `${name}-ext4.img`);
      await must('cp', ['--sparse=always', pristine, image]);
      const mnt = path.join(tmp, `mnt-${name}`);
      fs.mkdirSync(mnt);
      const m = name === 'host' ? new HostMounter(image, mnt)
        : name === 'fuse2fs' ? new Fuse2fsMounter(image, mnt)
        : new LklfuseMounter(image, mnt, args.lklfuse, args.lklfuseOpts, path.join(tmp, `${name}-ext4.log`), name);
      all.push(m);
      log(`--- ext4: ${name}`);
      const r = await runSuite(ctx, m, 'ext4');
      results.ext4[name] = r.cells;
      fsck[`ext4.${name}`] = r.fsck;
      fs.rmSync(image, { force: true }); // keep the disk footprint to one image at a time
    }

    skipped.vfat.host = `no vfat driver in this host kernel (${os.release()})`;
    skipped.vfat.fuse2fs = 'fuse2fs serves ext2/3/4 only';
    for (const name of ['lklfuse', 'lklfuse-fn'] as const) {
      if (!args.vfat) skipped.vfat[name] = 'not selected (--no-vfat)';
      else if (!args.only.includes(name)) skipped.vfat[name] = 'not selected (--only)';
      else if (lklfuseProblem) skipped.vfat[name] = lklfuseProblem;
      else if (name === 'lklfuse' && !isRoot) skipped.vfat[name] = 'the kernel transport needs root';
      else if (!interrupted) {
        const image = path.join(tmp, `${name}-vfat.img`);
        fs.writeFileSync(image, '');
        fs.truncateSync(image, sizes.vfatMiB * MiB);
        await must('mkfs.vfat', ['-F', '32', '-n', 'LKLBENCH', image]);
        const mnt = path.join(tmp, `mnt-${name}-vfat`);
        fs.mkdirSync(mnt);
        const m = new LklfuseMounter(image, mnt, args.lklfuse, args.lklfuseOpts, path.join(tmp, `${name}-vfat.log`), name);
        all.push(m);
        log(`--- vfat: ${name}`);
        const r = await runSuite(ctx, m, 'vfat');
        results.vfat[name] = r.cells;
        fsck[`vfat.${name}`] = r.fsck;
        fs.rmSync(image, { force: true });
      }
    }

    for (const fsType of ['ext4', 'vfat'] as const) {
      if (fsType === 'vfat' && !args.vfat) continue;
      for (const d of defs) {
        const cells = {} as Record<MounterName, Cell>;
        for (const name of MOUNTERS) {
          cells[name] = results[fsType][name]?.[d.id] ?? { na: skipped[fsType][name] ?? (interrupted ? 'interrupted' : 'not run') };
        }
        rows.push({ ...d, fs: fsType, cells });
      }
    }

    const out = [
      `lkl-ts benchmark, ${started.toISOString()}${args.quick ? ' (--quick)' : ''}`,
      `machine: ${info.cpu} x${info.cpus}, ${info.memMiB} MiB, Linux ${info.kernel}, load ${info.loadavg}, Node ${info.node}; ${info.fuse2fs}; lkl-ts ${info.lklTsCommit}`,
      `images: ext4 ${sizes.imageMiB} MiB (mke2fs -t ext4 -b 4096${args.ext4Features ? ` -O ${args.ext4Features}` : ''}), vfat ${sizes.vfatMiB} MiB (mkfs.vfat -F 32); MB = 10^6 bytes; ratios are lklfuse's value divided by the other's; lklfuse = its kernel transport, lklfuse-fn = over fuse-native`,
      '',
      renderTable(rows),
      '',
      `image checks after each run: ${Object.entries(fsck).map(([k, v]) => `${k} ${v}`).join('; ') || 'none'}`,
      ...notes.map((n) => `note: ${n}`),
    ];
    process.stdout.write(out.join('\n') + '\n');

    if (args.json) {
      fs.writeFileSync(args.json, JSON.stringify({
        date: started.toISOString(), quick: args.quick, sizes, machine: info,
        tree: { files: tree.files, dirs: tree.dirs, bytes: tree.bytes, source: treeSrc },
        lklfuse: { script: args.lklfuse, options: args.lklfuseOpts },
        rows: rowsToJson(rows), fsck, notes,
      }, null, 2) + '\n');
      log(`wrote ${args.json}`);
    }
    return 0;
  } finally {
    await cleanup();
  }
}

main().then((status) => process.exit(status), (e: unknown) => {
  log(`failed: ${(e as Error)?.stack ?? String(e)}`);
  process.exit(1);
});
