/*
 * What an fsync costs (issue 11, item 6): device flushes per fsync and fsync latency, for
 * the lkl-ts kernel (in process, its store counting flushes) and the host kernel's ext4 on a
 * loop device (flushes from /sys/block/loopN/stat), on the same kind of image in one run.
 * Workloads: a new 4 KiB file written and fsync'd (create), and 4 KiB rewritten in place in
 * one file followed by fdatasync (overwrite).
 *
 *   node dist/scripts/fsync-bench.js [--n 200] [--dir DIR]
 *
 * Root only (loop devices). Cleans up what it made, also on failure.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FaultyStore, FileStore } from '../lib/drivers/stores.js';
import { O_CREAT, O_RDWR, O_WRONLY, startKernel } from '../lib/index.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
};
const N = Number(arg('n', '200'));
const DIR = arg('dir', os.tmpdir());

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

interface Result { fsyncs: number; flushes: number; ms: number[] }
const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))]!;

function row(label: string, r: Result): string {
  return `${label.padEnd(28)} ${String(r.fsyncs).padStart(6)} ${(r.flushes / r.fsyncs).toFixed(2).padStart(13)} ` +
    `${pct(r.ms, 0.5).toFixed(2).padStart(10)} ${pct(r.ms, 0.9).toFixed(2).padStart(10)}`;
}

const block = Buffer.alloc(4096, 0x5a);

/** The host kernel's ext4 on a loop device. */
function hostRuns(img: string): { create: Result; overwrite: Result } {
  const dev = sh('losetup', ['--find', '--show', img]);
  const mnt = fs.mkdtempSync(path.join(DIR, 'fsync-bench-mnt-'));
  const stat = () => Number(fs.readFileSync(`/sys/block/${path.basename(dev)}/stat`, 'utf8').trim().split(/\s+/)[15] ?? NaN);
  try {
    sh('mount', ['-t', 'ext4', dev, mnt]);
    try {
      const run = (fn: (i: number) => void): Result => {
        sh('sync', []);
        const f0 = stat();
        const ms: number[] = [];
        for (let i = 0; i < N; i++) { const t0 = performance.now(); fn(i); ms.push(performance.now() - t0); }
        return { fsyncs: N, flushes: stat() - f0, ms };
      };
      const create = run((i) => {
        const fd = fs.openSync(path.join(mnt, `c${i}`), 'w', 0o644);
        fs.writeSync(fd, block); fs.fsyncSync(fd); fs.closeSync(fd);
      });
      const fd = fs.openSync(path.join(mnt, 'o'), 'w+', 0o644);
      fs.writeSync(fd, Buffer.alloc(N * 4096)); fs.fsyncSync(fd);
      const overwrite = run((i) => { fs.writeSync(fd, block, 0, 4096, i * 4096); fs.fdatasyncSync(fd); });
      fs.closeSync(fd);
      return { create, overwrite };
    } finally { sh('umount', [mnt]); }
  } finally {
    spawnSync('losetup', ['-d', dev]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}

/** lkl-ts in process, its store counting flushes. */
async function lklRuns(img: string): Promise<{ create: Result; overwrite: Result }> {
  const k = await startKernel({ memMiB: 64, print: () => {} });
  try {
    const store = new FaultyStore(await FileStore.open(img));
    const id = await k.diskAdd({ store });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
    if (typeof mnt !== 'string') throw new Error(`mount: ${mnt}`);
    const run = async (fn: (i: number) => Promise<void>): Promise<Result> => {
      await k.sys.sync();
      const f0 = store.flushes;
      const ms: number[] = [];
      for (let i = 0; i < N; i++) { const t0 = performance.now(); await fn(i); ms.push(performance.now() - t0); }
      return { fsyncs: N, flushes: store.flushes - f0, ms };
    };
    const check = (what: string, r: number) => { if (r < 0) throw new Error(`${what}: ${r}`); return r; };
    const create = await run(async (i) => {
      const fd = check('open', await k.sys.open(`${mnt}/c${i}`, O_CREAT | O_WRONLY, 0o644));
      check('write', await k.sys.write(fd, block));
      check('fsync', await k.sys.fsync(fd));
      await k.sys.close(fd);
    });
    const fd = check('open', await k.sys.open(`${mnt}/o`, O_CREAT | O_RDWR, 0o644));
    check('write', await k.sys.pwrite64(fd, new Uint8Array(N * 4096), 0));
    check('fsync', await k.sys.fsync(fd));
    const overwrite = await run(async (i) => {
      check('pwrite', await k.sys.pwrite64(fd, block, i * 4096));
      check('fdatasync', await k.sys.fdatasync(fd));
    });
    await k.sys.close(fd);
    check('umount', await k.umountDev(id, 0));
    await k.diskRemove(id);
    return { create, overwrite };
  } finally { await k.halt(); }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('root only (loop devices)');
  const work = fs.mkdtempSync(path.join(DIR, 'fsync-bench-'));
  try {
    const mk = (name: string) => {
      const img = path.join(work, name);
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 256 << 20);
      sh('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '4096', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
      return img;
    };
    const host = hostRuns(mk('host.img'));
    const lkl = await lklRuns(mk('lkl.img'));
    console.log(`fsync cost, ${N} fsyncs per row; ext4 256 MiB (mke2fs defaults, 4 KiB blocks), images in ${DIR}`);
    console.log(`${'row'.padEnd(28)} ${'fsyncs'.padStart(6)} ${'flushes/fsync'.padStart(13)} ${'median ms'.padStart(10)} ${'p90 ms'.padStart(10)}`);
    console.log(row('host: create + fsync', host.create));
    console.log(row('lkl-ts: create + fsync', lkl.create));
    console.log(row('host: overwrite + fdatasync', host.overwrite));
    console.log(row('lkl-ts: overwrite + fdatasync', lkl.overwrite));
  } finally { fs.rmSync(work, { recursive: true, force: true }); }
}

main().catch((e) => { console.error(`fsync-bench: ${(e as Error).message}`); process.exit(1); });
