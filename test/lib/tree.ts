// The differential test tree: a declarative spec, and a builder that writes it through the
// HOST kernel (node:fs plus a few tools: touch for nanosecond times, mknod, setfattr,
// setfacl), so the result is what Linux itself makes of the spec.
//
// A spec is plain data: a test can build the same tree on a loop-mounted ext image, on
// tmpfs, or (later) through lkl-ts, and compare manifests (manifest.ts). standardTree()
// produces the full tree with switches to leave out what a filesystem cannot hold.

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { run } from './sh.js';

// ---------------------------------------------------------------------------------------
// Seeded pseudo-random data

/**
 * Deterministic bytes from a 32-bit seed (xorshift32, each word little-endian). A shorter
 * stream of a seed is a prefix of a longer one.
 */
export function prngBytes(seed: number, length: number): Buffer {
  const words = Math.ceil(length / 4);
  const buf = Buffer.allocUnsafe(words * 4);
  let x = (seed >>> 0) || 0x9e3779b9;
  for (let i = 0; i < words; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf.writeUInt32LE(x, i << 2);
  }
  return buf.subarray(0, length);
}

/** FNV-1a of a string, the default seed of a file's content (so each file differs). */
export function seedOf(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

// ---------------------------------------------------------------------------------------
// The spec

/** A value for an xattr: text (UTF-8), raw bytes, or `size` seeded pseudo-random bytes. */
export type XattrValue = string | Uint8Array | { size: number; seed?: number };

export interface Attrs {
  /** Permission bits including setuid/setgid/sticky (07777). Default 0644 / 0755 (dirs). */
  mode?: number;
  /** Leave the mode as creation made it (umask, inherited default ACL): no chmod. */
  keepCreatedMode?: boolean;
  uid?: number;
  gid?: number;
  /** Nanoseconds since the epoch (may be negative). Default: the spec's defaultTimeNs. */
  mtimeNs?: bigint;
  atimeNs?: bigint;
  /** name → value, any namespace the target accepts (user., trusted., security.). */
  xattrs?: Record<string, XattrValue>;
  /** POSIX access ACL for `setfacl -m`, e.g. 'u:1000:rw-,g:1000:r--,m::rw-'. */
  acl?: string;
}

/** Content of a regular file. */
export type Content =
  | { kind: 'random'; size: number; seed?: number }
  | { kind: 'text'; text: string }
  | { kind: 'zero'; size: number }
  /** Written only where `extents` say, then truncated to `size`: the rest are holes. */
  | { kind: 'sparse'; size: number; extents: { offset: number; length: number; seed?: number }[] };

export type NodeSpec =
  | ({ kind: 'dir'; path: string; /** `setfacl -d -m`, set before children are made */ defaultAcl?: string } & Attrs)
  | ({ kind: 'file'; path: string; content?: Content } & Attrs)
  | ({ kind: 'symlink'; path: string; target: string } & Omit<Attrs, 'mode' | 'keepCreatedMode' | 'acl'>)
  /** Another name for the inode at `target` (a path in the tree), made after it. */
  | { kind: 'hardlink'; path: string; target: string }
  | ({ kind: 'fifo' | 'socket'; path: string } & Attrs)
  | ({ kind: 'chr' | 'blk'; path: string; major: number; minor: number } & Attrs)
  /** `count` empty files in the directory `path` (created if missing), names of varied length. */
  | ({ kind: 'many'; path: string; count: number } & Pick<Attrs, 'mode'>);

export interface TreeSpec {
  nodes: NodeSpec[];
  /** Time (ns, whole seconds recommended) given to every node without explicit times. */
  defaultTimeNs?: bigint;
}

/** The names `many` creates: zero-padded index plus 0..39 extra characters. */
export function manyNames(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`e${String(i).padStart(6, '0')}${'abcdefghij'.repeat(4).slice(0, i % 40)}`);
  return out;
}

// ---------------------------------------------------------------------------------------
// The standard tree

export interface StandardTreeOptions {
  /** Entries of the big directory; 0 = none. Default 50,000 (use ~2,000 in quick tests). */
  bigDirCount?: number;
  /** Size of the large pseudo-random file in bytes. Default 3 MiB + 17. */
  largeFileSize?: number;
  /** Sparse files with holes (small ones). Default true. */
  sparse?: boolean;
  /** Size of the sparse file past 4 GiB; 0 = leave it out. Default 4 GiB + 12345 (each
   * manifest hashes it whole: ~3 s of sha256 over zeros here). */
  hugeSparseSize?: number;
  /** Nanosecond timestamps (needs inodes of 256 bytes on ext). Default true. */
  nsTimes?: boolean;
  /** Times after 2038-01-19 (ext: 256-byte inodes; FAT up to 2107). Default true. */
  post2038?: boolean;
  /** Times before 1970 (negative). Default true. */
  pre1970?: boolean;
  symlinks?: boolean;
  /** Longest slow symlink target in bytes (ext: < block size). Default 4000. */
  slowSymlinkMax?: number;
  hardlinks?: boolean;
  fifos?: boolean;
  sockets?: boolean;
  devices?: boolean;
  /** user./trusted./security. xattrs. Default true. */
  xattrs?: boolean;
  /** One ~3000-byte xattr value (needs a block of 4 KiB). Default true. */
  largeXattr?: boolean;
  /** trusted.* and security.* as well as user.*. Default true. */
  privilegedXattrs?: boolean;
  acls?: boolean;
  /** Owners other than root. Default true. */
  owners?: boolean;
  /** setuid/setgid/sticky and unusual modes. Default true. */
  specialModes?: boolean;
  /** é, 日本語, emoji. Default true. */
  utf8Names?: boolean;
  /** Names outside the BMP (emoji; UTF-16 surrogate pairs on FAT). Default true. */
  nonBmpNames?: boolean;
  /** Non-ASCII names that fit 8.3 ('café.txt', 'ü'): FAT keeps them as OEM short names. Default true. */
  shortNonAscii?: boolean;
  /** Names of 255 bytes. Default true. */
  longNames?: boolean;
  /** Depth of the directory chain. Default 30. */
  depth?: number;
}

/**
 * What FAT can hold: dirs and regular files, no owners/modes/xattrs, times from 1980. Also
 * no emoji names (mtools, the FAT judge, cannot write or read names outside the BMP) and
 * no non-ASCII names that fit 8.3 (mtools stores 'café.txt' as the short name CAFÉ.TXT with
 * case flags, lists it as café.txt but copies it out as cafÉ.txt). On FAT32 also set
 * `longNames: false`: mtools sometimes fails to write a 255-character name there ("No
 * directory slots", depending on the name's position in the directory).
 */
export const FAT_PROFILE: Readonly<StandardTreeOptions> = {
  nonBmpNames: false, shortNonAscii: false, hugeSparseSize: 0, pre1970: false, symlinks: false, fifos: false, sockets: false, devices: false,
  xattrs: false, acls: false, owners: false, specialModes: false, bigDirCount: 2000,
};

/** ext2/ext3 with 128-byte inodes: no nanoseconds, 32-bit times. */
export const EXT_128_PROFILE: Readonly<StandardTreeOptions> = { nsTimes: false, post2038: false };

/** 1 KiB blocks: xattr values and symlink targets must fit 1 KiB. */
export const EXT_1K_PROFILE: Readonly<StandardTreeOptions> = { largeXattr: false, slowSymlinkMax: 1000 };

export const T2020_NS = 1_577_836_800n * 1_000_000_000n; // 2020-01-01T00:00:00Z

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The full differential tree, minus what `o` switches off. Paths are relative. */
export function standardTree(o: StandardTreeOptions = {}): TreeSpec {
  const on = (v: boolean | undefined) => v !== false;
  const n: NodeSpec[] = [];
  const dir = (p: string, extra: Partial<Attrs> & { defaultAcl?: string } = {}) => n.push({ kind: 'dir', path: p, ...extra });
  const file = (p: string, content: Content, extra: Partial<Attrs> = {}) => n.push({ kind: 'file', path: p, content, ...extra });

  // Regular files around every size boundary that matters to block mapping.
  dir('sizes');
  for (const size of [0, 1, 59, 60, 61, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 8191, 8192, 12288, 65535, 65536, 65537, 1024 * 1024]) {
    file(`sizes/f${size}`, { kind: 'random', size });
  }
  file('sizes/large', { kind: 'random', size: o.largeFileSize ?? 3 * MiB + 17 });
  file('sizes/zeros', { kind: 'zero', size: 70000 });
  file('sizes/text.txt', { kind: 'text', text: 'hello, world\n' });

  if (on(o.sparse)) {
    dir('sparse');
    file('sparse/holes', { kind: 'sparse', size: MiB + 3, extents: [{ offset: 0, length: 4096 }, { offset: 300_000, length: 5000 }, { offset: 700_001, length: 1 }] });
    file('sparse/leading-hole', { kind: 'sparse', size: 200_000, extents: [{ offset: 150_000, length: 50_000 }] });
    file('sparse/all-hole', { kind: 'sparse', size: 10 * MiB, extents: [] });
  }
  const huge = o.hugeSparseSize ?? 4 * GiB + 12345;
  if (huge > 0) {
    if (!on(o.sparse)) dir('sparse');
    file('sparse/huge', { kind: 'sparse', size: huge, extents: [
      { offset: 0, length: 4096 },
      { offset: 4 * GiB - 2048, length: 4096 }, // across the 4 GiB line
      { offset: Math.max(0, huge - 100), length: 100 },
    ] });
  }

  if (on(o.hardlinks)) {
    dir('links');
    dir('links/other');
    file('links/orig', { kind: 'random', size: 5000 });
    for (const p of ['links/second', 'links/third', 'links/other/fourth']) n.push({ kind: 'hardlink', path: p, target: 'links/orig' });
    file('links/pair-a', { kind: 'text', text: 'pair\n' });
    n.push({ kind: 'hardlink', path: 'links/pair-b', target: 'links/pair-a' });
  }

  if (on(o.symlinks)) {
    dir('symlinks');
    const slowMax = o.slowSymlinkMax ?? 4000;
    const target = (len: number) => {
      let s = '';
      for (let i = 0; s.length < len; i++) s += `seg${i}/`;
      return s.slice(0, len);
    };
    for (const len of [1, 59, 60, 61, 500, slowMax]) n.push({ kind: 'symlink', path: `symlinks/len${len}`, target: target(len) });
    n.push({ kind: 'symlink', path: 'symlinks/to-file', target: '../sizes/text.txt' });
    n.push({ kind: 'symlink', path: 'symlinks/to-dir', target: '../sizes' });
    n.push({ kind: 'symlink', path: 'symlinks/absolute', target: '/etc/hostname' });
    n.push({ kind: 'symlink', path: 'symlinks/dangling', target: 'does/not/exist' });
    if (on(o.utf8Names)) n.push({ kind: 'symlink', path: 'symlinks/utf8', target: 'é/日本語/😀' });
  }

  dir('names');
  if (on(o.longNames)) {
    file(`names/${'L'.repeat(255)}`, { kind: 'text', text: '255 ASCII\n' });
    dir(`names/${'D'.repeat(255)}`);
    file(`names/${'D'.repeat(255)}/inside`, { kind: 'text', text: 'in a 255-byte dir\n' });
    if (on(o.utf8Names)) {
      file(`names/${'é'.repeat(127)}x`, { kind: 'text', text: '255 bytes of é\n' });
      file(`names/${'日'.repeat(85)}`, { kind: 'text', text: '255 bytes of 日\n' });
    }
  }
  if (on(o.utf8Names)) {
    if (on(o.shortNonAscii)) file('names/café.txt', { kind: 'text', text: 'é\n' });
    file('names/café-crème.txt', { kind: 'text', text: 'é è\n' });
    file('names/日本語.txt', { kind: 'text', text: '日本語\n' });
    if (on(o.nonBmpNames)) file('names/emoji-😀🎉.bin', { kind: 'random', size: 333 });
    dir('names/répertoire-日本');
    if (on(o.shortNonAscii)) file('names/répertoire-日本/ü', { kind: 'text', text: 'ü\n' });
    file('names/répertoire-日本/über-straße', { kind: 'text', text: 'ü ß\n' });
  }
  file('names/with space', { kind: 'text', text: 'space\n' });
  file('names/.hidden', { kind: 'text', text: 'dot\n' });
  file('names/UPPER.TXT', { kind: 'text', text: 'upper\n' });
  file('names/MiXeD.Case', { kind: 'text', text: 'mixed\n' });
  file('names/many.dots.in.name', { kind: 'text', text: 'dots\n' });

  const depth = o.depth ?? 30;
  if (depth > 0) {
    let p = 'deep';
    dir(p);
    for (let i = 1; i <= depth; i++) { p += `/d${String(i).padStart(2, '0')}`; dir(p); }
    file(`${p}/leaf`, { kind: 'text', text: `depth ${depth}\n` });
  }

  const big = o.bigDirCount ?? 50_000;
  if (big > 0) n.push({ kind: 'many', path: 'bigdir', count: big });

  if (on(o.fifos) || on(o.sockets) || on(o.devices)) dir('special');
  if (on(o.fifos)) n.push({ kind: 'fifo', path: 'special/fifo', mode: 0o640 });
  if (on(o.sockets)) n.push({ kind: 'socket', path: 'special/socket', mode: 0o755 });
  if (on(o.devices)) {
    n.push({ kind: 'chr', path: 'special/null', major: 1, minor: 3, mode: 0o666 });
    n.push({ kind: 'chr', path: 'special/tty64', major: 4, minor: 64, mode: 0o620, gid: 5 });
    n.push({ kind: 'blk', path: 'special/loop0', major: 7, minor: 0, mode: 0o660, gid: 6 });
    n.push({ kind: 'blk', path: 'special/huge-numbers', major: 300, minor: 70000, mode: 0o600 }); // new-style encoding
  }

  if (on(o.specialModes)) {
    dir('modes');
    file('modes/setuid', { kind: 'text', text: '#!/bin/sh\n' }, { mode: 0o4755 });
    file('modes/setgid', { kind: 'text', text: '#!/bin/sh\n' }, { mode: 0o2755 });
    file('modes/suid-sgid-sticky', { kind: 'text', text: 'x\n' }, { mode: 0o7777 });
    file('modes/none', { kind: 'text', text: 'x\n' }, { mode: 0 });
    file('modes/world', { kind: 'text', text: 'x\n' }, { mode: 0o777 });
    file('modes/private', { kind: 'text', text: 'x\n' }, { mode: 0o600 });
    dir('modes/sticky-dir', { mode: 0o1777 });
    dir('modes/setgid-dir', { mode: 0o2775 });
    dir('modes/closed-dir', { mode: 0o700 });
  }

  if (on(o.owners)) {
    dir('owners', { uid: 1000, gid: 1000 });
    file('owners/user', { kind: 'text', text: 'u\n' }, { uid: 1000, gid: 1000 });
    file('owners/nobody', { kind: 'text', text: 'n\n' }, { uid: 65534, gid: 65534 });
    file('owners/big-ids', { kind: 'text', text: 'b\n' }, { uid: 123456, gid: 654321 }); // > 16 bits
    file('owners/root-group5', { kind: 'text', text: 'g\n' }, { uid: 0, gid: 5 });
    if (on(o.symlinks)) n.push({ kind: 'symlink', path: 'owners/link', target: 'user', uid: 1000, gid: 2000 });
  }

  if (on(o.xattrs)) {
    dir('xattrs');
    const priv = on(o.privilegedXattrs);
    file('xattrs/small', { kind: 'text', text: 'x\n' }, {
      xattrs: {
        'user.small': 'hello', 'user.empty': '', 'user.binary': new Uint8Array([0, 1, 2, 0xfe, 0xff]),
        ...(priv ? { 'trusted.t': 'trusted value', 'security.s': 'security value' } : {}),
      },
    });
    const many: Record<string, XattrValue> = {};
    for (let i = 0; i < 12; i++) many[`user.many${String(i).padStart(2, '0')}`] = { size: 40 + i };
    file('xattrs/many', { kind: 'text', text: 'spills out of the inode\n' }, { xattrs: many });
    if (on(o.largeXattr)) file('xattrs/large', { kind: 'random', size: 100 }, { xattrs: { 'user.large': { size: 3000 } } });
    dir('xattrs/dir', { xattrs: { 'user.on-dir': 'dir value' } });
    if (priv && on(o.symlinks)) n.push({ kind: 'symlink', path: 'xattrs/link', target: 'small', xattrs: { 'trusted.on-link': 'link value' } });
    if (priv && on(o.fifos)) n.push({ kind: 'fifo', path: 'xattrs/fifo', xattrs: { 'trusted.on-fifo': 'fifo value' } });
  }

  if (on(o.acls)) {
    dir('acl');
    file('acl/file', { kind: 'text', text: 'acl\n' }, { mode: 0o640, acl: 'u:1000:rw-,g:1000:r--,m::rw-' });
    dir('acl/dir', { mode: 0o750, acl: 'u:1000:rwx', defaultAcl: 'u::rwx,u:1000:rwx,g::r-x,g:2000:r-x,m::rwx,o::---' });
    // Made after the default ACL: inherits it (mode and system.posix_acl_access).
    file('acl/dir/inherited', { kind: 'text', text: 'inherited\n' }, { keepCreatedMode: true });
    n.push({ kind: 'dir', path: 'acl/dir/subdir', keepCreatedMode: true });
  }

  dir('times');
  const s = (sec: bigint) => sec * 1_000_000_000n;
  file('times/whole-seconds', { kind: 'text', text: 't\n' }, { mtimeNs: s(1_000_000_000n), atimeNs: s(1_100_000_000n) });
  file('times/odd-second', { kind: 'text', text: 't\n' }, { mtimeNs: s(1_600_000_001n), atimeNs: s(1_600_000_001n) });
  if (on(o.nsTimes)) {
    file('times/ns', { kind: 'text', text: 't\n' }, { mtimeNs: 1_614_834_367_123_456_789n, atimeNs: 1_614_834_367_987_654_321n });
    file('times/ns-1', { kind: 'text', text: 't\n' }, { mtimeNs: 1_614_834_367_000_000_001n, atimeNs: 1_614_834_367_999_999_999n });
    dir('times/ns-dir', { mtimeNs: 1_700_000_000_555_555_555n, atimeNs: 1_700_000_000_444_444_444n });
    if (on(o.symlinks)) n.push({ kind: 'symlink', path: 'times/ns-link', target: 'ns', mtimeNs: 1_650_000_000_123_000_000n, atimeNs: 1_650_000_000_321_000_000n });
  }
  if (on(o.post2038)) {
    file('times/post2038', { kind: 'text', text: 't\n' }, { mtimeNs: s(2_300_000_000n), atimeNs: s(2_300_000_001n) }); // 2042-11-19
    file('times/year2100', { kind: 'text', text: 't\n' }, { mtimeNs: s(4_102_444_800n) + (on(o.nsTimes) ? 1n : 0n), atimeNs: s(4_102_444_800n) });
  }
  if (on(o.pre1970)) {
    file('times/pre1970', { kind: 'text', text: 't\n' }, { mtimeNs: -s(1_000_000_000n) + (on(o.nsTimes) ? 250_000_000n : 0n), atimeNs: s(-1n) }); // 1938
    file('times/epoch', { kind: 'text', text: 't\n' }, { mtimeNs: 0n, atimeNs: 0n });
  }

  return { nodes: n, defaultTimeNs: T2020_NS };
}

// ---------------------------------------------------------------------------------------
// The builder

function contentSize(c: Content): number {
  return c.kind === 'text' ? Buffer.byteLength(c.text) : c.size;
}

/** The bytes a file of the spec holds (for checks that do not go through a manifest). */
export function contentBytes(p: string, c: Content): Buffer {
  switch (c.kind) {
    case 'text': return Buffer.from(c.text, 'utf8');
    case 'zero': return Buffer.alloc(c.size);
    case 'random': return prngBytes(c.seed ?? seedOf(p), c.size);
    case 'sparse': {
      const b = Buffer.alloc(c.size);
      for (const e of c.extents) prngBytes(e.seed ?? seedOf(`${p}@${e.offset}`), e.length).copy(b, e.offset);
      return b;
    }
  }
}

function writeContent(abs: string, rel: string, c: Content | undefined): void {
  const fd = fs.openSync(abs, 'w', 0o644);
  try {
    if (!c) return;
    switch (c.kind) {
      case 'text': fs.writeSync(fd, Buffer.from(c.text, 'utf8')); break;
      case 'zero': case 'random': {
        const whole = c.kind === 'random' ? prngBytes(c.seed ?? seedOf(rel), c.size) : null;
        const chunk = 4 * MiB;
        for (let off = 0; off < c.size; off += chunk) {
          const len = Math.min(chunk, c.size - off);
          fs.writeSync(fd, whole ? whole.subarray(off, off + len) : Buffer.alloc(len), 0, len, off);
        }
        break;
      }
      case 'sparse':
        for (const e of c.extents) fs.writeSync(fd, prngBytes(e.seed ?? seedOf(`${rel}@${e.offset}`), e.length), 0, e.length, e.offset);
        fs.ftruncateSync(fd, c.size);
        break;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (contentSize(c ?? { kind: 'zero', size: 0 }) !== fs.statSync(abs).size) throw new Error(`${rel}: size mismatch after write`);
}

function xattrBytes(v: XattrValue, seedKey: string): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v);
  return prngBytes(v.seed ?? seedOf(seedKey), v.size);
}

/** The bytes of every xattr the spec sets on `path`, for checks. */
export function xattrValueBytes(nodePath: string, name: string, v: XattrValue): Buffer {
  return xattrBytes(v, `${nodePath}#${name}`);
}

/** Escape a path for getfattr's dump format (setfattr --restore reads it back). */
function dumpEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b < 0x20 || b === 0x7f || b === 0x5c || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  }
  // Back to a string holding the original UTF-8 bytes unchanged.
  return Buffer.from(out, 'latin1').toString('utf8');
}

function formatTouchTime(ns: bigint): string {
  const neg = ns < 0n;
  const a = neg ? -ns : ns;
  return `@${neg ? '-' : ''}${a / 1_000_000_000n}.${String(a % 1_000_000_000n).padStart(9, '0')}`;
}

async function makeSocket(abs: string): Promise<void> {
  // Node removes a listening socket's file when the server closes; a second name made with
  // link() while it listens survives as a socket inode.
  const tmp = path.join(path.dirname(abs), `.sock-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const server = net.createServer();
  await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(tmp, () => res()); });
  try {
    fs.linkSync(tmp, abs);
  } finally {
    await new Promise<void>(res => server.close(() => res()));
    fs.rmSync(tmp, { force: true });
  }
}

export interface BuildOptions {
  /** Report progress (stage names). */
  log?: (msg: string) => void;
}

/**
 * Write `spec` under `root` (which must exist) through the host kernel. Order: every node in
 * spec order (owner, mode, ACLs right after creation, so default ACLs are inherited), then all
 * xattrs in one setfattr call, then times, children before parents.
 */
export async function buildTree(root: string, spec: TreeSpec, opts: BuildOptions = {}): Promise<void> {
  const log = opts.log ?? (() => {});
  const abs = (p: string) => path.join(root, p);
  const defaultTime = spec.defaultTimeNs ?? T2020_NS;
  const timed: { path: string; isLink: boolean; atimeNs?: bigint; mtimeNs?: bigint }[] = [];
  let dump = '';

  const ensureParent = (p: string) => {
    const parent = path.dirname(abs(p));
    if (!fs.existsSync(parent)) {
      fs.mkdirSync(parent, { recursive: true, mode: 0o755 });
    }
  };

  const applyAttrs = async (p: string, a: Attrs, isLink: boolean, defaultMode: number) => {
    const f = abs(p);
    if (a.uid !== undefined || a.gid !== undefined) {
      const st = fs.lstatSync(f);
      fs.lchownSync(f, a.uid ?? st.uid, a.gid ?? st.gid);
    }
    if (!isLink && !a.keepCreatedMode) fs.chmodSync(f, a.mode ?? defaultMode); // after chown: it clears setuid
    if (!isLink && a.acl) await run('setfacl', ['-m', a.acl, f]);
    if (a.xattrs && Object.keys(a.xattrs).length) {
      dump += `# file: ${dumpEscape(p)}\n`;
      for (const [name, v] of Object.entries(a.xattrs)) dump += `${dumpEscape(name)}=0x${xattrBytes(v, `${p}#${name}`).toString('hex')}\n`;
      dump += '\n';
    }
    timed.push({ path: p, isLink, atimeNs: a.atimeNs, mtimeNs: a.mtimeNs });
  };

  log(`creating ${spec.nodes.length} nodes`);
  timed.push({ path: '.', isLink: false });
  for (const node of spec.nodes) {
    const f = abs(node.path);
    if (node.kind !== 'many') ensureParent(node.path);
    switch (node.kind) {
      case 'dir':
        fs.mkdirSync(f, { mode: 0o755 });
        await applyAttrs(node.path, node, false, 0o755);
        if (node.defaultAcl) await run('setfacl', ['-d', '-m', node.defaultAcl, f]);
        break;
      case 'file':
        writeContent(f, node.path, node.content);
        await applyAttrs(node.path, node, false, 0o644);
        break;
      case 'symlink':
        fs.symlinkSync(node.target, f);
        await applyAttrs(node.path, node, true, 0o777);
        break;
      case 'hardlink':
        fs.linkSync(abs(node.target), f);
        break;
      case 'fifo':
        await run('mknod', [f, 'p']);
        await applyAttrs(node.path, node, false, 0o644);
        break;
      case 'socket':
        await makeSocket(f);
        await applyAttrs(node.path, node, false, 0o755);
        break;
      case 'chr': case 'blk':
        await run('mknod', [f, node.kind === 'chr' ? 'c' : 'b', String(node.major), String(node.minor)]);
        await applyAttrs(node.path, node, false, 0o644);
        break;
      case 'many': {
        fs.mkdirSync(f, { recursive: true, mode: 0o755 });
        if (node.mode !== undefined) fs.chmodSync(f, node.mode);
        log(`creating ${node.count} entries in ${node.path}`);
        for (const name of manyNames(node.count)) {
          fs.closeSync(fs.openSync(path.join(f, name), 'w', 0o644));
          timed.push({ path: `${node.path}/${name}`, isLink: false });
        }
        timed.push({ path: node.path, isLink: false });
        break;
      }
    }
  }
  // Implicit parents and every created node get the default time unless they have their own.
  if (dump) {
    log('setting xattrs');
    await run('setfattr', ['-h', '--restore=-'], { input: dump, cwd: root });
  }

  log('setting times');
  const seen = new Set(timed.map(x => x.path));
  for (const node of spec.nodes) {
    for (let d = path.posix.dirname(node.path); d !== '.' && !seen.has(d); d = path.posix.dirname(d)) {
      seen.add(d);
      timed.push({ path: d, isLink: false });
    }
  }
  // Deepest first, so setting a child's time never follows its parent's.
  const depthOf = (p: string) => p === '.' ? 0 : p.split('/').length;
  timed.sort((a, b) => depthOf(b.path) - depthOf(a.path));
  const wholeSec = Number(defaultTime / 1_000_000_000n);
  const defaultIsWhole = defaultTime % 1_000_000_000n === 0n;
  for (const x of timed) {
    const f = abs(x.path);
    if (x.atimeNs === undefined && x.mtimeNs === undefined && defaultIsWhole) {
      fs.lutimesSync(f, wholeSec, wholeSec); // integer seconds pass through libuv exactly
      continue;
    }
    const m = x.mtimeNs ?? defaultTime;
    const a = x.atimeNs ?? m;
    await run('touch', ['-h', '-m', '-d', formatTouchTime(m), f]);
    await run('touch', ['-h', '-a', '-d', formatTouchTime(a), f]);
  }
  log('tree built');
}

/** Paths (relative) of all nodes the spec creates, including `many` entries. */
export function specPaths(spec: TreeSpec): string[] {
  const out: string[] = [];
  for (const n of spec.nodes) {
    out.push(n.path);
    if (n.kind === 'many') for (const name of manyNames(n.count)) out.push(`${n.path}/${name}`);
  }
  return out;
}

/** A sha256 helper shared with manifest.ts. */
export function sha256(b: Uint8Array): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}
