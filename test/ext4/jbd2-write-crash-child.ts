// Child process for jbd2-write-crash.test.ts and jbd2-write-log.test.ts (killed by the parent).
//   crash <img> <seed>   mount read-write (commit=1), write the known tree of
//                        jbd2-write-tree.ts, fsync a file and sync(), print SYNCED, then keep
//                        changing a scratch directory until SIGKILL.
//   log <img> <seed>     with checkpoints off (jbd2_debug): write the known tree, sync (the
//                        commit puts the metadata in the log only), print SYNCED and wait.
//   wrap <img> <seed>    first churn with a sync after every change (a small journal wraps
//                        many times), then the known tree, sync, SYNCED, and wait.
//   timer <img> <seed>   write the known tree without any sync, print WRITTEN and wait: only
//                        the commit timer (commit=1) can make it durable (nodelalloc: the
//                        blocks, and so the data, are in the transactions the timer commits).
//   timer-da <img> <seed> the same with delayed allocation (the default): the timer commits
//                        the names, while data waits for writeback (30 s), as in Linux.
//   orphan <img> <seed>  three files unlinked while open, the middle one closed, a sync,
//                        then the crash with two still open: they are on the orphan chain.
//   replace <img> <seed> a synced file replaced by rename of a new copy, another rewritten
//                        with O_TRUNC, no sync: auto_da_alloc allocates their data early.
// SYNCED is followed by the journal's counters: commits, log blocks, checkpoints, wraps.
import { startKernel, O_CREAT, O_WRONLY, O_TRUNC, O_APPEND } from '../../lib/index.js';
import { jbd2_debug } from '../../lib/kernel/fs/jbd2/journal.js';
import { knownTree, pattern, rng } from './jbd2-write-tree.js';

const [mode, img, seedArg] = process.argv.slice(2);
const seed = Number(seedArg ?? 1);
if (mode === 'log') jbd2_debug.no_checkpoint = true;
const stats = (): string => { const j = jbd2_debug.last; return j ? `${j.j_stats.commits} ${j.j_stats.log_blocks} ${j.j_stats.checkpoints} ${j.j_stats.wraps}` : '-'; };
const k = await startKernel({ memMiB: 96, print: () => {} });
const disk = await k.diskAdd({ path: img! });
const mp = await k.mountDev(disk, 0, 'ext4', 0, mode === 'log' ? 'commit=600' : mode === 'timer' ? 'commit=1,nodelalloc' : 'commit=1');
if (typeof mp !== 'string') { console.log(`MOUNT ${mp}`); process.exit(1); }
const sys = k.sys;
const ok = (what: string, r: number): number => { if (r < 0) { console.log(`FAIL ${what} ${r}`); process.exit(1); } return r; };

async function writeFile(p: string, data: Uint8Array, flags = O_WRONLY | O_CREAT | O_TRUNC): Promise<void> {
  const fd = ok(`open ${p}`, await sys.open(p, flags, 0o644));
  for (let off = 0; off < data.length; off += 65536) ok(`write ${p}`, await sys.write(fd, data.subarray(off, off + 65536)));
  ok('close', await sys.close(fd));
}

async function churn(r: () => number, dirName: string, count: number, syncEvery: number): Promise<void> {
  ok('mkdir churn', await sys.mkdir(`${mp}/${dirName}`, 0o755));
  const names: string[] = [];
  for (let n = 0; n < count; n++) {
    const x = r() % 10;
    if (x < 4 || names.length < 5) {
      const p = `${dirName}/f${n}`;
      await writeFile(`${mp}/${p}`, pattern(r() % 200_000, n));
      names.push(p);
    } else if (x < 5) {
      const p = names[r() % names.length]!;
      await writeFile(`${mp}/${p}`, pattern(r() % 30_000, n), O_WRONLY | O_APPEND);
    } else if (x < 6) {
      ok('truncate', await sys.truncate(`${mp}/${names[r() % names.length]!}`, r() % 50_000));
    } else if (x < 8) {
      const i = r() % names.length;
      ok('unlink', await sys.unlink(`${mp}/${names[i]!}`));
      names.splice(i, 1);
    } else if (x < 9) {
      const i = r() % names.length;
      const to = `${dirName}/r${n}`;
      ok('rename', await sys.rename(`${mp}/${names[i]!}`, `${mp}/${to}`));
      names[i] = to;
    } else {
      ok('mkdir', await sys.mkdir(`${mp}/${dirName}/d${n}`, 0o755));
      if (r() % 2) ok('rmdir', await sys.rmdir(`${mp}/${dirName}/d${n}`));
    }
    if (n % syncEvery === 0) await sys.sync();
  }
}

if (mode === 'replace') {
  // auto_da_alloc's two idioms, after a synced old version: a new copy renamed over the
  // file, and a rewrite in place (O_TRUNC); then no sync at all.
  await writeFile(`${mp}/victim`, pattern(300_000, seed));
  await writeFile(`${mp}/rewritten`, pattern(200_000, seed + 1));
  ok('sync', await sys.sync());
  await writeFile(`${mp}/victim.tmp`, pattern(250_000, seed + 2));
  ok('rename', await sys.rename(`${mp}/victim.tmp`, `${mp}/victim`));
  await writeFile(`${mp}/rewritten`, pattern(150_000, seed + 3));
  console.log('WRITTEN');
  await new Promise(() => setInterval(() => {}, 1000));
}

if (mode === 'orphan') {
  // Files whose last link goes while they are open, then a sync: the unlinks are committed
  // with the inodes on the orphan chain, and the crash comes before they are closed.
  const fds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const p = `${mp}/open-unlinked-${i}`;
    await writeFile(p, pattern(300_000 + i * 100_000, seed + i));
    fds.push(ok('open', await sys.open(p, O_WRONLY | O_APPEND, 0)));
    ok('unlink', await sys.unlink(p));
  }
  // The middle one of the chain (newest first: 2, 1, 0) is closed and deleted: 2 names 0.
  ok('close', await sys.close(fds[1]!));
  ok('mkdir', await sys.mkdir(`${mp}/kept`, 0o755));
  await writeFile(`${mp}/kept/file`, pattern(50_000, seed + 9));
  ok('sync', await sys.sync());
  console.log(`SYNCED ${stats()}`);
  await new Promise(() => setInterval(() => {}, 1000));
}

if (mode === 'wrap') await churn(rng(seed * 104729), 'churn', 400, 1);

// Something to delete first, so that the known tree reuses freed blocks (revoke paths).
ok('mkdir pre', await sys.mkdir(`${mp}/pre`, 0o755));
for (let i = 0; i < 20; i++) await writeFile(`${mp}/pre/f${i}`, pattern(5000 + i * 3000, seed + i));
ok('sync', await sys.sync());
for (let i = 0; i < 20; i++) ok('unlink', await sys.unlink(`${mp}/pre/f${i}`));
ok('rmdir pre', await sys.rmdir(`${mp}/pre`));
ok('sync', await sys.sync()); // the frees (and their revokes) commit on their own

for (const e of knownTree(seed)) {
  const p = `${mp}/${e.path}`;
  if (e.type === 'dir') ok(`mkdir ${e.path}`, await sys.mkdir(p, 0o755));
  else if (e.type === 'symlink') ok(`symlink ${e.path}`, await sys.symlink(e.targetBytes ?? e.target!, p));
  else await writeFile(p, pattern(e.size!, e.seed!));
}
if (mode === 'timer' || mode === 'timer-da') {
  console.log('WRITTEN');
  await new Promise(() => setInterval(() => {}, 1000));
}
{
  const fd = ok('open', await sys.open(`${mp}/known/fsynced`, O_WRONLY | O_CREAT | O_TRUNC, 0o644));
  ok('write', await sys.write(fd, pattern(77_777, seed + 999)));
  ok('fsync', await sys.fsync(fd));
  ok('close', await sys.close(fd));
}
ok('sync', await sys.sync());
console.log(`SYNCED ${stats()}`);

if (mode === 'log' || mode === 'wrap') {
  setInterval(() => {}, 1000);
} else {
  await churn(rng(seed * 7919), 'chaos', Number.MAX_SAFE_INTEGER, 25);
}
