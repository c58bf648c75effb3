/*
 * Soak: the random exerciser (test/lib/mount-exerciser.ts) through one real lklfuse mount,
 * seed after seed, for a given time, watching the daemon:
 *
 *   node dist/scripts/soak.js [--minutes 60] [--mb 64] [--fs ext4|vfat] [--ops 400]
 *        [--sample-secs 5] [--first-seed 1] [--dir DIR] [--json FILE] [--lklfuse-o OPTS]
 *
 * Every --sample-secs it reads the daemon's VmRSS (/proc/PID/status) and open descriptors
 * (/proc/PID/fd), and sends it SIGUSR2, on which lklfuse logs the kernel's fs.inode-nr and
 * fs.dentry-state (lib/kernel/kernel/sysctl.ts). The counters are also taken right after
 * each seed (its tree removed) and compared with the baseline taken before the first. At the
 * end: unmount, e2fsck -fn / fsck.vfat -n, and a summary: RSS min/max/slope (least squares
 * over the second half, MiB per minute), descriptors and in-use inode/dentry counts against
 * the baseline. Exit status 1 if a seed failed, fsck is not clean, RSS went over mb + 150 MiB,
 * its slope is over 1 MiB/min, or descriptors or in-use inodes/dentries ended above the
 * baseline (by more than a small slack for the root and the seed directory).
 *
 * Must run as root (the kernel transport; mkfs). Leaves nothing mounted. Its CI slice is
 * test/fuse/real-soak.test.ts (--minutes 0.5).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exerciseSeed } from '../test/lib/mount-exerciser.js';

const BIN = fileURLToPath(new URL('../bin/lklfuse.js', import.meta.url));

interface Args { minutes: number; mb: number; fs: 'ext4' | 'vfat'; ops: number; sampleSecs: number; firstSeed: number; dir?: string; json?: string; lklfuseO?: string }

function parseArgs(argv: string[]): Args {
  const a: Args = { minutes: 60, mb: 64, fs: 'ext4', ops: 400, sampleSecs: 5, firstSeed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => { const x = argv[++i]; if (x === undefined) throw new Error(`${k} needs a value`); return x; };
    const num = () => { const x = Number(v()); if (!Number.isFinite(x) || x < 0) throw new Error(`${k}: not a number`); return x; };
    switch (k) {
      case '--minutes': a.minutes = num(); break;
      case '--mb': a.mb = num(); break;
      case '--fs': { const f = v(); if (f !== 'ext4' && f !== 'vfat') throw new Error('--fs is ext4 or vfat'); a.fs = f; break; }
      case '--ops': a.ops = num(); break;
      case '--sample-secs': a.sampleSecs = num(); break;
      case '--first-seed': a.firstSeed = num(); break;
      case '--dir': a.dir = v(); break;
      case '--json': a.json = v(); break;
      case '--lklfuse-o': a.lklfuseO = v(); break;
      case '-h': case '--help':
        process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\n/, '').replace(/^ \* ?/gm, ''));
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  return a;
}

interface Counters { inodes: number; inodesUnused: number; dentries: number; dentriesUnused: number }
interface Sample { tMin: number; rssKiB: number; fds: number; c?: Counters }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mounted = (mnt: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);

function rssKiB(pid: number): number {
  const m = /VmRSS:\s*(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
const fdCount = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;

/** Asks the daemon (SIGUSR2) for its counters and waits for the log line it writes. */
async function counters(d: ChildProcess, err: () => string): Promise<Counters | undefined> {
  const before = err().length;
  d.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    const m = /stats: fs\.inode-nr=(\d+) (\d+) fs\.dentry-state=(\d+) (\d+)/.exec(err().slice(before));
    if (m) return { inodes: +m[1]!, inodesUnused: +m[2]!, dentries: +m[3]!, dentriesUnused: +m[4]! };
    await sleep(20);
  }
  return undefined;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (ys[i]! - my); den += (xs[i]! - mx) ** 2; }
  return den ? num / den : 0;
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  const work = a.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lkl-ts-soak-'));
  const img = path.join(work, `soak-${a.fs}.img`);
  const mnt = path.join(work, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  fs.rmSync(img, { force: true });
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 512 * 1024 * 1024);
  const mk = a.fs === 'ext4' ? spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', img]) : spawnSync('mkfs.vfat', ['-F', '32', img]);
  if (mk.status !== 0) throw new Error(`mkfs: ${mk.stderr}`);

  const opts = [`mb=${a.mb}`, ...(a.lklfuseO ? [a.lklfuseO] : [])].join(',');
  const env = { ...process.env };
  delete env.NODE_OPTIONS; delete env.DEBUG; delete env.LKLFUSE_READY_FD;
  const d = spawn(process.execPath, [BIN, img, mnt, '-f', '-o', opts], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  d.stderr!.on('data', (b: Buffer) => { err += b; if (err.length > 4 << 20) err = err.slice(-(1 << 20)); });
  const exited = new Promise<number | null>((r) => d.on('exit', (c) => r(c)));
  const t0 = Date.now();
  while (!mounted(mnt)) {
    if (d.exitCode !== null) throw new Error(`lklfuse exited ${d.exitCode}: ${err}`);
    if (Date.now() - t0 > 30000) { d.kill('SIGKILL'); throw new Error(`no mount after 30 s: ${err}`); }
    await sleep(50);
  }
  const pid = d.pid!;
  const samples: Sample[] = [];
  const failures: string[] = [];
  const afterSeed: Counters[] = [];
  const minutes = () => (Date.now() - t0) / 60000;
  let sampling = true;
  const baseline = await counters(d, () => err);
  const fdBase = fdCount(pid);
  const sampler = (async () => {
    while (sampling) {
      try { samples.push({ tMin: minutes(), rssKiB: rssKiB(pid), fds: fdCount(pid), c: await counters(d, () => err) }); } catch { /* daemon gone */ }
      await sleep(a.sampleSecs * 1000);
    }
  })();

  let seed = a.firstSeed, seeds = 0, ops = 0, bytes = 0;
  try {
    // The exerciser is synchronous host I/O through the mount (the daemon is another
    // process): the sampler runs between seeds, so a seed longer than --sample-secs
    // stretches the interval.
    while (minutes() < a.minutes || seeds === 0) {
      try {
        const r = exerciseSeed(mnt, `seed-${seed}`, seed, a.ops);
        ops += r.ops; bytes += r.bytesWritten;
      } catch (e) {
        failures.push((e as Error).message);
        if (failures.length >= 3) break;
      }
      spawnSync('sync', ['-f', mnt]);
      const c = await counters(d, () => err);
      if (c) afterSeed.push(c);
      seeds++; seed++;
      await sleep(10);
    }
    // The host's dcache keeps FUSE nodes referenced (no FORGET until it lets the dentries
    // go): as root, drop it, so that the last figures show what the daemon itself holds.
    if (process.getuid?.() === 0) {
      try { fs.writeFileSync('/proc/sys/vm/drop_caches', '2'); } catch { /* not allowed here */ }
      await sleep(500);
      const c = await counters(d, () => err);
      if (c) afterSeed.push(c);
    }
  } finally {
    sampling = false;
    await sampler;
    // Another process may hold a file of the mount open for a moment (an fanotify listener
    // of the host, say): fusermount -u then fails with EBUSY, and is tried again, as a user would.
    const t1 = Date.now();
    while (spawnSync('fusermount', ['-u', mnt]).status !== 0 && mounted(mnt) && Date.now() - t1 < 30000) await sleep(500);
    while (mounted(mnt) && Date.now() - t1 < 60000) await sleep(100);
    if (mounted(mnt)) { spawnSync('umount', ['-l', mnt]); d.kill('SIGKILL'); }
  }
  const status = await exited;
  if (status !== 0) failures.push(`lklfuse exited ${status}`);
  const fsck = a.fs === 'ext4' ? spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' }) : spawnSync('fsck.vfat', ['-n', img], { encoding: 'utf8' });
  const fsckOut = (fsck.stdout ?? '') + (fsck.stderr ?? '');
  const fsckClean = fsck.status === 0 && (a.fs === 'ext4' || !fsckOut.split('\n').some((l) => l.trim() && !/^fsck\.(fat|vfat) \d/.test(l) && !/: \d+ files?, \d+\/\d+ clusters$/.test(l)));
  if (!fsckClean) failures.push(`fsck not clean:\n${fsckOut}`);
  if (/INFO: task /.test(err)) failures.push('the kernel reported a hung task');

  const rss = samples.map((s) => s.rssKiB / 1024).filter(Number.isFinite);
  const half = samples.filter((s) => s.tMin >= minutes() / 2);
  const rssSlope = slope(half.map((s) => s.tMin), half.map((s) => s.rssKiB / 1024));
  const inUse = (c: Counters) => ({ inodes: c.inodes - c.inodesUnused, dentries: c.dentries - c.dentriesUnused });
  const last = afterSeed.at(-1);
  const summary = {
    fs: a.fs, mb: a.mb, minutes: +minutes().toFixed(2), seeds, ops, bytesWritten: bytes, samples: samples.length,
    rssMiB: { min: +Math.min(...rss).toFixed(1), max: +Math.max(...rss).toFixed(1), slopePerMin: +rssSlope.toFixed(3), bound: a.mb + 150 },
    fds: { baseline: fdBase, max: Math.max(...samples.map((s) => s.fds)), last: samples.at(-1)?.fds },
    counters: {
      baseline: baseline && { ...baseline, inUse: inUse(baseline) },
      afterLastSeed: last && { ...last, inUse: inUse(last) },
      maxInUseAfterSeed: afterSeed.length ? {
        inodes: Math.max(...afterSeed.map((c) => inUse(c).inodes)), dentries: Math.max(...afterSeed.map((c) => inUse(c).dentries)),
      } : undefined,
      maxCachedAfterSeed: afterSeed.length ? { inodes: Math.max(...afterSeed.map((c) => c.inodes)), dentries: Math.max(...afterSeed.map((c) => c.dentries)) } : undefined,
    },
    fsckClean, failures,
  };
  // Slack: the seed directory's dentry and whatever the sampler's own calls hold for a moment.
  const SLACK = 4;
  if (Math.max(...rss) > a.mb + 150) failures.push(`RSS ${Math.max(...rss).toFixed(1)} MiB over mb + 150`);
  if (half.length >= 10 && rssSlope > 1) failures.push(`RSS grows ${rssSlope.toFixed(2)} MiB/min over the second half`);
  if ((summary.fds.last ?? 0) > fdBase + SLACK) failures.push(`descriptors ${summary.fds.last} > baseline ${fdBase}`);
  if (baseline && last) {
    const b = inUse(baseline), l = inUse(last);
    if (l.inodes > b.inodes + SLACK) failures.push(`in-use inodes ${l.inodes} after the last seed > baseline ${b.inodes}`);
    if (l.dentries > b.dentries + SLACK) failures.push(`in-use dentries ${l.dentries} after the last seed > baseline ${b.dentries}`);
  } else failures.push('no counters from the daemon (SIGUSR2)');
  summary.failures = failures;
  const text = JSON.stringify(summary, null, 2);
  process.stdout.write(text + '\n');
  if (a.json) fs.writeFileSync(a.json, text + '\n');
  if (!a.dir) fs.rmSync(work, { recursive: true, force: true });
  return failures.length ? 1 : 0;
}

main().then((c) => { process.exitCode = c; }, (e) => { process.stderr.write(`soak: ${(e as Error).stack ?? e}\n`); process.exitCode = 1; });
