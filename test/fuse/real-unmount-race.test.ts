/*
 * The daemon exits promptly once its mount is gone, however the unmount meets it (kernel
 * transport, the real kernel):
 *  - fusermount -u a few milliseconds after the mount shows in mountinfo, while the daemon
 *    is still confirming its mount (mount(8) not yet exited): once lost its 'unmounted'
 *    and waited for a signal forever, or failed with status 1;
 *  - fusermount -u while other processes stat, create, remove and list files on it;
 *  - a lazy unmount (fusermount -uz) that leaves a user behind, with either reader (the
 *    worker reader's thread blocked in read(2) once kept the process from exiting).
 *  - and, made certain, a mount(8) that unmounts the new mount before it exits.
 * Each run: exit status 0 within EXIT_MS, no mount and no daemon left, e2fsck -fn clean.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { e2fsckClean, makeExtImage } from '../lib/images.js';
import { which } from '../lib/sh.js';
import { BIN, box, daemonsFor, fuseSkip, isMounted, realEnv, sleep, transportSkip, waitFor, within } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'e2fsck', 'bash', 'sleep', 'setpriv']) || transportSkip('kernel');
/** How long the daemon may take to exit once its mount is gone. */
const EXIT_MS = 5000;
/** Early unmounts: each one lands in the window about one time in ten without the fix. */
const RUNS = Number(process.env.LKLFUSE_TEST_RACE_RUNS) || 8;

const mountedNow = (mnt: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);

interface Run { child: ChildProcess; exited: Promise<number | string | null>; stderr(): string }

/** lklfuse -f over the kernel transport, returned as soon as the mount shows (polled every ms). */
async function mountFast(image: string, mnt: string, opts: string): Promise<Run> {
  const child = spawn(process.execPath, [BIN, image, mnt, '-f', '-o', `transport=kernel,${opts}`], { env: realEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d; });
  const exited = new Promise<number | string | null>((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  const deadline = Date.now() + 30000;
  while (!mountedNow(mnt)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`lklfuse exited ${child.exitCode ?? child.signalCode}: ${err}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`no mount within 30 s: ${err}`); }
    await sleep(1);
  }
  return { child, exited, stderr: () => err };
}

/** The daemon exits 0 within EXIT_MS, leaving no mount and no process; else it is killed. */
async function exitsPromptly(t: Test, r: Run, mnt: string, what: string, limit = EXIT_MS): Promise<void> {
  const t0 = Date.now();
  const ex = await within(r.exited, limit);
  const ms = Date.now() - t0;
  t.ok(ex.ok && ex.value === 0, `${what}: the daemon exits 0 within ${limit} ms (${ex.ok ? `${String(ex.value)} after ${ms} ms` : 'still running'})`, { stderr: r.stderr() });
  if (!ex.ok) {
    r.child.kill('SIGKILL');
    await r.exited;
  }
  t.notOk(await isMounted(mnt), `${what}: no mount left`);
  t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 2000), `${what}: no process left`);
}

async function image(t: Test, label: string): Promise<{ img: string; mnt: string }> {
  const b = box(t, label);
  const src = b.path('src');
  fs.mkdirSync(path.join(src, 'd'), { recursive: true });
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, 'd', `f${i}`), `file ${i}\n`.repeat(100));
  const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, fromDir: src, path: b.path('ext4.img') });
  return { img, mnt: b.mnt() };
}

t.test('mount(8) succeeds, but the mount is gone before the daemon confirms it', { skip: skip || (which('mount') === null && 'no mount') }, async (t) => {
  // The race below, made certain: a mount(8) that unmounts what it mounted before exiting.
  const { img, mnt } = await image(t, 'race-gone');
  const bin = path.join(path.dirname(img), 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'mount'), [
    '#!/bin/sh',
    `${which('mount')} "$@" || exit $?`,
    'case "$*" in *fd=3*) for a; do last=$a; done; umount "$last" || exit 9; : > "$0.done";; esac',
    'exit 0', '',
  ].join('\n'), { mode: 0o755 });
  const child = spawn(process.execPath, [BIN, img, mnt, '-f', '-o', 'transport=kernel,ro'],
    { env: realEnv({ PATH: `${bin}:${process.env.PATH ?? ''}` }), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d; });
  const exited = new Promise<number | string | null>((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  await exitsPromptly(t, { child, exited, stderr: () => err }, mnt, 'unmounted inside mount(8)', 30000);
  t.ok(fs.existsSync(path.join(bin, 'mount.done')), 'the wrapper mounted and unmounted');
  t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn clean');
});

t.test('fusermount -u right after the mount appears (ro, no allow_other, a refused cat)', { skip }, async (t) => {
  const { img, mnt } = await image(t, 'race-early');
  for (let i = 0; i < RUNS; i++) {
    const r = await mountFast(img, mnt, 'ro');
    // 0-7 ms: the daemon still waiting for mount(8), reading mountinfo, or just done.
    const until = Date.now() + (i % 8);
    while (Date.now() < until) { /* spin: a timer would wait 1 ms at least */ }
    // Refused by the host kernel without a request (no allow_other), as in real-posix.
    spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'cat', path.join(mnt, 'd', 'f0')], { stdio: 'ignore' });
    t.equal(spawnSync('fusermount', ['-u', mnt]).status, 0, `run ${i}: fusermount -u`);
    await exitsPromptly(t, r, mnt, `run ${i}`);
  }
  t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn clean');
});

t.test('fusermount -u while other processes use the mount (rw)', { skip }, async (t) => {
  const { img, mnt } = await image(t, 'race-busy');
  for (let i = 0; i < 2; i++) {
    const r = await mountFast(img, mnt, 'rw');
    const loops: ChildProcess[] = [];
    for (let k = 0; k < 3; k++) {
      const d = path.join(mnt, 'd');
      const script = `while :; do stat ${d}/f$((RANDOM%20)) >/dev/null 2>&1; echo $RANDOM > ${d}/n${k}_$((RANDOM%10)) 2>/dev/null; ` +
        `rm -f ${d}/n${k}_$((RANDOM%10)) 2>/dev/null; ls -l ${d} >/dev/null 2>&1; cat ${d}/f$((RANDOM%20)) >/dev/null 2>&1; done`;
      loops.push(spawn('bash', ['-c', script], { stdio: 'ignore' }));
    }
    try {
      await sleep(300 + 200 * i);
      // A file open at that moment makes the unmount EBUSY: try again until it goes.
      let u = 1;
      const deadline = Date.now() + 10000;
      while (u !== 0 && Date.now() < deadline) {
        u = spawnSync('fusermount', ['-u', mnt], { stdio: 'ignore' }).status ?? 1;
        if (u !== 0) await sleep(3);
      }
      t.equal(u, 0, `run ${i}: fusermount -u with requests in flight`);
      await exitsPromptly(t, r, mnt, `run ${i}`);
    } finally {
      for (const l of loops) l.kill('SIGKILL');
    }
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, `run ${i}: e2fsck -fn clean`, { output: ck.output });
  }
});

t.test('fusermount -uz with a user left inside, either reader', { skip }, async (t) => {
  const { img, mnt } = await image(t, 'race-lazy');
  for (const reader of ['poll', 'worker']) {
    const r = await mountFast(img, mnt, `rw,reader=${reader}`);
    const holder = spawn('sleep', ['30'], { cwd: path.join(mnt, 'd'), stdio: 'ignore' });
    try {
      await sleep(200);
      t.equal(spawnSync('fusermount', ['-u', '-z', mnt]).status, 0, `${reader}: fusermount -uz`);
      await exitsPromptly(t, r, mnt, `${reader}, a user left inside`);
      let cwd: string;
      try { fs.readdirSync(`/proc/${holder.pid}/cwd`); cwd = 'readable'; } catch (e) { cwd = (e as NodeJS.ErrnoException).code ?? String(e); }
      t.match(cwd, /^(ENOTCONN|ECONNABORTED)$/, `${reader}: the user left behind finds the connection gone`);
    } finally {
      holder.kill('SIGKILL');
    }
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, `${reader}: e2fsck -fn clean`, { output: ck.output });
  }
});
