// Reference images and their judges: mke2fs / e2fsck, mkfs.vfat / fsck.vfat, mtools, and
// the host kernel's ext2/3/4 through loop mounts.
//
// These are the independent readers and writers lkl-ts is compared with (DESIGN.md,
// "Testing"). The host kernel has no vfat driver, so FAT images are only ever read and
// written here by mtools. Everything attached or mounted is detached / unmounted again,
// also when the callback throws (see scratch.ts for the exit-time safety net).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run, RunError, type RunResult } from './sh.js';
import { activeLoops, cleanupLoopSync, ensureExitHooks, scratchDir, SCRATCH_PREFIX, usedImages, usedMountpoints, type ActiveLoop } from './scratch.js';

/** Where an image file goes: an explicit path, a file in `dir`, or a new scratch dir. */
export interface ImagePlace {
  /** The image file to create (overwritten if it exists). */
  path?: string;
  /** A directory to create the image in, under a generated name. */
  dir?: string;
}

function imagePath(place: ImagePlace, stem: string): string {
  if (place.path) return place.path;
  const dir = place.dir ?? scratchDir(undefined, 'img');
  return path.join(dir, `${stem}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.img`);
}

function createSparse(file: string, sizeMiB: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, Math.round(sizeMiB * 1024 * 1024));
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------
// ext2/3/4

export type ExtType = 'ext2' | 'ext3' | 'ext4';

export interface ExtImageOptions extends ImagePlace {
  type: ExtType;
  sizeMiB: number;
  /** Bytes: 1024, 2048, 4096. Without it mke2fs picks 1 KiB for images under 512 MiB. */
  blockSize?: number;
  /** Bytes per inode on disk: 128 (no ns times, no in-inode xattrs) or 256 and more. */
  inodeSize?: number;
  /** Number of inodes (-N), for big directories in small images. */
  inodes?: number;
  /** The -O list: 'inline_data', '^64bit', '^extent', '^metadata_csum', ... */
  features?: string[];
  /** Populate from this directory (mke2fs -d). See NOTES.md for what that loses. */
  fromDir?: string;
  label?: string;
  /** Filesystem UUID (-U), for reproducible images. */
  uuid?: string;
  /** -E extended options, e.g. ['hash_seed=...', 'root_owner=0:0']. */
  extended?: string[];
  /** Anything else for mke2fs, placed before the image path. */
  extra?: string[];
}

/** Create an ext2/3/4 image with mke2fs; returns its path. */
export async function makeExtImage(opts: ExtImageOptions): Promise<string> {
  const img = imagePath(opts, opts.type);
  createSparse(img, opts.sizeMiB);
  const args = ['-F', '-q', '-t', opts.type];
  if (opts.blockSize) args.push('-b', String(opts.blockSize));
  if (opts.inodeSize) args.push('-I', String(opts.inodeSize));
  if (opts.inodes) args.push('-N', String(opts.inodes));
  if (opts.features?.length) args.push('-O', opts.features.join(','));
  if (opts.fromDir) args.push('-d', opts.fromDir);
  if (opts.label !== undefined) args.push('-L', opts.label);
  if (opts.uuid) args.push('-U', opts.uuid);
  if (opts.extended?.length) args.push('-E', opts.extended.join(','));
  if (opts.extra) args.push(...opts.extra);
  args.push(img);
  await run('mke2fs', args, { timeoutMs: 600_000 });
  return img;
}

export interface FsckResult {
  /** The judge found nothing to fix. */
  clean: boolean;
  code: number | null;
  /** stdout and stderr together. */
  output: string;
}

/**
 * `e2fsck -fn IMG`: forced full check, answering no to every question, so the image is
 * never modified. Exit codes: 0 clean, 4 errors left uncorrected, 8 operational error.
 */
export async function e2fsckClean(img: string, extra: string[] = []): Promise<FsckResult> {
  const r = await run('e2fsck', ['-fn', ...extra, img], { allowFail: true, timeoutMs: 600_000 });
  return { clean: r.code === 0, code: r.code, output: r.stdout + r.stderr };
}

/** The superblock summary (`dumpe2fs -h`) as key → value, e.g. 'Filesystem features'. */
export async function dumpe2fsHeader(img: string): Promise<Map<string, string>> {
  const r = await run('dumpe2fs', ['-h', img]);
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (m) out.set(m[1]!.trim(), m[2]!.trim());
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// FAT

export interface VfatImageOptions extends ImagePlace {
  fat: 12 | 16 | 32;
  sizeMiB: number;
  label?: string;
  /** Sectors per cluster (-s). */
  sectorsPerCluster?: number;
  /** Logical sector size in bytes (-S). */
  sectorSize?: number;
  /** Volume id, 8 hex digits (-i), for reproducible images. */
  volumeId?: string;
  extra?: string[];
}

/**
 * Create a FAT image with mkfs.vfat; returns its path. mkfs.vfat refuses sizes that cannot
 * hold the cluster count the FAT type requires (FAT16 at 8 MiB with default clusters, for
 * example); 1 MiB FAT12, 32 MiB FAT16 and 33 MiB FAT32 are known to work.
 */
export async function makeVfatImage(opts: VfatImageOptions): Promise<string> {
  const img = imagePath(opts, `fat${opts.fat}`);
  createSparse(img, opts.sizeMiB);
  const args = ['-F', String(opts.fat)];
  if (opts.label !== undefined) args.push('-n', opts.label);
  if (opts.sectorsPerCluster) args.push('-s', String(opts.sectorsPerCluster));
  if (opts.sectorSize) args.push('-S', String(opts.sectorSize));
  if (opts.volumeId) args.push('-i', opts.volumeId);
  if (opts.extra) args.push(...opts.extra);
  args.push(img);
  await run('mkfs.vfat', args);
  return img;
}

/**
 * `fsck.vfat -n IMG`: clean means exit 0 and nothing said but the version banner and the
 * summary line ("IMG: N files, A/B clusters"). Any other line is a finding (a change it
 * would make, a dirty bit, differing FATs, ...).
 */
export async function fsckVfatClean(img: string): Promise<FsckResult> {
  const r = await run('fsck.vfat', ['-n', img], { allowFail: true });
  const output = r.stdout + r.stderr;
  const findings = output.split('\n').filter(l => l.trim() !== '' &&
    !/^fsck\.(fat|vfat) \d/.test(l) && !/: \d+ files?, \d+\/\d+ clusters$/.test(l));
  return { clean: r.code === 0 && findings.length === 0, code: r.code, output };
}

// ---------------------------------------------------------------------------------------
// Loop mounts with the host kernel

export interface LoopMountOptions {
  /** Attach the loop device read-only and mount ro: the image file is never written. */
  ro?: boolean;
  /** ext3/4: do not replay the journal (needed for ro mounts of images needing recovery). */
  noload?: boolean;
  /** -t for mount; default: let the kernel probe. */
  type?: string;
  /** More -o options. */
  options?: string[];
  /** Byte offset of the filesystem in the image (a partition). */
  offset?: number;
  /** Byte length of the filesystem (with offset). */
  sizeLimit?: number;
}

/**
 * Attach `img` to a loop device, mount it on a fresh directory, run `fn(dir)`, then always
 * unmount (lazily if it stays busy) and detach, even when `fn` throws.
 */
export async function withLoopMount<T>(img: string, opts: LoopMountOptions, fn: (dir: string) => Promise<T>): Promise<T> {
  ensureExitHooks();
  const mountpoint = fs.mkdtempSync(path.join(os.tmpdir(), `${SCRATCH_PREFIX}mnt-`));
  usedMountpoints.add(mountpoint);
  usedImages.add(path.resolve(img));
  const losetupArgs = ['--find', '--show'];
  if (opts.ro) losetupArgs.push('--read-only');
  if (opts.offset !== undefined) losetupArgs.push('--offset', String(opts.offset));
  if (opts.sizeLimit !== undefined) losetupArgs.push('--sizelimit', String(opts.sizeLimit));
  losetupArgs.push(path.resolve(img));
  let dev: string;
  try {
    dev = (await run('losetup', losetupArgs)).stdout.trim();
  } catch (e) {
    fs.rmdirSync(mountpoint);
    throw e;
  }
  const loop: ActiveLoop = { dev, image: path.resolve(img), mountpoint, mounted: false };
  activeLoops.add(loop);
  let result: T;
  try {
    const o = [opts.ro ? 'ro' : 'rw'];
    if (opts.noload) o.push('noload');
    if (opts.options) o.push(...opts.options);
    await run('mount', [...(opts.type ? ['-t', opts.type] : []), '-o', o.join(','), dev, mountpoint]);
    loop.mounted = true;
    result = await fn(mountpoint);
  } catch (e) {
    await releaseLoop(loop).catch(err => {
      process.stderr.write(`withLoopMount: cleanup after failure also failed: ${String(err)}\n`);
    });
    throw e;
  }
  await releaseLoop(loop);
  return result;
}

async function releaseLoop(loop: ActiveLoop): Promise<void> {
  if (loop.mounted) {
    let last: RunResult | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      last = await run('umount', [loop.mountpoint], { allowFail: true });
      if (last.code === 0) break;
      await new Promise(r => setTimeout(r, 100 * (attempt + 1)));
    }
    if (last?.code !== 0) await run('umount', ['-l', loop.mountpoint], { allowFail: true });
    loop.mounted = false;
  }
  const d = await run('losetup', ['-d', loop.dev], { allowFail: true });
  activeLoops.delete(loop);
  try { fs.rmdirSync(loop.mountpoint); } catch { /* lazily unmounted and still busy */ }
  if (d.code !== 0) {
    // Still attached to our image? Then this is a real leak; otherwise already gone.
    const j = await run('losetup', ['--list', '--noheadings', '--output', 'NAME', '-j', loop.image], { allowFail: true });
    if (j.stdout.split('\n').some(l => l.trim() === loop.dev)) {
      cleanupLoopSync({ ...loop });
      throw new RunError(d);
    }
  }
}

// ---------------------------------------------------------------------------------------
// mtools: the independent FAT reader and writer

/** The environment mtools needs: no geometry check, UTF-8 names, UTC times. */
export const MTOOLS_ENV: Readonly<Record<string, string>> = {
  MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', TZ: 'UTC',
};

/** Run an mtools command (`mdir`, `mcopy`, `mattrib`, `mmd`, ...) on an image. */
export function mtools(cmd: string, args: string[], opts: { allowFail?: boolean; input?: string | Uint8Array } = {}): Promise<RunResult> {
  return run(cmd, args, { env: MTOOLS_ENV, allowFail: opts.allowFail, input: opts.input, timeoutMs: 600_000 });
}

export interface MtoolsEntry {
  /** Path from the root with long names, '/'-separated, no leading slash. */
  path: string;
  type: 'dir' | 'file';
  /** 8.3 name as stored ("LONGNA~1.TXT"); the display case mdir uses for lowercase names. */
  shortName: string;
  /** Long name when the entry has one; else absent (the name is the short name). */
  longName?: string;
  size: number;
  /** Modification time as mdir shows it: 'YYYY-MM-DD HH:MM' (minutes only, local = UTC). */
  mtime: string;
}

export interface MtoolsTree {
  label: string | null;
  entries: MtoolsEntry[];
}

/**
 * The tree of a FAT image as mtools sees it, from one `mdir -/ -a` listing.
 * mtools 4.0.32 knows only the BMP: a name with an emoji (U+1F600) is written with U+F600
 * and read back without it. Keep such names out of FAT round trips through mtools.
 */
export async function mtoolsList(img: string): Promise<MtoolsTree> {
  const r = await mtools('mdir', ['-/', '-a', '-i', img, '::/'], { allowFail: true });
  if (r.code === 0) return parseMdir(r.stdout);
  // mdir -/ fails ("File ::/ not found") on an empty root; the flat listing does not.
  const flat = await mtools('mdir', ['-a', '-i', img, '::/']);
  return parseMdir(flat.stdout);
}

const MDIR_LINE = /^(.{8}) (.{3}) +(<DIR>|\d+) +(\d{4}-\d\d-\d\d) +(\d{1,2}):(\d\d) ?(?: (.*))?$/;

/** Parse `mdir -/ -a` output (exported for tests of the parser). */
export function parseMdir(text: string): MtoolsTree {
  let label: string | null = null;
  let dir: string | null = null;
  const entries: MtoolsEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    let m = /^ Volume in drive .* is (.*)$/.exec(line);
    if (m) { label = m[1]!.trimEnd(); continue; }
    if (/^ Volume in drive .* has no label/.test(line)) continue;
    m = /^Directory for ::(\/.*)$/.exec(line);
    if (m) { dir = m[1]!.replace(/^\/+/, '').replace(/\/+$/, ''); continue; }
    if (dir === null) continue;
    m = MDIR_LINE.exec(line);
    if (!m) continue;
    const base = m[1]!.trimEnd();
    const ext = m[2]!.trimEnd();
    if (base === '.' || base === '..') continue;
    const shortName = ext ? `${base}.${ext}` : base;
    const longName = m[7] !== undefined && m[7] !== '' ? m[7] : undefined;
    const name = longName ?? shortName;
    const e: MtoolsEntry = {
      path: dir ? `${dir}/${name}` : name,
      type: m[3] === '<DIR>' ? 'dir' : 'file',
      shortName,
      size: m[3] === '<DIR>' ? 0 : Number(m[3]),
      mtime: `${m[4]} ${m[5]!.padStart(2, '0')}:${m[6]}`,
    };
    if (longName !== undefined) e.longName = longName;
    entries.push(e);
  }
  return { label, entries };
}

/** Names at the top of the image (long names), from `mdir -b`. */
async function mtoolsTopLevel(img: string): Promise<string[]> {
  const r = await mtools('mdir', ['-a', '-b', '-i', img, '::/'], { allowFail: true });
  if (r.code !== 0) {
    if (/No files|not found/i.test(r.stderr + r.stdout)) return [];
    throw new RunError(r);
  }
  return r.stdout.split('\n').filter(Boolean);
}

/** Copy the whole image out into `destDir` (created if needed), preserving mtimes. */
export async function mtoolsCopyOut(img: string, destDir: string): Promise<void> {
  fs.mkdirSync(destDir, { recursive: true });
  if ((await mtoolsTopLevel(img)).length === 0) return;
  await mtools('mcopy', ['-s', '-m', '-n', '-i', img, '::/*', destDir]);
}

/**
 * Copy the contents of `srcDir` (not the dir itself) into the image at `dest` (default the
 * root), recursively, preserving mtimes. `clash` is mcopy's -D answer to a long-name clash.
 */
export async function mtoolsCopyIn(img: string, srcDir: string, opts: { dest?: string; clash?: string } = {}): Promise<void> {
  const names = fs.readdirSync(srcDir).sort();
  if (names.length === 0) return;
  const dest = opts.dest ?? '::/';
  await mtools('mcopy', ['-s', '-m', '-D', opts.clash ?? 'o', '-i', img, ...names.map(n => path.join(srcDir, n)), dest]);
}

/** One file's bytes out of the image (`mcopy ... -`). */
export async function mtoolsReadFile(img: string, file: string): Promise<Buffer> {
  const p = file.startsWith('::') ? file : `::/${file.replace(/^\/+/, '')}`;
  const r = await mtools('mcopy', ['-n', '-i', img, p, '-']);
  return r.stdoutBuf;
}
