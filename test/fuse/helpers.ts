/*
 * Helpers for lklfuse's mount tests: scratch directories, running bin/lklfuse against the
 * fake kernel (test/fuse/fake-kernel.ts), waiting for mounts, and teardown that always
 * unmounts and kills what a test left behind.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMountinfo } from '../../lib/fuse/mountinfo.js';

export const BIN = fileURLToPath(new URL('../../bin/lklfuse.js', import.meta.url));

export interface Scratch {
  dir: string;
  /** Host directory the fake kernel serves. */
  back: string;
  mnt: string;
  image: string;
  stats: string;
  env: NodeJS.ProcessEnv;
}

export const hasMke2fs = spawnSync('mke2fs', ['-V']).status === 0;

/** A scratch directory with an ext4 image (mke2fs, or a minimal superblock), a backing dir and a mountpoint. */
export function scratch(name: string): Scratch {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lklfuse-${name}-`));
  const s: Scratch = {
    dir, back: path.join(dir, 'back'), mnt: path.join(dir, 'mnt'), image: path.join(dir, 'disk.img'),
    stats: path.join(dir, 'stats.json'), env: {},
  };
  fs.mkdirSync(s.back);
  fs.mkdirSync(s.mnt);
  makeExtImage(s.image);
  s.env = { ...process.env, LKLFUSE_TEST_FAKE_KERNEL: s.back, LKLFUSE_TEST_FAKE_STATS: s.stats, DEBUG: '' };
  return s;
}

export function makeExtImage(file: string, type = 'ext4'): void {
  if (hasMke2fs) {
    execFileSync('mke2fs', ['-q', '-F', '-t', type, file, '4M'], { stdio: 'ignore' });
    return;
  }
  const b = Buffer.alloc(4 << 20);
  const sb = 1024;
  b.writeUInt32LE(1024, sb + 0x00); // s_inodes_count
  b.writeUInt32LE(4096, sb + 0x04); // s_blocks_count_lo
  b.writeUInt32LE(8192, sb + 0x20); // s_blocks_per_group
  b.writeUInt32LE(1024, sb + 0x28); // s_inodes_per_group
  b.writeUInt16LE(0xef53, sb + 0x38);
  b.writeUInt32LE(1, sb + 0x4c); // s_rev_level
  if (type === 'ext4') b.writeUInt32LE(0x40 | 0x2, sb + 0x60); // extent, filetype
  fs.writeFileSync(file, b);
}

export interface RunResult { status: number | null; stdout: string; stderr: string }

/** Runs lklfuse to completion (background mode returns once mounted). */
export function run(s: Scratch, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: { ...s.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d; });
    c.stderr.on('data', (d: Buffer) => { stderr += d; });
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Starts lklfuse in the foreground (-f) and waits until the mount is live. */
export async function startForeground(s: Scratch, args: string[] = []): Promise<ChildProcess> {
  const c = spawn(process.execPath, [BIN, s.image, s.mnt, '-f', ...args], { env: s.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  c.stderr!.on('data', (d: Buffer) => { stderr += d; });
  const deadline = Date.now() + 15000;
  while (!(await isMounted(s.mnt))) {
    if (c.exitCode !== null) throw new Error(`lklfuse exited ${c.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`mount did not appear: ${stderr}`);
    await sleep(50);
  }
  return c;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function isMounted(mnt: string): Promise<boolean> {
  return (await readMountinfo()).some((m) => m.mountPoint === mnt);
}

/** Pids of lklfuse processes whose command line mentions `needle` (e.g. the mountpoint). */
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

/** Waits until `cond` holds (polling), or fails after `ms`. */
export async function waitFor(cond: () => Promise<boolean> | boolean, ms = 10000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** Unmounts and kills whatever a test left behind, then removes the scratch directory. */
export async function teardown(s: Scratch): Promise<void> {
  for (const m of [s.mnt, path.join(s.dir, 'mnt2')]) {
    if (await isMounted(m)) {
      if (spawnSync('fusermount', ['-u', m]).status !== 0) spawnSync('umount', ['-l', m]);
    }
  }
  for (const pid of [...daemonsFor(s.mnt), ...daemonsFor(s.image)]) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  await waitFor(() => daemonsFor(s.mnt).length === 0, 3000);
  fs.rmSync(s.dir, { recursive: true, force: true });
}

export function readStats(s: Scratch): { writes: Record<string, number>; calls: Record<string, number>; longNames: number } {
  return JSON.parse(fs.readFileSync(s.stats, 'utf8'));
}
