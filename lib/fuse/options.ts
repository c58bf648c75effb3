/*
 * lklfuse's `-o` option lists: which options are lklfuse's own (type=, part=, ro, mb=, opts=,
 * lock=, log=, ...), which go to libfuse, and which mount.fuse(8) / mount(8) add that mean
 * nothing here. Pure functions over strings; no I/O.
 *
 * Escaping follows libfuse's fuse_opt: a backslash makes the next character literal, so
 * `opts=noatime\,data=journal` carries a comma inside a value.
 */
import {
  MS_DIRSYNC, MS_LAZYTIME, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID,
  MS_RDONLY, MS_RELATIME, MS_STRICTATIME, MS_SYNCHRONOUS,
} from '../kernel/include/uapi.js';

export const SUPPORTED_TYPES = ['ext2', 'ext3', 'ext4', 'vfat'] as const;
export type FsType = (typeof SUPPORTED_TYPES)[number];

export interface LklfuseOptions {
  /** Filesystem type; undefined = detect. */
  type?: string;
  /** Partition number, 0 = whole disk. */
  part: number;
  readOnly: boolean;
  /** Kernel memory in MiB. */
  mb: number;
  /** hung_task_timeout= in seconds: the kernel's hung task detector (0 = off). */
  hungTaskTimeout: number;
  /** MS_* flags for the kernel-side mount, from opts= (and ro). */
  mountFlags: number;
  /** The rest of opts=, passed to the filesystem as mount data. */
  mountData: string;
  /** Explicit lock file; undefined = lock the image itself. */
  lock?: string;
  /** Do not lock at all. */
  nolock: boolean;
  log?: string;
  fsname?: string;
  subtype?: string;
  allowOther: boolean;
  defaultPermissions: boolean;
  /** Pass hard_remove to libfuse instead of lklfuse's own handling of unlinked open files. */
  hardRemove: boolean;
  /** intr (libfuse's name): interrupted requests may end with EINTR; both transports. */
  intr: boolean;
  /** transport=: undefined = choose (kernel transport as root with /dev/fuse, else fuse-native). */
  transport?: 'kernel' | 'fuse-native';
  /** reader= (kernel transport): how /dev/fuse is read, 'poll' (default) or 'worker'. */
  reader?: 'poll' | 'worker';
  /** busy_poll= (kernel transport): µs of polling after each reply (default 100, 0 off). */
  busyPollUs?: number;
  /** noreaddirplus (kernel transport): plain READDIR only. */
  noReaddirplus?: boolean;
  /** entry_timeout= / attr_timeout= in seconds (libfuse's names; both transports). */
  entryTimeout?: number;
  attrTimeout?: number;
  /** Everything else, for libfuse, in order (escaped as given). */
  fuse: string[];
  /** Options that were recognised as mount(8)/mount.fuse noise and dropped. */
  ignored: string[];
}

export class OptionError extends Error {}

/** Splits an option list on unescaped commas; backslash escapes are kept (libfuse reads them). */
export function splitOptions(list: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (c === '\\' && i + 1 < list.length) {
      cur += c + list[i + 1]!;
      i++;
    } else if (c === ',') {
      if (cur !== '') out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}

/** Removes libfuse-style backslash escapes from a value. */
export function unescapeOption(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

/** Escapes a value so libfuse's option parser reads it back verbatim. */
export function escapeOption(v: string): string {
  return v.replace(/[\\,]/g, (c) => '\\' + c);
}

/*
 * Per-filesystem flags as mount(8) turns them into MS_* bits (util-linux's optmap for the
 * VFS flags). Anything not here is filesystem data.
 */
const FS_FLAG_OPTIONS: Record<string, { set?: number; clear?: number }> = {
  ro: { set: MS_RDONLY },
  rw: { clear: MS_RDONLY },
  noatime: { set: MS_NOATIME },
  atime: { clear: MS_NOATIME },
  nodiratime: { set: MS_NODIRATIME },
  diratime: { clear: MS_NODIRATIME },
  relatime: { set: MS_RELATIME },
  norelatime: { clear: MS_RELATIME },
  strictatime: { set: MS_STRICTATIME },
  nostrictatime: { clear: MS_STRICTATIME },
  lazytime: { set: MS_LAZYTIME },
  nolazytime: { clear: MS_LAZYTIME },
  sync: { set: MS_SYNCHRONOUS },
  async: { clear: MS_SYNCHRONOUS },
  dirsync: { set: MS_DIRSYNC },
  nodev: { set: MS_NODEV },
  dev: { clear: MS_NODEV },
  nosuid: { set: MS_NOSUID },
  suid: { clear: MS_NOSUID },
  noexec: { set: MS_NOEXEC },
  exec: { clear: MS_NOEXEC },
};

/** Splits the value of opts= into MS_* flags and the filesystem's own data string. */
export function parseFsOptions(list: string): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const raw of splitOptions(list)) {
    const o = unescapeOption(raw);
    const f = FS_FLAG_OPTIONS[o];
    if (f) {
      if (f.set) flags |= f.set;
      if (f.clear) flags &= ~f.clear;
    } else if (o === 'defaults') {
      // mount(8)'s placeholder: no flags of its own.
    } else {
      data.push(o);
    }
  }
  return { flags, data: data.join(',') };
}

/*
 * What mount(8) and mount.fuse(8) hand to a FUSE helper that is not ours: fstab-only
 * options (auto/noauto/user/nofail/_netdev/x-*, comment=) and dev/suid/exec, which mount.fuse
 * adds when an unprivileged user's fstab line allows them.
 */
const IGNORED = new Set(['dev', 'suid', 'exec', 'auto', 'noauto', 'user', 'nouser', 'users',
  'owner', 'group', 'nofail', '_netdev', 'defaults', 'loop', 'bg', 'fg']);
const isIgnored = (name: string) => IGNORED.has(name) || name.startsWith('x-') ||
  name.startsWith('comment=') || name === 'comment';

function parseIntOption(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new OptionError(`invalid value for ${name}: '${value}'`);
  const n = Number(value);
  if (n < min || n > max) throw new OptionError(`${name} must be between ${min} and ${max}: '${value}'`);
  return n;
}

export const DEFAULT_MB = 64;
/** Linux's CONFIG_DEFAULT_HUNG_TASK_TIMEOUT. */
export const DEFAULT_HUNG_TASK_TIMEOUT = 120;

/** Parses every `-o` list given on the command line, left to right (later options win). */
export function parseOptions(lists: string[]): LklfuseOptions {
  const o: LklfuseOptions = {
    part: 0, readOnly: false, mb: DEFAULT_MB, hungTaskTimeout: DEFAULT_HUNG_TASK_TIMEOUT, mountFlags: 0, mountData: '', nolock: false,
    allowOther: false, defaultPermissions: false, hardRemove: false, intr: false, fuse: [], ignored: [],
  };
  let fsOpts = '';
  for (const list of lists) {
    for (const raw of splitOptions(list)) {
      const eq = raw.indexOf('=');
      const name = eq < 0 ? raw : raw.slice(0, eq);
      const value = eq < 0 ? undefined : unescapeOption(raw.slice(eq + 1));
      const need = () => {
        if (value === undefined || value === '') throw new OptionError(`option ${name} needs a value (${name}=...)`);
        return value;
      };
      switch (name) {
        case 'type': o.type = need(); break;
        case 'part': o.part = parseIntOption('part', need(), 0, 255); break;
        case 'mb': o.mb = parseIntOption('mb', need(), 16, 1 << 20); break;
        case 'hung_task_timeout': o.hungTaskTimeout = parseIntOption('hung_task_timeout', need(), 0, 86400); break;
        case 'opts': fsOpts = fsOpts ? `${fsOpts},${value ?? ''}` : value ?? ''; break; // escaped commas now separate
        case 'lock': o.lock = need(); break;
        case 'nolock': o.nolock = true; break;
        case 'log': o.log = need(); break;
        case 'fsname': o.fsname = need(); break;
        case 'subtype': o.subtype = need(); break;
        case 'ro': o.readOnly = true; break;
        case 'rw': o.readOnly = false; break;
        case 'allow_other': o.allowOther = true; break;
        case 'default_permissions': o.defaultPermissions = true; break;
        case 'hard_remove': o.hardRemove = true; break;
        case 'intr': o.intr = true; break;
        case 'transport': {
          const v = need();
          if (v !== 'kernel' && v !== 'fuse-native') throw new OptionError(`transport must be kernel or fuse-native: '${v}'`);
          o.transport = v;
          break;
        }
        case 'reader': {
          const v = need();
          if (v !== 'poll' && v !== 'worker') throw new OptionError(`reader must be poll or worker: '${v}'`);
          o.reader = v;
          break;
        }
        case 'noreaddirplus': o.noReaddirplus = true; break;
        case 'busy_poll': {
          const v = need();
          if (!/^\d+$/.test(v) || Number(v) > 1_000_000) throw new OptionError(`busy_poll must be microseconds from 0 to 1000000: '${v}'`);
          o.busyPollUs = Number(v);
          break;
        }
        case 'entry_timeout': case 'attr_timeout': {
          const v = need();
          if (!/^\d+(\.\d+)?$/.test(v)) throw new OptionError(`invalid value for ${name}: '${v}'`);
          if (name === 'entry_timeout') o.entryTimeout = Number(v); else o.attrTimeout = Number(v);
          break;
        }
        // The write size is lklfuse's choice (big_writes,max_write=131072); asking again is harmless.
        case 'big_writes': case 'max_write': case 'use_ino': break;
        default:
          if (isIgnored(raw)) o.ignored.push(raw);
          else o.fuse.push(raw);
      }
    }
  }
  const fs = parseFsOptions(fsOpts);
  o.mountFlags = fs.flags;
  o.mountData = fs.data;
  if (o.mountFlags & MS_RDONLY) o.readOnly = true;
  if (o.readOnly) o.mountFlags |= MS_RDONLY;
  return o;
}

/** lklfuse's own -o options as --help lists them, "=" where a value follows (for shell completion). */
export const OWN_OPTIONS = [
  'type=', 'part=', 'ro', 'rw', 'mb=', 'opts=', 'lock=', 'nolock', 'log=', 'fsname=', 'subtype=',
  'allow_other', 'default_permissions', 'transport=', 'noreaddirplus', 'busy_poll=', 'entry_timeout=', 'attr_timeout=',
  'hard_remove', 'intr', 'hung_task_timeout=',
] as const;
const OPTION_VALUES: Record<string, readonly string[]> = { type: SUPPORTED_TYPES, transport: ['kernel', 'fuse-native'] };

/**
 * Shell completion of an -o list being typed: `word` with its last item completed, as an
 * option name or as one of the values type= and transport= take.
 */
export function completeOptionList(word: string): string[] {
  const cut = word.lastIndexOf(',') + 1;
  const head = word.slice(0, cut), item = word.slice(cut);
  const eq = item.indexOf('=');
  const all = eq < 0 ? OWN_OPTIONS.map((o) => head + o)
    : (OPTION_VALUES[item.slice(0, eq)] ?? []).map((v) => `${head}${item.slice(0, eq)}=${v}`);
  return all.filter((c) => c.startsWith(word));
}

/** Maps a type name given by the user to one the kernel mounts, or undefined if unsupported. */
export function normalizeType(t: string): FsType | undefined {
  const l = t.toLowerCase();
  if (l === 'fat' || l === 'msdos' || l === 'fat32' || l === 'fat16' || l === 'fat12') return 'vfat';
  return (SUPPORTED_TYPES as readonly string[]).includes(l) ? (l as FsType) : undefined;
}
