// Load through one real lklfuse mount (issue 15 item 4), on ext4 (mke2fs -t ext4 defaults:
// journalled) and on FAT32: ~20 host processes at once — writers to distinct files, writers
// to distinct regions of one shared file, readers checking stable files, creates and renames
// in one directory, rm -rf of a tree that find and du are walking, a stat storm. Every
// process must finish within a watchdog (on expiry the daemon is sent SIGUSR1 and its task
// dump is printed), the tree must be one a serial order allows, e2fsck -fn / fsck.vfat -n
// clean after unmount, and the host kernel (loop mount; mtools for FAT) must see the same
// tree as the mount did. Also: SIGUSR1 makes the daemon print every kernel task's state.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { box, fuseSkip, NODE_CMD, sleep, startForeground, waitFor, isMounted, type Daemon } from './real-helpers.js';
import { checkTagged, sharedRegion, taggedContent, writerContent } from './load-worker.js';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, withLoopMount } from '../lib/images.js';
import { diffManifests, hostManifest, mtoolsManifest, projectToFat } from '../lib/manifest.js';
import { whyNot } from '../lib/sh.js';

const WORKER = fileURLToPath(new URL('./load-worker.js', import.meta.url));
// LKL_LOAD_WATCHDOG_MS: a shorter watchdog, to see what a stuck run reports.
const WATCHDOG_MS = Number(process.env.LKL_LOAD_WATCHDOG_MS) || 60_000;
const WRITERS = 4, WRITER_BYTES = 1 << 20;
const SHARED = 4, SHARED_BYTES = 256 << 10;
const RENAMERS = 3, RENAMES = 60, CREATORS = 2, CREATES = 150;
const STABLE = 20;
const DOOMED_DIRS = 10, DOOMED_FILES = 30;

interface Proc { name: string; done: Promise<{ code: number | null; signal: string | null; out: string; err: string }>; kill(): void }

function startProc(name: string, cmd: string, args: string[], cwd?: string): Proc {
  const c = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  c.stdout.on('data', (d: Buffer) => { out += d; });
  c.stderr.on('data', (d: Buffer) => { err += d; });
  const done = new Promise<{ code: number | null; signal: string | null; out: string; err: string }>((r) => {
    c.on('close', (code, signal) => r({ code, signal, out, err }));
  });
  return { name, done, kill: () => { try { c.kill('SIGKILL'); } catch { /* gone */ } } };
}
const worker = (role: string, root: string, id: number, n: number): Proc =>
  startProc(`${role}#${id}`, NODE_CMD[0], [...NODE_CMD[1], WORKER, role, root, String(id), String(n)]);

/** What each creator leaves: every name but c<id>-<i> with i % 3 == 1 that a later i removed. */
function creatorModel(id: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < CREATES; i++) if (!(i % 3 === 1 && i + 1 < CREATES)) out.push(`c${id}-${i}`);
  return out;
}

function prepare(root: string): void {
  fs.mkdirSync(path.join(root, 'writers'));
  fs.mkdirSync(path.join(root, 'ren'));
  fs.mkdirSync(path.join(root, 'create'));
  fs.mkdirSync(path.join(root, 'stable'));
  for (let i = 0; i < STABLE; i++) fs.writeFileSync(path.join(root, 'stable', `s${i}`), taggedContent(`s${i}`, 1000 + i * 1500));
  fs.writeFileSync(path.join(root, 'shared'), Buffer.alloc(0));
  fs.truncateSync(path.join(root, 'shared'), SHARED * SHARED_BYTES);
  for (let d = 0; d < DOOMED_DIRS; d++) {
    const dir = path.join(root, 'doomed', `d${d}`, 'sub');
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < DOOMED_FILES; f++) fs.writeFileSync(path.join(root, 'doomed', `d${d}`, f % 2 ? `f${f}` : `sub/f${f}`), `doomed ${d} ${f}\n`);
  }
}

/** Runs every process at once; on a stuck one, asks the daemon for its task dump and fails. */
async function runLoad(t: Test, root: string, daemon: Daemon): Promise<boolean> {
  const procs: Proc[] = [];
  for (let i = 0; i < WRITERS; i++) procs.push(worker('writer', root, i, WRITER_BYTES));
  for (let i = 0; i < SHARED; i++) procs.push(worker('shared', root, i, SHARED_BYTES));
  for (let i = 0; i < 2; i++) procs.push(worker('reader', root, i, 3));
  for (let i = 0; i < RENAMERS; i++) procs.push(worker('renamer', root, i, RENAMES));
  for (let i = 0; i < CREATORS; i++) procs.push(worker('creator', root, i, CREATES));
  procs.push(worker('stat', root, 0, 3));
  procs.push(startProc('find', 'find', ['doomed'], root));
  procs.push(startProc('du', 'du', ['-s', 'doomed'], root));
  procs.push(startProc('rm -rf', 'rm', ['-rf', 'doomed'], root));
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), WATCHDOG_MS); });
  const all = Promise.all(procs.map((p) => p.done));
  const first = await Promise.race([all, watchdog]);
  clearTimeout(timer);
  if (first === 'timeout') {
    const stuck: string[] = [];
    await Promise.all(procs.map(async (p) => { if (await Promise.race([p.done.then(() => false), sleep(0).then(() => true)])) stuck.push(p.name); }));
    daemon.child.kill('SIGUSR1');
    await waitFor(() => /Show State: \d+ tasks/.test(daemon.stderr()), 5000);
    t.comment(`the daemon's task states (SIGUSR1):\n${daemon.stderr()}`);
    t.fail(`watchdog: ${stuck.join(', ')} still running after ${WATCHDOG_MS / 1000} s (task states above)`);
    for (const p of procs) p.kill();
    await all;
    return false;
  }
  const results = first;
  let ok = true;
  results.forEach((r, i) => {
    const name = procs[i]!.name;
    if (name === 'find' || name === 'du') {
      // Walking a tree being removed: names vanish under them (ENOENT), nothing else.
      const other = r.err.split('\n').filter((l) => l && !/No such file or directory$/.test(l));
      ok = t.same(other, [], `${name}: no error but vanished names`) && ok;
      ok = t.ok(r.code === 0 || r.code === 1, `${name}: exits 0 or 1 (${r.code})`) && ok;
    } else {
      ok = t.equal(r.code, 0, `${name} succeeds${r.err ? `: ${r.err}` : ''}`) && ok;
    }
  });
  const renamers = results.slice(WRITERS + SHARED + 2, WRITERS + SHARED + 2 + RENAMERS).map((r) => JSON.parse(r.out || '{}'));
  t.comment(`renames: ${renamers.map((r) => `${r.renames} (${r.enoent} ENOENT)`).join(', ')}`);
  return ok;
}

/** The tree must be one a serial order of the same operations allows. */
function checkModel(t: Test, root: string): void {
  for (let i = 0; i < WRITERS; i++) {
    t.ok(fs.readFileSync(path.join(root, 'writers', `w${i}`)).equals(writerContent(i, WRITER_BYTES)), `writers/w${i} exact`);
  }
  const shared = fs.readFileSync(path.join(root, 'shared'));
  t.equal(shared.length, SHARED * SHARED_BYTES, 'shared file keeps its size');
  for (let i = 0; i < SHARED; i++) {
    t.ok(shared.subarray(i * SHARED_BYTES, (i + 1) * SHARED_BYTES).equals(sharedRegion(i, SHARED_BYTES)), `shared region ${i} exact`);
  }
  const ren = fs.readdirSync(path.join(root, 'ren')).sort();
  t.equal(new Set(ren).size, ren.length, `ren/: each name at most once (${ren.join(' ')})`);
  t.ok(ren.length >= 1 && ren.every((n) => /^slot[0-4]$/.test(n)), 'ren/: only slot names, at least one (no tmp file lost)');
  const tags = ren.map((n) => checkTagged(fs.readFileSync(path.join(root, 'ren', n))));
  t.ok(tags.every((x) => x !== null && /^r\d+-\d+$/.test(x)), `ren/: every file's content intact (${tags.join(' ')})`);
  t.equal(new Set(tags).size, tags.length, 'ren/: no file under two names');
  const want = [...Array(CREATORS).keys()].flatMap(creatorModel).sort();
  const created = fs.readdirSync(path.join(root, 'create')).sort();
  t.same(created, want, 'create/: exactly the serial model\'s names');
  t.ok(created.every((n) => checkTagged(fs.readFileSync(path.join(root, 'create', n))) === n), 'create/: every file intact');
  t.notOk(fs.existsSync(path.join(root, 'doomed')), 'doomed/ is gone after rm -rf');
  t.same(fs.readdirSync(path.join(root, 'stable')).length, STABLE, 'stable/ untouched');
}

async function unmount(t: Test, mnt: string, d: Daemon): Promise<void> {
  const u = startProc('fusermount', 'fusermount', ['-u', mnt]);
  t.equal((await u.done).code, 0, 'fusermount -u');
  t.equal(await d.exited, 0, 'the daemon exits 0');
  t.notOk(await isMounted(mnt), 'unmounted');
}

const skip = fuseSkip(['find', 'du', 'rm']) || whyNot(['mke2fs', 'e2fsck', 'mkfs.vfat', 'fsck.vfat', 'mcopy', 'losetup'], { root: true });

t.test('ext4 (journalled) under load', { skip }, async (t) => {
  const b = box(t, 'load-ext4');
  const img = await makeExtImage({ type: 'ext4', sizeMiB: 96, dir: b.dir });
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'hung_task_timeout=30']);
  prepare(mnt);
  if (!(await runLoad(t, mnt, d))) return;
  checkModel(t, mnt);

  // sysrq-t through the daemon: SIGUSR1 prints every kernel task's state.
  const before = d.stderr().length;
  d.child.kill('SIGUSR1');
  t.ok(await waitFor(() => /Show State: \d+ tasks/.test(d.stderr().slice(before)), 5000), 'SIGUSR1: the daemon prints the task states');
  const dump = d.stderr().slice(before);
  t.match(dump, /task:syscall\/0 +state:I pid:\d+/, 'the dump lists the idle syscall threads');
  t.match(dump, /task:sysrq +state:R/, 'and the dumping thread itself, running');
  t.notMatch(d.stderr(), /INFO: task/, 'no task was reported hung');

  const seen = await hostManifest(mnt, { xattrs: false, exclude: ['lost+found'] });
  await unmount(t, mnt, d);
  const fsck = await e2fsckClean(img);
  t.ok(fsck.clean, `e2fsck -fn clean${fsck.clean ? '' : `:\n${fsck.output}`}`);
  await withLoopMount(img, { ro: true }, async (dir) => {
    const host = await hostManifest(dir, { xattrs: false, exclude: ['lost+found'] });
    const diffs = diffManifests(seen, host, { ignore: ['atime', 'ctime', 'mtime', 'nlink', 'uid', 'gid', 'mode', 'dirSize'] });
    t.same(diffs, [], 'the host kernel sees the tree the mount showed');
  });
});

t.test('FAT32 under load', { skip }, async (t) => {
  const b = box(t, 'load-fat');
  const img = await makeVfatImage({ fat: 32, sizeMiB: 96, dir: b.dir });
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'hung_task_timeout=30']);
  prepare(mnt);
  if (!(await runLoad(t, mnt, d))) return;
  checkModel(t, mnt);
  t.notMatch(d.stderr(), /INFO: task/, 'no task was reported hung');
  const seen = projectToFat(await hostManifest(mnt, { xattrs: false }));
  await unmount(t, mnt, d);
  const fsck = await fsckVfatClean(img);
  t.ok(fsck.clean, `fsck.vfat -n clean${fsck.clean ? '' : `:\n${fsck.output}`}`);
  const mt = await mtoolsManifest(img);
  t.same(diffManifests(seen, mt, { ignore: ['mtime'] }), [], 'mtools sees the tree the mount showed');
});
