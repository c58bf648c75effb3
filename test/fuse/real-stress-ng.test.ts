// stress-ng's filesystem class through lklfuse (issue 15 item 6): every stressor of the class
// (but the exclusions below, each with its reason) runs at once, one instance each, for a
// few seconds in a directory of an lklfuse mount of ext4 and of FAT32. Any "fail:" or
// "error:" line of stress-ng that is not ENOSPC fails the test; a run that does not end
// within its bound fails it too, with the daemon's kernel task dump (SIGUSR1). After
// unmount: e2fsck -fn / fsck.vfat -n clean.
//
// LKL_TEST_STRESS_NG_SECS (default 6) sets the run's length; longer runs by hand.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { box, fuseSkip, fusermountU, isMounted, startForeground, waitFor, within, type Daemon } from './real-helpers.js';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';

const SECS = Number(process.env.LKL_TEST_STRESS_NG_SECS ?? 6);
/*
 * Known failures, reported and not fixed yet (the check runs and prints them, marked todo
 * while this is not empty). None now. Fixed: EINTR (errno=4) from mkdir, chown, open... at
 * the run's end, when stress-ng stops its workers with SIGALRM: lib/fuse/fuse-session.ts
 * answered interrupted read-only requests (a path walk's lookups) EINTR; it completes them
 * now, as Linux's ext4 and libfuse without -o intr do.
 */
const KNOWN = '';

/** Stressors of the class left out, and why. */
const EXCLUDED: Record<string, string> = {
  'bind-mount': 'pathological (stress-ng disables it itself): mount namespaces, not the filesystem',
  binderfs: "Android's binder filesystem: mounts its own, nothing of the mount under test",
  procfs: "reads the host's /proc, not the mount",
  fanotify: "marks every mount of the host (it walks /proc/mounts): its events' descriptors hold files open on other mounts, whose unmount then fails with EBUSY (seen in CI: a parallel test's fusermount -u)",
  dirmany: 'fills the filesystem with files until ENOSPC within a second, which starves every other stressor; run it alone (soak / by hand)',
  'file-ioctl': "its FIOQSIZE check is answered by the host kernel from the i_blocks FUSE cached (0 right after a write), not by lklfuse",
};
/** More exclusions on FAT. */
const EXCLUDED_FAT: Record<string, string> = {
  access: 'FAT cannot hold the modes it sets: Linux vfat keeps r/x bits and returns 0 (fat_sanitize_mode_change), so access(X_OK) after chmod 600 succeeds there too',
};

function classStressors(): string[] {
  const r = spawnSync('stress-ng', ['--class', 'filesystem?'], { encoding: 'utf8' });
  const m = /stressors:\s*(.*)/.exec(r.stdout + r.stderr);
  return m ? m[1]!.trim().split(/\s+/) : [];
}

async function stress(t: Test, dir: string, d: Daemon, excluded: Record<string, string>): Promise<void> {
  const all = classStressors();
  t.ok(all.length > 20, `stress-ng lists the filesystem class (${all.length} stressors)`);
  const run = all.filter((s) => !(s in excluded));
  t.comment(`excluded: ${Object.entries(excluded).map(([k, v]) => `${k} (${v})`).join('; ')}`);
  const args = [
    ...run.flatMap((s) => [`--${s}`, '1']),
    // Sizes that fit a 1 GiB image many times over (copy-file's minimum is 128 MiB).
    '--hdd-bytes', '8m', '--iomix-bytes', '8m', '--fallocate-bytes', '8m', '--copy-file-bytes', '128m',
    '--dentries', '2000', '-t', `${SECS}s`, '--temp-path', dir, '--timestamp',
  ];
  // Its own process group, so that a run that overstays is killed with all its stressors.
  const c = spawn('nice', ['-n', '10', 'stress-ng', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  c.stdout.on('data', (b: Buffer) => { out += b; });
  c.stderr.on('data', (b: Buffer) => { out += b; });
  const done = new Promise<number | null>((r) => c.on('close', (code) => r(code)));
  // Generous: stress-ng runs niced, and a loaded machine (CI runs test files in parallel)
  // can keep a stressor runnable but unscheduled for a long time; a hang stays one.
  const bound = (SECS + 120) * 1000;
  const ended = await Promise.race([done, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), bound))]);
  if (ended === 'timeout') {
    d.child.kill('SIGUSR1');
    await waitFor(() => /Show State: \d+ tasks/.test(d.stderr()), 5000);
    t.comment(`the daemon's kernel task states:\n${d.stderr()}`);
    const stuck = spawnSync('sh', ['-c', "ps -eo pid,stat,wchan:30,cmd | grep '[s]tress-ng'"], { encoding: 'utf8' }).stdout;
    t.fail(`stress-ng did not end within ${bound / 1000} s:\n${stuck}`);
    // A stressor stuck in a FUSE request dies only when the connection goes: the teardown
    // unmounts (umount -l) and kills the daemon.
    try { process.kill(-c.pid!, 'SIGKILL'); } catch { c.kill('SIGKILL'); }
    await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
    return;
  }
  const lines = out.split('\n');
  const isEnospc = (l: string) => /errno=28|No space left on device|ENOSPC/.test(l);
  // With --timestamp a line reads "stress-ng: HH:MM:SS.cc level: [pid] ...".
  const HEAD = /^stress-ng: (?:(\d\d):(\d\d):(\d\d\.\d+) )?(\w+): +\[(\d+)\]/;
  const pidOf = (l: string) => HEAD.exec(l)?.[5];
  const secondsOf = (l: string) => {
    const m = HEAD.exec(l);
    return m?.[3] ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : NaN;
  };
  // A stressor whose write met ENOSPC may fail its own check after it (dnotify waits for
  // the event of the write that failed) and then ends "with an error": both are ENOSPC's.
  const enospcPids = new Set(lines.filter(isEnospc).map(pidOf).filter(Boolean));
  // dnotify arms F_NOTIFY, then does the access/modify step only while the run goes on, then
  // waits a second for the signal. When the run's end (SIGALRM) falls between arming and
  // that step, the step is skipped and it reports a miss a second later: stress-ng's own
  // race at the end, on any filesystem. Each stressor's run ends SECS after it started, and
  // on a loaded machine it starts up to a couple of seconds after "dispatching hogs" (CI saw
  // a miss reported just before the nominal end, with the volume full and the machine busy).
  // A miss reported more than 2 s before the nominal end is a real one.
  const start = secondsOf(lines.find((l) => /dispatching hogs/.test(l)) ?? '');
  const endRace = (l: string) => /dnotify: did not get expected dnotify file descriptor/.test(l) &&
    (secondsOf(l) - start + 86400) % 86400 >= SECS - 2;
  const raced = lines.filter(endRace);
  if (raced.length) t.comment(`dnotify's end-of-run race (not counted):\n${raced.join('\n')}`);
  // Its pid's "ended with an error" line follows from it (a pid with a real miss as well
  // keeps that line, which fails on its own).
  const excused = new Set([...enospcPids, ...raced.map(pidOf).filter(Boolean)]);
  const bad = lines.filter((l) => /^stress-ng: (?:\S+ )?(fail|error):/.test(l) && !isEnospc(l) && !endRace(l) &&
    !enospcPids.has(pidOf(l)) && !excused.has(/process \[(\d+)\]/.exec(l)?.[1]));
  t.ok(Number.isFinite(start), 'stress-ng timestamps its log (the run start is known)');
  t.same(bad, [], `no stress-ng failure but ENOSPC and its consequences (exit ${ended})`, KNOWN ? { todo: KNOWN } : {});
  if (bad.length) t.comment(`stress-ng's failures:\n${bad.join('\n')}\nENOSPC:\n${lines.filter(isEnospc).join('\n')}`);
  const enospc = lines.filter(isEnospc).length;
  t.comment(`${run.length} stressors for ${SECS} s; ${enospc} ENOSPC lines`);
  // What is left of the stressors' files goes, so fsck sees a tree stress-ng finished with.
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    // The chattr stressor sets an inode flag (immutable, append-only) and clears it again;
    // one stopped in between (CI saw it once, on ext4) leaves a file that unlink refuses
    // with EPERM, as the host's ext4 would. Clear the flags, then remove.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    t.comment(`left with an inode flag: ${(e as Error).message}; chattr -R -i -a, then removed`);
    spawnSync('chattr', ['-R', '-i', '-a', dir], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function unmount(t: Test, mnt: string, d: Daemon): Promise<void> {
  // The stressors' last children may still hold a file of the mount for a moment.
  const um = await fusermountU(mnt);
  t.equal(um.status, 0, 'fusermount -u (tried again while busy)', { stderr: um.stderr });
  const ex = await within(d.exited, 60_000);
  t.ok(ex.ok && ex.value === 0, `the daemon exits 0 (${ex.ok ? ex.value : 'still running after 60 s'})`, { stderr: d.stderr() });
  t.notOk(await isMounted(mnt), 'unmounted');
}

const skip = fuseSkip() || whyNot(['stress-ng', 'mke2fs', 'e2fsck', 'mkfs.vfat', 'fsck.vfat']);

t.test('ext4', { skip }, async (t) => {
  const b = box(t, 'stress-ng-ext4');
  const img = await makeExtImage({ type: 'ext4', sizeMiB: 1024, dir: b.dir });
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'hung_task_timeout=20']);
  const dir = path.join(mnt, 'stress');
  fs.mkdirSync(dir);
  await stress(t, dir, d, EXCLUDED);
  t.notMatch(d.stderr(), /INFO: task/, 'no kernel task reported hung');
  await unmount(t, mnt, d);
  const f = await e2fsckClean(img);
  t.ok(f.clean, `e2fsck -fn clean${f.clean ? '' : `:\n${f.output}`}`);
});

t.test('FAT32', { skip }, async (t) => {
  const b = box(t, 'stress-ng-fat');
  const img = await makeVfatImage({ fat: 32, sizeMiB: 1024, dir: b.dir });
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'hung_task_timeout=20']);
  const dir = path.join(mnt, 'stress');
  fs.mkdirSync(dir);
  await stress(t, dir, d, { ...EXCLUDED, ...EXCLUDED_FAT });
  t.notMatch(d.stderr(), /INFO: task/, 'no kernel task reported hung');
  await unmount(t, mnt, d);
  const f = await fsckVfatClean(img);
  t.ok(f.clean, `fsck.vfat -n clean${f.clean ? '' : `:\n${f.output}`}`);
});
