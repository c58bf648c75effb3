// Scratch directories and the bookkeeping that keeps the host clean after tests.
//
// Every helper that creates something outside the process (temp dirs, loop devices,
// mounts) registers it here, so it is removed in the test's teardown and, as a last
// resort, when the process exits or is told to stop (tap's timeout sends SIGTERM).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runSync } from './sh.js';

/** The part of a tap Test this library needs; a tap `t` fits. */
export interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** Prefix of every scratch path the library creates, to find leftovers. */
export const SCRATCH_PREFIX = 'lkl-ts-test-';

const scratchDirs = new Set<string>();

/** A loop device attached and (perhaps) mounted by withLoopMount, not yet cleaned up. */
export interface ActiveLoop {
  dev: string;
  image: string;
  mountpoint: string;
  mounted: boolean;
}
export const activeLoops = new Set<ActiveLoop>();
/** Every image and mount point this process handed to withLoopMount, for leftovers(). */
export const usedImages = new Set<string>();
export const usedMountpoints = new Set<string>();

/**
 * A new, empty, unique directory under os.tmpdir(). With `t`, it is removed (recursively) in
 * t's teardown; in any case it is removed when the process exits.
 */
export function scratchDir(t?: Teardownable, label = 'scratch'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${SCRATCH_PREFIX}${label}-`));
  scratchDirs.add(dir);
  installExitHooks();
  t?.teardown(() => removeScratch(dir));
  return dir;
}

/** Remove a scratch dir now, after making sure nothing of ours is still mounted under it. */
export function removeScratch(dir: string): void {
  for (const l of activeLoops) {
    if (isUnder(l.mountpoint, dir) || isUnder(l.image, dir)) cleanupLoopSync(l);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  scratchDirs.delete(dir);
}

export function isUnder(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Synchronous best-effort cleanup: lazy unmount, detach. For exit paths only. */
export function cleanupLoopSync(l: ActiveLoop): void {
  if (l.mounted) {
    if (runSync('umount', [l.mountpoint]).code !== 0) runSync('umount', ['-l', l.mountpoint]);
    l.mounted = false;
  }
  runSync('losetup', ['-d', l.dev]);
  try { fs.rmdirSync(l.mountpoint); } catch { /* gone, or lazily unmounted and still busy */ }
  activeLoops.delete(l);
}

let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const cleanAll = () => {
    for (const l of [...activeLoops]) cleanupLoopSync(l);
    for (const d of [...scratchDirs]) {
      try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
      scratchDirs.delete(d);
    }
  };
  process.on('exit', cleanAll);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSig = () => {
      cleanAll();
      process.removeListener(sig, onSig);
      // Others listening (tap does) decide what happens next; if nobody else is, die as
      // the signal would have made us die.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSig);
  }
}

/** Exposed for withLoopMount, which registers loops without a scratch dir. */
export function ensureExitHooks(): void {
  installExitHooks();
}

/**
 * Loop devices currently attached (by anyone) whose backing file lies under `dir`, or whose
 * backing file name contains the library's scratch prefix when no dir is given. Used by
 * tests to verify that teardown left nothing behind.
 */
export function loopDevicesUnder(dir?: string): { dev: string; backing: string }[] {
  const r = runSync('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE']);
  if (r.code !== 0) return [];
  const out: { dev: string; backing: string }[] = [];
  for (const line of r.output.split('\n')) {
    const m = /^(\S+) (.*)$/.exec(line.trim());
    if (!m) continue;
    // --raw escapes unusual characters as \xHH.
    const backing = unescapeBytes(m[2]!, /\\x([0-9a-fA-F]{2})/g, 16);
    const deleted = backing.replace(/ \(deleted\)$/, '');
    if (dir ? isUnder(deleted, dir) : deleted.includes(SCRATCH_PREFIX)) out.push({ dev: m[1]!, backing });
  }
  return out;
}

/** Mounts (by anyone) whose mount point lies under `dir` or carries the scratch prefix. */
export function mountsUnder(dir?: string): string[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = unescapeBytes(f[4]!, /\\([0-7]{3})/g, 8);
    if (dir ? isUnder(mp, dir) : mp.includes(SCRATCH_PREFIX)) out.push(mp);
  }
  return out;
}

/**
 * What this process left behind: loop devices on images it attached (or under its scratch
 * dirs) and mounts on mount points it created. Empty lists after a test = clean teardown.
 */
export function leftovers(): { loops: { dev: string; backing: string }[]; mounts: string[]; active: number } {
  const loops = loopDevicesUnder('/').filter(l => {
    const b = l.backing.replace(/ \(deleted\)$/, '');
    return usedImages.has(b) || [...scratchDirs].some(d => isUnder(b, d));
  });
  const mounts = mountsUnder('/').filter(m => usedMountpoints.has(m));
  return { loops, mounts, active: activeLoops.size };
}

/** Undo a tool's byte escapes (\xHH, \ooo) in text that is otherwise UTF-8. */
function unescapeBytes(s: string, re: RegExp, radix: number): string {
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of s.matchAll(re)) {
    parts.push(Buffer.from(s.slice(last, m.index), 'utf8'), Buffer.from([parseInt(m[1]!, radix)]));
    last = m.index! + m[0].length;
  }
  parts.push(Buffer.from(s.slice(last), 'utf8'));
  return Buffer.concat(parts).toString('utf8');
}
