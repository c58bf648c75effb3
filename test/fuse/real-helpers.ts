/*
 * Helpers for lklfuse's acceptance tests against the REAL lkl-ts kernel (no fake): running
 * the lklfuse of this very build (resolved from import.meta.url), in the background or in
 * the foreground as a child whose exit status we see, and a teardown that always unmounts
 * (fusermount -u, then umount -l), kills what is left and removes the scratch directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Test } from 'tap';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMountinfo } from '../../lib/fuse/mountinfo.js';
import { which } from '../lib/sh.js';
import { DAEMON_NODE_FLAGS } from '../../lib/fuse/node-flags.js';

/** bin/lklfuse.js of the build this test file belongs to. */
export const BIN = fileURLToPath(new URL('../../bin/lklfuse.js', import.meta.url));

/** The FUSE transports every real-mount test runs over (lib/fuse/transport.ts). */
export const TRANSPORTS = ['fuse-native', 'kernel'] as const;
export type Transport = (typeof TRANSPORTS)[number];
let currentTransport: Transport | undefined;

/** Why a transport cannot run here, or false. */
export function transportSkip(tr: Transport): string | false {
  if (tr !== 'kernel') return false;
  if (process.getuid?.() !== 0) return 'the kernel transport mounts /dev/fuse itself: root only';
  try { fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK); } catch { return 'no usable /dev/fuse'; }
  return false;
}

/**
 * Registers `body`'s tests once per transport, each group as a subtest "transport=T"; while
 * a group runs, lklfuse() and startForeground() pass -o transport=T.
 */
export function overTransports(t: Test, body: (t: Test, transport: Transport) => void): void {
  for (const tr of TRANSPORTS) {
    t.test(`transport=${tr}`, { skip: transportSkip(tr) }, async (t) => {
      currentTransport = tr;
      t.teardown(() => { currentTransport = undefined; });
      body(t, tr);
    });
  }
}

/** The -o option naming the transport of the running group ([] outside overTransports). */
export const transportArgs = (): string[] => currentTransport ? ['-o', `transport=${currentTransport}`] : [];
export const currentTransportName = () => currentTransport;

/** The environment for lklfuse: no fake kernel, no debug output, no inherited ready fd. */
export function realEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['LKLFUSE_TEST_FAKE_KERNEL', 'LKLFUSE_TEST_FAKE_STATS', 'LKLFUSE_READY_FD', 'DEBUG', 'NOTIFY_SOCKET']) {
    if (!(k in extra)) delete env[k];
  }
  return env;
}

/** Why FUSE tests cannot run here (the machine lacks /dev/fuse or fusermount), or false. */
export function fuseSkip(tools: string[] = []): string | false {
  const why: string[] = [];
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    why.push('no usable /dev/fuse (modprobe fuse)');
  }
  const missing = ['fusermount', ...tools].filter((x) => which(x) === null);
  if (missing.length) why.push(`missing ${missing.join(', ')}`);
  return why.length ? why.join('; ') : false;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function isMounted(mnt: string): Promise<boolean> {
  return (await readMountinfo()).some((m) => m.mountPoint === mnt);
}

/** Waits until `cond` holds (polling every 50 ms), or gives up after `ms`. */
export async function waitFor(cond: () => Promise<boolean> | boolean, ms = 10000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** Pids of lklfuse processes whose command line has `needle` as an argument. */
export function daemonsFor(needle: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('lklfuse.js')) && cmd.includes(needle)) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** Processes (any program) holding `file` open: e.g. a leftover flock helper on the image. */
export function holdersOf(file: string): number[] {
  const out: number[] = [];
  const want = path.resolve(file);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let fds: string[];
    try { fds = fs.readdirSync(`/proc/${d}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${d}/fd/${fd}`) === want) { out.push(Number(d)); break; }
      } catch { /* gone */ }
    }
  }
  return out;
}

export function sha256File(f: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
}

/**
 * How the tests start node for lklfuse: through `env -u NODE_OPTIONS`, because tap's
 * @tapjs/processinfo puts its --import into the NODE_OPTIONS of every child it sees spawned
 * (whatever env the spawn gives), which adds ~50-80 MiB and start-up time to each daemon.
 * The daemon then runs as a user runs it (the `lklfuse` command's #! line gives node
 * DAEMON_NODE_FLAGS); env execs node, so the pid is the daemon's.
 */
export const NODE_CMD = ['env', ['-u', 'NODE_OPTIONS', process.execPath, ...DAEMON_NODE_FLAGS]] as const;

export interface RunResult { status: number | null; stdout: string; stderr: string }

/** Runs lklfuse to completion (background mode returns once the mount is live). */
export function lklfuse(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const c = spawn(NODE_CMD[0], [...NODE_CMD[1], BIN, ...args, ...transportArgs()], { env: realEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d; });
    c.stderr.on('data', (d: Buffer) => { stderr += d; });
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

export interface Daemon {
  child: ChildProcess;
  /** Resolves with the exit status (null if killed by a signal). */
  exited: Promise<number | null>;
  stderr(): string;
}

/** Starts lklfuse in the foreground (-f) as our child and waits until the mount is live. */
export async function startForeground(image: string, mnt: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  const child = spawn(NODE_CMD[0], [...NODE_CMD[1], BIN, image, mnt, '-f', ...args, ...transportArgs()], { env: realEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const deadline = Date.now() + 30000;
  while (!(await isMounted(mnt))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`lklfuse exited ${child.exitCode ?? child.signalCode}: ${err}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the mount did not appear within 30 s: ${err}`);
    }
    await sleep(50);
  }
  return { child, exited, stderr: () => err };
}

/**
 * fusermount -u, tried again for up to `ms` while it says the mount is busy: another
 * process of the machine (CI runs test files in parallel; a test's own children exiting)
 * may hold a file of the mount for a moment, and a user would try again.
 */
export async function fusermountU(mnt: string, ms = 30_000): Promise<{ status: number | null; stderr: string }> {
  let um = spawnSync('fusermount', ['-u', mnt], { encoding: 'utf8' });
  for (const t0 = Date.now(); um.status !== 0 && /busy/i.test(um.stderr) && Date.now() - t0 < ms;) {
    await sleep(500);
    um = spawnSync('fusermount', ['-u', mnt], { encoding: 'utf8' });
  }
  return { status: um.status, stderr: um.stderr };
}

/** umount (as root), then the daemon exits 0 within 20 s and neither mount nor daemon is left. */
export async function stopDaemon(t: Test, mnt: string, d: { exited: Promise<number | null> }): Promise<void> {
  t.equal(spawnSync('umount', [mnt]).status, 0, 'umount exits 0');
  const r = await within(d.exited, 20000);
  t.ok(r.ok && r.value === 0, 'the daemon exits 0 after umount');
  t.notOk(await isMounted(mnt), 'no mount left');
  t.same(daemonsFor(mnt), [], 'no daemon left');
}

/** Resolves true once `p` settles within `ms`, false otherwise. */
export async function within<T>(p: Promise<T>, ms: number): Promise<{ ok: true; value: T } | { ok: false }> {
  let timer: NodeJS.Timeout | undefined;
  const to = new Promise<{ ok: false }>((r) => { timer = setTimeout(() => r({ ok: false }), ms); });
  try {
    return await Promise.race([p.then((value) => ({ ok: true as const, value })), to]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Unmounts `mnt` the polite way and waits for its daemon to exit; falls back to a lazy
 * umount and SIGKILL. For teardown: never throws.
 */
export async function forceCleanup(mnt: string, images: string[] = []): Promise<void> {
  try {
    if (await isMounted(mnt)) {
      spawnSync('fusermount', ['-u', mnt], { stdio: 'ignore' });
      await waitFor(async () => !(await isMounted(mnt)) && daemonsFor(mnt).length === 0, 20000);
      if (await isMounted(mnt)) {
        spawnSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore' });
        if (await isMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
      }
    }
    for (const pid of [...daemonsFor(mnt), ...images.flatMap((i) => daemonsFor(i))]) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await waitFor(() => daemonsFor(mnt).length === 0, 5000);
  } catch (e) {
    process.stderr.write(`forceCleanup(${mnt}): ${String(e)}\n`);
  }
}

/** A scratch directory for one test; its mountpoints and images are cleaned up in t's teardown. */
export interface Box {
  dir: string;
  /** A new empty directory in the box, registered for unmounting in teardown. */
  mnt(name?: string): string;
  path(...p: string[]): string;
}

export function box(t: { teardown(fn: () => unknown): void }, label: string): Box {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lkl-ts-test-fusereal-${label}-`));
  fs.chmodSync(dir, 0o755);
  const mnts: string[] = [];
  t.teardown(async () => {
    for (const m of mnts) await forceCleanup(m, []);
    for (const pid of daemonsFor(dir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    // Daemons are named by their image path as well.
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        if (cmd.some((a) => a.endsWith('lklfuse.js')) && cmd.some((a) => a.startsWith(dir + '/'))) process.kill(Number(d), 'SIGKILL');
      } catch { /* gone */ }
    }
    const still = (await readMountinfo()).filter((m) => m.mountPoint.startsWith(dir + '/'));
    if (still.length === 0) fs.rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`box ${dir}: still mounted: ${still.map((m) => m.mountPoint).join(', ')}; left in place\n`);
  });
  return {
    dir,
    mnt(name = 'mnt') {
      const m = path.join(dir, name);
      fs.mkdirSync(m, { recursive: true });
      mnts.push(m);
      return m;
    },
    path: (...p) => path.join(dir, ...p),
  };
}

/** The FAT dirty bit: bit 0 of the boot sector's state byte (0x41 on FAT32, 0x25 on FAT12/16). */
export function fatDirtyBit(img: string): boolean {
  const b = Buffer.alloc(512);
  const fd = fs.openSync(img, 'r');
  try { fs.readSync(fd, b, 0, 512, 0); } finally { fs.closeSync(fd); }
  const fat32 = b.readUInt16LE(22) === 0;
  return (b[fat32 ? 0x41 : 0x25]! & 1) !== 0;
}

/** Runs `argv` as uid/gid 65534 with no supplementary groups; returns status and stderr. */
export function asNobody(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', ...argv], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
