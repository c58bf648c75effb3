/*
 * The case list of test/fuse/real-conformance.test.ts: pjdfstest-style POSIX cases, each a
 * setup (as root unless a step says otherwise) and the ops whose outcomes are recorded by
 * test/fuse/conformance-child.py. A step's `expect` is what Linux answers (checked on the
 * host's own ext4 run, so the list itself is checked); the FUSE runs are compared with the
 * host run outcome by outcome, `expect` or not.
 */

/** A caller: uid, gid, supplementary groups. */
export type Who = [uid: number, gid: number, groups: number[]];
export const ROOT: Who = [0, 0, []];
/** An ordinary user, member of group 2000 as well. */
export const U1: Who = [1001, 1001, [1001, 2000]];
/** Another user, in no shared group. */
export const U2: Who = [1002, 1002, [1002]];
export const NOBODY: Who = [65534, 65534, []];

export interface Step {
  op: string;
  as?: Who;
  /** The outcome Linux gives ("ok", "ok:<detail>" or an errno name). */
  expect?: string;
  [arg: string]: unknown;
}

export interface Case {
  /** Unique; the name of the case's directory. */
  id: string;
  title: string;
  setup: Step[];
  ops: Step[];
  /** Paths whose atime/mtime/ctime changes by the ops are recorded. */
  watch?: string[];
}

/** Where the test puts a directory on another filesystem (for EXDEV). */
export const OTHER = '@OTHER';

// --- setup helpers -----------------------------------------------------------------------

const file = (path: string, mode?: number, data = 'data'): Step[] => [
  { op: 'creat', path },
  ...(data ? [{ op: 'write', path, data }] : []),
  ...(mode !== undefined ? [{ op: 'chmod', path, mode }] : []),
];
const dir = (path: string, mode?: number): Step[] => [
  { op: 'mkdir', path },
  ...(mode !== undefined ? [{ op: 'chmod', path, mode }] : []),
];
const own = (path: string, who: Who | [number, number]): Step => ({ op: 'chown', path, uid: who[0], gid: who[1] });
const st = (path: string, expect?: string, as?: Who): Step => ({ op: 'stat', path, ...(expect ? { expect } : {}), ...(as ? { as } : {}) });
const lst = (path: string, expect?: string): Step => ({ op: 'lstat', path, ...(expect ? { expect } : {}) });

const N255 = 'n'.repeat(255);
const N256 = 'n'.repeat(256);
/** 16 directories of 254 bytes: 'P/' prefix of 4080 bytes; with a 15-byte name 4095 (fits PATH_MAX). */
const DEEP = Array.from({ length: 16 }, () => 'p'.repeat(254));
const deepSetup = (): Step[] => DEEP.map((_, i) => ({ op: 'mkdir', path: DEEP.slice(0, i + 1).join('/') }));
const DEEP_OK = `${DEEP.join('/')}/${'q'.repeat(15)}`; // 4095 bytes
const DEEP_LONG = `${DEEP.join('/')}/${'q'.repeat(16)}`; // 4096 bytes: ENAMETOOLONG

// --- the list ----------------------------------------------------------------------------

export function conformanceCases(): Case[] {
  const cases: Case[] = [];
  const used = new Set<string>();
  const add = (id: string, title: string, setup: Step[], ops: Step[], watch?: string[]) => {
    if (used.has(id)) throw new Error(`duplicate case id ${id}`);
    used.add(id);
    cases.push({ id, title, setup, ops, ...(watch ? { watch } : {}) });
  };

  // ---- The errno matrix: every path-taking call on every kind of bad path. ----
  // Each call: how to run it on a path `p` (the last component is the one that is bad).
  const calls: [string, (p: string) => Step][] = [
    ['open', (p) => ({ op: 'open', path: p, flags: ['O_RDONLY'] })],
    ['creat', (p) => ({ op: 'open', path: p, flags: ['O_CREAT', 'O_WRONLY'], mode: 0o644 })],
    ['mkdir', (p) => ({ op: 'mkdir', path: p })],
    ['mknod', (p) => ({ op: 'mknod', path: p, kind: 'fifo' })],
    ['link-src', (p) => ({ op: 'link', src: p, dst: 'newlink' })],
    ['link-dst', (p) => ({ op: 'link', src: 'f', dst: p })],
    ['symlink', (p) => ({ op: 'symlink', target: 'f', path: p })],
    ['rename-src', (p) => ({ op: 'rename', src: p, dst: 'renamed' })],
    ['rename-dst', (p) => ({ op: 'rename', src: 'f', dst: p })],
    ['unlink', (p) => ({ op: 'unlink', path: p })],
    ['rmdir', (p) => ({ op: 'rmdir', path: p })],
    ['chmod', (p) => ({ op: 'chmod', path: p, mode: 0o600 })],
    ['chown', (p) => ({ op: 'chown', path: p, uid: 1001, gid: 1001 })],
    ['truncate', (p) => ({ op: 'truncate', path: p, len: 1 })],
    ['utime', (p) => ({ op: 'utime', path: p, a: 'now', m: 'now' })],
    ['setxattr', (p) => ({ op: 'setxattr', path: p, name: 'user.x', value: 'v' })],
    ['getxattr', (p) => ({ op: 'getxattr', path: p, name: 'user.x' })],
    ['stat', (p) => ({ op: 'stat', path: p })],
  ];
  const creating = new Set(['creat', 'mkdir', 'mknod', 'link-dst', 'symlink', 'rename-dst']);
  const base: Step[] = [...file('f'), ...dir('d')];
  for (const [name, mk] of calls) {
    const bad: [string, string, string, Who?][] = [
      ['enoent-parent', 'missing/x', 'ENOENT'],
      ['enotdir', 'f/x', 'ENOTDIR'],
      ['name-max', N256, 'ENAMETOOLONG'],
      ['path-max', DEEP_LONG, 'ENAMETOOLONG'],
      ['eloop', 'loop/x', 'ELOOP'],
      ['eacces-search', 'priv/g', 'EACCES', U1],
    ];
    if (!creating.has(name)) bad.push(['enoent', 'missing', 'ENOENT']);
    for (const [what, p, errno, as] of bad) {
      const op = { ...mk(p), expect: errno, ...(as ? { as } : {}) };
      // rename-dst/link-dst of priv/g as U1: EACCES either way (search); link/rename dst in
      // an existing name go to EEXIST-style cases below instead.
      const extra = what === 'path-max' ? deepSetup() : what === 'eloop' ? [{ op: 'symlink', target: 'loop', path: 'loop' }]
        : what === 'eacces-search' ? [...dir('priv', 0o700), ...file('priv/g')] : [];
      add(`${name}-${what}`, `${name}: ${what} → ${errno}`, [...base, ...extra], [op]);
    }
    // At NAME_MAX and just under PATH_MAX a name works (for the creating calls).
    if (creating.has(name)) {
      add(`${name}-name-255`, `${name}: a 255-byte name works`, base, [{ ...mk(N255), expect: 'ok' }, { op: 'lstat', path: N255, fields: ['type'] }]);
      add(`${name}-path-4095`, `${name}: a 4095-byte path works`, [...base, ...deepSetup()], [{ ...mk(DEEP_OK), expect: 'ok' }, { op: 'lstat', path: DEEP_OK, fields: ['type'] }]);
    }
  }
  // EEXIST for every creating call, on a file, a directory, a symlink and a dangling symlink.
  const targets: [string, Step[]][] = [['file', file('e')], ['dir', dir('e')], ['symlink', [...file('t'), { op: 'symlink', target: 't', path: 'e' }]],
    ['dangling', [{ op: 'symlink', target: 'nowhere', path: 'e' }]]];
  for (const [kind, setup] of targets) {
    add(`creat-excl-${kind}`, `open O_CREAT|O_EXCL on an existing ${kind} → EEXIST`, [...file('f'), ...setup], [{ op: 'open', path: 'e', flags: ['O_CREAT', 'O_EXCL', 'O_WRONLY'], expect: 'EEXIST' }]);
    add(`mkdir-eexist-${kind}`, `mkdir on an existing ${kind} → EEXIST`, [...file('f'), ...setup], [{ op: 'mkdir', path: 'e', expect: 'EEXIST' }]);
    add(`mknod-eexist-${kind}`, `mknod on an existing ${kind} → EEXIST`, [...file('f'), ...setup], [{ op: 'mknod', path: 'e', kind: 'fifo', expect: 'EEXIST' }]);
    add(`symlink-eexist-${kind}`, `symlink on an existing ${kind} → EEXIST`, [...file('f'), ...setup], [{ op: 'symlink', target: 'f', path: 'e', expect: 'EEXIST' }]);
    add(`link-eexist-${kind}`, `link onto an existing ${kind} → EEXIST`, [...file('f'), ...setup], [{ op: 'link', src: 'f', dst: 'e', expect: 'EEXIST' }, st('f', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=4')]);
  }

  // ---- open / creat ----
  add('open-creat-new', 'O_CREAT makes a file with mode & ~umask, owned by the caller; the parent dir mtime/ctime change', dir('d'),
    [{ op: 'open', path: 'd/n', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o666, expect: 'ok' }, st('d/n', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=0')], ['d']);
  add('open-creat-existing', 'O_CREAT on an existing file neither truncates nor changes times', file('f'),
    [{ op: 'open', path: 'f', flags: ['O_CREAT', 'O_WRONLY'], expect: 'ok' }, st('f', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=4')], ['f', '.']);
  add('open-trunc', 'O_TRUNC empties a file and changes mtime and ctime', file('f'),
    [{ op: 'open', path: 'f', flags: ['O_WRONLY', 'O_TRUNC'], expect: 'ok' }, st('f', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=0')], ['f']);
  add('open-trunc-empty', 'O_TRUNC on an empty file', file('f', undefined, ''),
    [{ op: 'open', path: 'f', flags: ['O_WRONLY', 'O_TRUNC'], expect: 'ok' }], ['f']);
  add('open-trunc-rdonly', 'O_RDONLY|O_TRUNC truncates too (Linux)', file('f'),
    [{ op: 'open', path: 'f', flags: ['O_RDONLY', 'O_TRUNC'], expect: 'ok' }, st('f')], ['f']);
  add('open-rdonly-times', 'open O_RDONLY changes no time', file('f'), [{ op: 'open', path: 'f', flags: ['O_RDONLY'], expect: 'ok' }], ['f']);
  add('open-dir-rdonly', 'open O_RDONLY on a directory works', dir('d'), [{ op: 'open', path: 'd', flags: ['O_RDONLY'], expect: 'ok' }]);
  add('open-dir-wronly', 'open O_WRONLY on a directory → EISDIR', dir('d'), [{ op: 'open', path: 'd', flags: ['O_WRONLY'], expect: 'EISDIR' }]);
  add('open-dir-rdwr', 'open O_RDWR on a directory → EISDIR', dir('d'), [{ op: 'open', path: 'd', flags: ['O_RDWR'], expect: 'EISDIR' }]);
  add('open-dir-creat', 'open O_CREAT on a directory → EISDIR', dir('d'), [{ op: 'open', path: 'd', flags: ['O_CREAT', 'O_WRONLY'], expect: 'EISDIR' }]);
  add('open-creat-slash', 'open O_CREAT of "n/" → EISDIR', [], [{ op: 'open', path: 'n/', flags: ['O_CREAT', 'O_WRONLY'], expect: 'EISDIR' }]);
  add('open-file-slash', 'open "f/" of a file → ENOTDIR', file('f'), [{ op: 'open', path: 'f/', flags: ['O_RDONLY'], expect: 'ENOTDIR' }]);
  add('open-o-directory-file', 'O_DIRECTORY on a file → ENOTDIR', file('f'), [{ op: 'open', path: 'f', flags: ['O_RDONLY', 'O_DIRECTORY'], expect: 'ENOTDIR' }]);
  add('open-o-directory-dir', 'O_DIRECTORY on a directory works', dir('d'), [{ op: 'open', path: 'd', flags: ['O_RDONLY', 'O_DIRECTORY'], expect: 'ok' }]);
  add('open-nofollow', 'O_NOFOLLOW on a symlink → ELOOP', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'open', path: 's', flags: ['O_RDONLY', 'O_NOFOLLOW'], expect: 'ELOOP' }]);
  add('open-nofollow-path', 'O_NOFOLLOW|O_PATH on a symlink opens the link', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'open', path: 's', flags: ['O_PATH', 'O_NOFOLLOW'], expect: 'ok' }]);
  add('open-creat-dangling', 'O_CREAT through a dangling symlink creates its target', [{ op: 'symlink', target: 'tgt', path: 's' }],
    [{ op: 'open', path: 's', flags: ['O_CREAT', 'O_WRONLY'], expect: 'ok' }, st('tgt', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=0'), lst('s')]);
  add('open-symlink-chain-40', 'a chain of 40 symlinks resolves', [...file('f'), { op: 'symlink', target: 'f', path: 's0' }, ...Array.from({ length: 39 }, (_, i) => ({ op: 'symlink', target: `s${i}`, path: `s${i + 1}` }))],
    [{ op: 'open', path: 's39', flags: ['O_RDONLY'], expect: 'ok' }]);
  add('open-symlink-chain-41', 'a chain of 41 symlinks → ELOOP', [...file('f'), { op: 'symlink', target: 'f', path: 's0' }, ...Array.from({ length: 40 }, (_, i) => ({ op: 'symlink', target: `s${i}`, path: `s${i + 1}` }))],
    [{ op: 'open', path: 's40', flags: ['O_RDONLY'], expect: 'ELOOP' }]);
  add('open-self-loop', 'open of a self-referencing symlink → ELOOP', [{ op: 'symlink', target: 'l', path: 'l' }], [{ op: 'open', path: 'l', flags: ['O_RDONLY'], expect: 'ELOOP' }]);
  for (const [mode, flags, who, expect] of [
    [0o600, ['O_RDONLY'], U1, 'EACCES'], [0o644, ['O_RDONLY'], U1, 'ok'], [0o644, ['O_WRONLY'], U1, 'EACCES'],
    [0o646, ['O_WRONLY'], U1, 'ok'], [0o640, ['O_RDONLY'], U1, 'EACCES'], [0o604, ['O_RDONLY'], U1, 'ok'],
    [0o000, ['O_RDONLY'], ROOT, 'ok'], [0o000, ['O_WRONLY'], ROOT, 'ok'], [0o222, ['O_RDONLY'], U1, 'EACCES'],
    [0o222, ['O_WRONLY'], U1, 'ok'], [0o444, ['O_RDWR'], U1, 'EACCES'], [0o666, ['O_RDWR'], U1, 'ok'],
  ] as [number, string[], Who, string][]) {
    add(`open-perm-${mode.toString(8)}-${flags[0]}-${who[0]}`, `open ${flags[0]} as uid ${who[0]} of a root file of mode ${mode.toString(8)} → ${expect}`,
      file('f', mode), [{ op: 'open', path: 'f', flags, as: who, expect }]);
  }
  // Group and owner classes: the first class that matches decides.
  add('open-group-member', 'a member of the file\'s group reads a 0640 file', [...file('f', 0o640), own('f', [0, 2000])], [{ op: 'open', path: 'f', flags: ['O_RDONLY'], as: U1, expect: 'ok' }]);
  add('open-group-nonmember', 'a non-member cannot read a 0640 file', [...file('f', 0o640), own('f', [0, 2000])], [{ op: 'open', path: 'f', flags: ['O_RDONLY'], as: U2, expect: 'EACCES' }]);
  add('open-owner-class-denies', 'the owner of a 0077 file is denied though others may read', [...file('f', 0o077), own('f', U1)], [{ op: 'open', path: 'f', flags: ['O_RDONLY'], as: U1, expect: 'EACCES' }, { op: 'open', path: 'f', flags: ['O_RDONLY'], as: U2, expect: 'ok' }]);
  add('open-group-class-denies', 'a group member of a 0607 file is denied though others may read', [...file('f', 0o607), own('f', [0, 2000])], [{ op: 'open', path: 'f', flags: ['O_RDONLY'], as: U1, expect: 'EACCES' }, { op: 'open', path: 'f', flags: ['O_RDONLY'], as: U2, expect: 'ok' }]);
  add('open-creat-nowrite-dir', 'O_CREAT in a directory without write permission → EACCES', dir('d', 0o755), [{ op: 'open', path: 'd/n', flags: ['O_CREAT', 'O_WRONLY'], as: U1, expect: 'EACCES' }]);
  add('open-creat-ownership', 'a file a user creates is theirs (uid and primary gid)', dir('d', 0o777),
    [{ op: 'open', path: 'd/n', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o640, as: U1, expect: 'ok' }, st('d/n', 'ok:reg mode=0640 uid=1001 gid=1001 nlink=1 size=0')]);
  add('open-creat-sgid-dir', 'in a setgid directory the new file takes the directory\'s group', [...dir('d', 0o2777), own('d', [0, 2000])],
    [{ op: 'open', path: 'd/n', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o644, as: U2, expect: 'ok' }, st('d/n', 'ok:reg mode=0644 uid=1002 gid=2000 nlink=1 size=0')]);
  add('open-creat-sgid-strip', 'creating a setgid file in a setgid dir of a group one is not in drops S_ISGID', [...dir('d', 0o2777), own('d', [0, 2000])],
    [{ op: 'open', path: 'd/n', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o2755, as: U2, expect: 'ok' }, st('d/n', 'ok:reg mode=0755 uid=1002 gid=2000 nlink=1 size=0')]);
  add('open-creat-sgid-keep', 'a member of the group keeps S_ISGID', [...dir('d', 0o2777), own('d', [0, 2000])],
    [{ op: 'open', path: 'd/n', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o2755, as: U1, expect: 'ok' }, st('d/n', 'ok:reg mode=2755 uid=1001 gid=2000 nlink=1 size=0')]);
  add('open-creat-modes', 'O_CREAT with mode 0777 and 07777 under umask 022', dir('d'),
    [{ op: 'open', path: 'd/a', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o777 }, st('d/a', 'ok:reg mode=0755 uid=0 gid=0 nlink=1 size=0'),
      { op: 'open', path: 'd/b', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o7777 }, st('d/b', 'ok:reg mode=7755 uid=0 gid=0 nlink=1 size=0')]);
  add('open-append-write', 'O_APPEND writes at the end', file('f'), [{ op: 'write', path: 'f', flags: ['O_WRONLY', 'O_APPEND'], data: 'more', expect: 'ok:4' }, { op: 'read', path: 'f', expect: 'ok:datamore' }], ['f']);
  add('read-atime', 'read changes the atime only (relatime, atime older than a day)', file('f'), [{ op: 'read', path: 'f', expect: 'ok:data' }], ['f']);
  add('read-empty-atime', 'read of an empty file', file('f', undefined, ''), [{ op: 'read', path: 'f', expect: 'ok:' }], ['f']);
  add('write-times', 'write changes mtime and ctime', file('f'), [{ op: 'write', path: 'f', data: 'XY', expect: 'ok:2' }, { op: 'read', path: 'f', expect: 'ok:XYta' }], ['f']);
  add('write-rdonly-fd', 'write on an O_RDONLY descriptor → EBADF', file('f'), [{ op: 'write', path: 'f', flags: ['O_RDONLY'], expect: 'EBADF' }]);
  add('read-wronly-fd', 'read on an O_WRONLY descriptor → EBADF', file('f'), [{ op: 'read', path: 'f', flags: ['O_WRONLY'], expect: 'EBADF' }]);
  add('read-dir', 'read on a directory → EISDIR', dir('d'), [{ op: 'read', path: 'd', expect: 'EISDIR' }]);
  add('fchmod-opath', 'fchmod on an O_PATH descriptor → EBADF', file('f'), [{ op: 'fchmod', path: 'f', flags: ['O_PATH'], mode: 0o600, expect: 'EBADF' }]);
  add('readdir-list', 'readdir lists what was made', [...dir('d'), ...file('d/x'), ...dir('d/y'), { op: 'symlink', target: 'x', path: 'd/z' }],
    [{ op: 'readdir', path: 'd', expect: 'ok:x,y,z' }], ['d']);

  // ---- mkdir ----
  add('mkdir-new', 'mkdir: mode & ~umask, nlink 2, the parent gets nlink+1 and new mtime/ctime', dir('p'),
    [{ op: 'mkdir', path: 'p/d', mode: 0o777, expect: 'ok' }, { op: 'stat', path: 'p/d', fields: ['type', 'mode', 'uid', 'gid', 'nlink'], expect: 'ok:dir mode=0755 uid=0 gid=0 nlink=2' }, { op: 'stat', path: 'p', fields: ['nlink'], expect: 'ok:nlink=3' }], ['p']);
  add('mkdir-mode-bits', 'mkdir 07777 keeps the sticky and setgid bits... as Linux does', [], [{ op: 'mkdir', path: 'd', mode: 0o7777 }, { op: 'stat', path: 'd', fields: ['mode'] }]);
  add('mkdir-trailing-slash', 'mkdir "d/" works', [], [{ op: 'mkdir', path: 'd/', expect: 'ok' }, { op: 'stat', path: 'd', fields: ['type'], expect: 'ok:dir' }]);
  add('mkdir-nowrite', 'mkdir as a user in a 0755 root directory → EACCES', dir('p', 0o755), [{ op: 'mkdir', path: 'p/d', as: U1, expect: 'EACCES' }]);
  add('mkdir-ownership', 'a directory a user creates is theirs', dir('p', 0o777), [{ op: 'mkdir', path: 'p/d', as: U1, expect: 'ok' }, st('p/d', undefined)]);
  add('mkdir-sgid-inherit', 'a subdirectory of a setgid directory is setgid and in its group', [...dir('p', 0o2777), own('p', [0, 2000])],
    [{ op: 'mkdir', path: 'p/d', mode: 0o755, as: U2, expect: 'ok' }, { op: 'stat', path: 'p/d', fields: ['mode', 'uid', 'gid'], expect: 'ok:mode=2755 uid=1002 gid=2000' }]);
  add('mkdir-symlink-parent', 'mkdir through a symlinked parent', [...dir('real'), { op: 'symlink', target: 'real', path: 's' }], [{ op: 'mkdir', path: 's/d', expect: 'ok' }, { op: 'readdir', path: 'real', expect: 'ok:d' }]);

  // ---- mknod / mkfifo ----
  for (const [kind, dev, who, expect] of [
    ['fifo', [0, 0], ROOT, 'ok'], ['reg', [0, 0], ROOT, 'ok'], ['chr', [1, 3], ROOT, 'ok'], ['blk', [7, 0], ROOT, 'ok'], ['sock', [0, 0], ROOT, 'ok'],
    ['fifo', [0, 0], U1, 'ok'], ['reg', [0, 0], U1, 'ok'], ['chr', [1, 3], U1, 'EPERM'], ['blk', [7, 0], U1, 'EPERM'], ['sock', [0, 0], U1, 'ok'],
    ['dir', [0, 0], ROOT, 'EPERM'], ['bad', [0, 0], ROOT, 'EINVAL'],
  ] as [string, [number, number], Who, string][]) {
    add(`mknod-${kind}-${who[0]}`, `mknod ${kind} as uid ${who[0]} → ${expect}`, dir('p', 0o777),
      [{ op: 'mknod', path: 'p/n', kind, dev, mode: 0o640, as: who, expect }, { op: 'lstat', path: 'p/n', fields: ['type', 'mode', 'uid', 'gid', 'nlink', 'size', 'rdev'] }], ['p']);
  }
  add('mkfifo-new', 'mkfifo makes a fifo', [], [{ op: 'mkfifo', path: 'q', mode: 0o666, expect: 'ok' }, lst('q', 'ok:fifo mode=0644 uid=0 gid=0 nlink=1 size=0')], ['.']);
  add('mkfifo-nowrite', 'mkfifo as a user in a 0755 root directory → EACCES', dir('p', 0o755), [{ op: 'mkfifo', path: 'p/q', as: U1, expect: 'EACCES' }]);

  // ---- link ----
  add('link-new', 'link: nlink 2 on both names; the inode\'s ctime and the directory\'s mtime/ctime change', [...file('f'), ...dir('d')],
    [{ op: 'link', src: 'f', dst: 'd/g', expect: 'ok' }, st('f', 'ok:reg mode=0644 uid=0 gid=0 nlink=2 size=4'), st('d/g', 'ok:reg mode=0644 uid=0 gid=0 nlink=2 size=4')], ['f', 'd', '.']);
  add('link-dir', 'link of a directory → EPERM', dir('d'), [{ op: 'link', src: 'd', dst: 'e', expect: 'EPERM' }]);
  add('link-exdev', 'link to another filesystem → EXDEV', file('f'), [{ op: 'link', src: 'f', dst: `${OTHER}/link-exdev`, expect: 'EXDEV' }]);
  add('link-symlink-nofollow', 'link of a symlink links the symlink', [...file('f'), { op: 'symlink', target: 'f', path: 's' }],
    [{ op: 'link', src: 's', dst: 'h', expect: 'ok' }, { op: 'lstat', path: 'h', fields: ['type', 'nlink'], expect: 'ok:lnk nlink=2' }, { op: 'readlink', path: 'h', expect: 'ok:f' }]);
  add('link-symlink-follow', 'linkat AT_SYMLINK_FOLLOW links the target', [...file('f'), { op: 'symlink', target: 'f', path: 's' }],
    [{ op: 'link', src: 's', dst: 'h', follow: true, expect: 'ok' }, { op: 'lstat', path: 'h', fields: ['type', 'nlink'], expect: 'ok:reg nlink=2' }]);
  add('link-fifo', 'link of a fifo', [{ op: 'mkfifo', path: 'q' }], [{ op: 'link', src: 'q', dst: 'r', expect: 'ok' }, { op: 'lstat', path: 'r', fields: ['type', 'nlink'], expect: 'ok:fifo nlink=2' }]);
  add('link-nowrite-dir', 'link into a directory without write permission → EACCES', [...file('f', 0o666), ...dir('d', 0o755)], [{ op: 'link', src: 'f', dst: 'd/g', as: U1, expect: 'EACCES' }]);
  add('link-protected', 'a user cannot link a root file it cannot write (protected_hardlinks)', [...file('f', 0o644), ...dir('d', 0o777)], [{ op: 'link', src: 'f', dst: 'd/g', as: U1, expect: 'EPERM' }]);
  add('link-own-file', 'a user links its own file', [...dir('d', 0o777), ...file('d/f'), own('d/f', U1)], [{ op: 'link', src: 'd/f', dst: 'd/g', as: U1, expect: 'ok' }, st('d/g')]);
  add('link-unlink-other-name', 'after unlinking a hard link\'s name seen last, the file still opens by its first name', [...file('f'), { op: 'link', src: 'f', dst: 'g' }],
    [st('g'), { op: 'unlink', path: 'g', expect: 'ok' }, { op: 'read', path: 'f', expect: 'ok:data' }, { op: 'write', path: 'f', data: 'D', expect: 'ok:1' }, st('f', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=4')]);
  add('link-rename-then-unlink', 'a renamed hard link is still found after its first name goes', [...file('f'), { op: 'link', src: 'f', dst: 'g' }],
    [st('g'), { op: 'rename', src: 'g', dst: 'h', expect: 'ok' }, { op: 'unlink', path: 'f', expect: 'ok' }, { op: 'read', path: 'h', expect: 'ok:data' }]);
  add('link-many', 'ten links: nlink 11, then unlinking them one by one', file('f'),
    [...Array.from({ length: 10 }, (_, i) => ({ op: 'link', src: 'f', dst: `l${i}` })), st('f', 'ok:reg mode=0644 uid=0 gid=0 nlink=11 size=4'),
      ...Array.from({ length: 10 }, (_, i) => ({ op: 'unlink', path: `l${i}` })), st('f', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=4')]);

  // ---- symlink ----
  add('symlink-new', 'symlink: readlink gives the target; mode 0777; the dir\'s mtime/ctime change', [],
    [{ op: 'symlink', target: 'some/where', path: 's', expect: 'ok' }, { op: 'readlink', path: 's', expect: 'ok:some/where' }, lst('s', 'ok:lnk mode=0777 uid=0 gid=0 nlink=1 size=10')], ['.']);
  add('symlink-empty', 'symlink with an empty target → ENOENT', [], [{ op: 'symlink', target: '', path: 's', expect: 'ENOENT' }]);
  for (const n of [59, 60, 61, 255, 1000, 1023, 1024, 1025, 4095]) {
    add(`symlink-len-${n}`, `symlink with a ${n}-byte target (fast/slow symlink, block size limit)`, [],
      [{ op: 'symlink', target: 't'.repeat(n), path: 's' }, { op: 'readlink', path: 's' }, { op: 'lstat', path: 's', fields: ['type', 'size'] }]);
  }
  add('symlink-len-4096', 'symlink with a 4096-byte target → ENAMETOOLONG', [], [{ op: 'symlink', target: 't'.repeat(4096), path: 's', expect: 'ENAMETOOLONG' }]);
  add('symlink-ownership', 'a symlink a user creates is theirs', dir('d', 0o777), [{ op: 'symlink', target: 'x', path: 'd/s', as: U1, expect: 'ok' }, lst('d/s', 'ok:lnk mode=0777 uid=1001 gid=1001 nlink=1 size=1')]);
  add('symlink-nowrite', 'symlink in a directory without write permission → EACCES', dir('d', 0o755), [{ op: 'symlink', target: 'x', path: 'd/s', as: U1, expect: 'EACCES' }]);
  add('symlink-follow-dir', 'a path through a symlink to a directory', [...dir('d'), ...file('d/f'), { op: 'symlink', target: 'd', path: 's' }], [st('s/f', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=4'), { op: 'readdir', path: 's', expect: 'ok:f' }]);
  add('symlink-dotdot', 'a relative target with ..', [...dir('a'), ...dir('b'), ...file('b/f'), { op: 'symlink', target: '../b/f', path: 'a/s' }], [{ op: 'read', path: 'a/s', expect: 'ok:data' }]);
  add('symlink-slash', 'a symlink to a file followed by "/" → ENOTDIR', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [st('s/', 'ENOTDIR')]);

  // ---- rename ----
  add('rename-file-new', 'rename a file to a new name: the inode\'s ctime and the dir\'s mtime/ctime change', file('f'),
    [{ op: 'rename', src: 'f', dst: 'g', expect: 'ok' }, st('g', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=4'), st('f', 'ENOENT')], ['.']);
  add('rename-file-ctime', 'rename changes the renamed inode\'s ctime only', [...file('f'), { op: 'link', src: 'f', dst: 'keep' }], [{ op: 'rename', src: 'f', dst: 'g', expect: 'ok' }], ['keep']);
  add('rename-replace-file', 'rename over a file replaces it; the replaced inode loses a link', [...file('f'), ...file('g', undefined, 'other'), { op: 'link', src: 'g', dst: 'g2' }],
    [{ op: 'rename', src: 'f', dst: 'g', expect: 'ok' }, { op: 'read', path: 'g', expect: 'ok:data' }, st('g2', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=5')], ['g2']);
  add('rename-across-dirs', 'rename a file between directories: both parents\' mtime/ctime change', [...dir('a'), ...dir('b'), ...file('a/f')],
    [{ op: 'rename', src: 'a/f', dst: 'b/f', expect: 'ok' }, { op: 'readdir', path: 'a', expect: 'ok:' }, { op: 'readdir', path: 'b', expect: 'ok:f' }], ['a', 'b']);
  add('rename-dir-across', 'rename a directory between parents: link counts move', [...dir('a'), ...dir('b'), ...dir('a/d')],
    [{ op: 'rename', src: 'a/d', dst: 'b/d', expect: 'ok' }, { op: 'stat', path: 'a', fields: ['nlink'], expect: 'ok:nlink=2' }, { op: 'stat', path: 'b', fields: ['nlink'], expect: 'ok:nlink=3' }, { op: 'stat', path: 'b/d/..', fields: ['nlink'], expect: 'ok:nlink=3' }], ['a', 'b', 'a/d']);
  add('rename-dir-empty', 'rename a directory over an empty directory', [...dir('a'), ...dir('b')], [{ op: 'rename', src: 'a', dst: 'b', expect: 'ok' }, { op: 'stat', path: '.', fields: ['nlink'], expect: 'ok:nlink=3' }]);
  add('rename-dir-notempty', 'rename a directory over a non-empty one → ENOTEMPTY', [...dir('a'), ...dir('b'), ...file('b/f')], [{ op: 'rename', src: 'a', dst: 'b', expect: 'ENOTEMPTY' }]);
  add('rename-file-to-dir', 'rename a file over a directory → EISDIR', [...file('f'), ...dir('d')], [{ op: 'rename', src: 'f', dst: 'd', expect: 'EISDIR' }]);
  add('rename-dir-to-file', 'rename a directory over a file → ENOTDIR', [...file('f'), ...dir('d')], [{ op: 'rename', src: 'd', dst: 'f', expect: 'ENOTDIR' }]);
  add('rename-into-self', 'rename a directory into its own subdirectory → EINVAL', [...dir('d'), ...dir('d/e')], [{ op: 'rename', src: 'd', dst: 'd/e/x', expect: 'EINVAL' }]);
  add('rename-dot', 'rename of "." → EBUSY', dir('d'), [{ op: 'rename', src: 'd/.', dst: 'x', expect: 'EBUSY' }]);
  add('rename-same-inode', 'rename between two links of one inode does nothing', [...file('f'), { op: 'link', src: 'f', dst: 'g' }], [{ op: 'rename', src: 'f', dst: 'g', expect: 'ok' }, { op: 'readdir', path: '.', expect: 'ok:f,g' }, st('f', 'ok:reg mode=0644 uid=0 gid=0 nlink=2 size=4')]);
  add('rename-same-name', 'rename of a name to itself', file('f'), [{ op: 'rename', src: 'f', dst: 'f', expect: 'ok' }, st('f')]);
  add('rename-exdev', 'rename to another filesystem → EXDEV', file('f'), [{ op: 'rename', src: 'f', dst: `${OTHER}/rename-exdev`, expect: 'EXDEV' }]);
  add('rename-symlink', 'rename moves a symlink, not its target', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'rename', src: 's', dst: 't', expect: 'ok' }, { op: 'readlink', path: 't', expect: 'ok:f' }, st('f')]);
  add('rename-noreplace', 'RENAME_NOREPLACE onto an existing name → EEXIST', [...file('f'), ...file('g')], [{ op: 'rename', src: 'f', dst: 'g', flags: 'noreplace', expect: 'EEXIST' }]);
  add('rename-noreplace-new', 'RENAME_NOREPLACE to a new name', file('f'), [{ op: 'rename', src: 'f', dst: 'g', flags: 'noreplace', expect: 'ok' }]);
  add('rename-exchange', 'RENAME_EXCHANGE swaps a file and a directory', [...file('f'), ...dir('d'), ...file('d/in')],
    [{ op: 'rename', src: 'f', dst: 'd', flags: 'exchange', expect: 'ok' }, { op: 'read', path: 'd', expect: 'ok:data' }, { op: 'readdir', path: 'f', expect: 'ok:in' }]);
  add('rename-exchange-missing', 'RENAME_EXCHANGE with a missing name → ENOENT', file('f'), [{ op: 'rename', src: 'f', dst: 'g', flags: 'exchange', expect: 'ENOENT' }]);
  add('rename-nowrite-src', 'rename out of a directory without write permission → EACCES', [...dir('a', 0o755), ...file('a/f', 0o666), ...dir('b', 0o777)], [{ op: 'rename', src: 'a/f', dst: 'b/f', as: U1, expect: 'EACCES' }]);
  add('rename-nowrite-dst', 'rename into a directory without write permission → EACCES', [...dir('a', 0o777), ...file('a/f'), own('a/f', U1), ...dir('b', 0o755)], [{ op: 'rename', src: 'a/f', dst: 'b/f', as: U1, expect: 'EACCES' }]);
  add('rename-dir-not-writable', 'moving a directory to another parent needs write permission on it (its ..)', [...dir('a', 0o777), ...dir('b', 0o777), ...dir('a/d', 0o755)],
    [{ op: 'rename', src: 'a/d', dst: 'b/d', as: U1, expect: 'EACCES' }, { op: 'rename', src: 'a/d', dst: 'a/e', as: U1, expect: 'ok' }]);
  add('rename-user-ok', 'a user renames in a directory of its own', [...dir('a', 0o777), ...file('a/f'), own('a/f', U1)], [{ op: 'rename', src: 'a/f', dst: 'a/g', as: U1, expect: 'ok' }, st('a/g')], ['a/f', 'a']);

  // ---- unlink / rmdir ----
  add('unlink-file', 'unlink: the name is gone, the dir\'s mtime/ctime change', file('f'), [{ op: 'unlink', path: 'f', expect: 'ok' }, st('f', 'ENOENT')], ['.']);
  add('unlink-link', 'unlink of one of two links changes the other\'s ctime and nlink', [...file('f'), { op: 'link', src: 'f', dst: 'g' }], [{ op: 'unlink', path: 'f', expect: 'ok' }, st('g', 'ok:reg mode=0644 uid=0 gid=0 nlink=1 size=4')], ['g']);
  add('unlink-dir', 'unlink of a directory → EISDIR', dir('d'), [{ op: 'unlink', path: 'd', expect: 'EISDIR' }]);
  add('unlink-symlink', 'unlink of a symlink removes the link only', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'unlink', path: 's', expect: 'ok' }, st('f')], ['f']);
  add('unlink-fifo', 'unlink of a fifo', [{ op: 'mkfifo', path: 'q' }], [{ op: 'unlink', path: 'q', expect: 'ok' }]);
  add('unlink-nowrite', 'unlink in a directory without write permission → EACCES', [...dir('d', 0o755), ...file('d/f', 0o666)], [{ op: 'unlink', path: 'd/f', as: U1, expect: 'EACCES' }]);
  add('unlink-user-ok', 'a user unlinks a root file in a 0777 directory', [...dir('d', 0o777), ...file('d/f', 0o600)], [{ op: 'unlink', path: 'd/f', as: U1, expect: 'ok' }]);
  add('unlink-slash', 'unlink "f/" → ENOTDIR', file('f'), [{ op: 'unlink', path: 'f/', expect: 'ENOTDIR' }]);
  add('rmdir-empty', 'rmdir: the parent loses a link, its mtime/ctime change', [...dir('p'), ...dir('p/d')], [{ op: 'rmdir', path: 'p/d', expect: 'ok' }, { op: 'stat', path: 'p', fields: ['nlink'], expect: 'ok:nlink=2' }], ['p']);
  add('rmdir-notempty', 'rmdir of a non-empty directory → ENOTEMPTY', [...dir('d'), ...file('d/f')], [{ op: 'rmdir', path: 'd', expect: 'ENOTEMPTY' }]);
  add('rmdir-notempty-dir', 'rmdir of a directory with a subdirectory → ENOTEMPTY', [...dir('d'), ...dir('d/e')], [{ op: 'rmdir', path: 'd', expect: 'ENOTEMPTY' }]);
  add('rmdir-file', 'rmdir of a file → ENOTDIR', file('f'), [{ op: 'rmdir', path: 'f', expect: 'ENOTDIR' }]);
  add('rmdir-symlink', 'rmdir of a symlink to a directory → ENOTDIR', [...dir('d'), { op: 'symlink', target: 'd', path: 's' }], [{ op: 'rmdir', path: 's', expect: 'ENOTDIR' }]);
  add('rmdir-dot', 'rmdir "d/." → EINVAL', dir('d'), [{ op: 'rmdir', path: 'd/.', expect: 'EINVAL' }]);
  add('rmdir-dotdot', 'rmdir "d/e/.." → ENOTEMPTY', [...dir('d'), ...dir('d/e')], [{ op: 'rmdir', path: 'd/e/..', expect: 'ENOTEMPTY' }]);
  add('rmdir-trailing-slash', 'rmdir "d/" works', dir('d'), [{ op: 'rmdir', path: 'd/', expect: 'ok' }]);
  add('rmdir-nowrite', 'rmdir in a directory without write permission → EACCES', [...dir('p', 0o755), ...dir('p/d', 0o777)], [{ op: 'rmdir', path: 'p/d', as: U1, expect: 'EACCES' }]);

  // ---- the sticky bit ----
  const sticky = (owner: Who = ROOT): Step[] => [...dir('t', 0o1777), own('t', owner), ...file('t/f', 0o666), own('t/f', U1), ...dir('t/d', 0o777), own('t/d', U1)];
  for (const [who, name] of [[U1, 'owner'], [U2, 'other'], [ROOT, 'root']] as [Who, string][]) {
    const ok = who !== U2;
    add(`sticky-unlink-${name}`, `sticky dir: unlink of U1's file by ${name} → ${ok ? 'ok' : 'EPERM'}`, sticky(), [{ op: 'unlink', path: 't/f', as: who, expect: ok ? 'ok' : 'EPERM' }]);
    add(`sticky-rename-${name}`, `sticky dir: rename of U1's file by ${name} → ${ok ? 'ok' : 'EPERM'}`, sticky(), [{ op: 'rename', src: 't/f', dst: 't/g', as: who, expect: ok ? 'ok' : 'EPERM' }]);
    add(`sticky-rmdir-${name}`, `sticky dir: rmdir of U1's directory by ${name} → ${ok ? 'ok' : 'EPERM'}`, sticky(), [{ op: 'rmdir', path: 't/d', as: who, expect: ok ? 'ok' : 'EPERM' }]);
    add(`sticky-replace-${name}`, `sticky dir: rename onto U1's file by ${name} → ${ok ? 'ok' : 'EPERM'}`, [...sticky(), ...file('t/mine', 0o666), own('t/mine', who)], [{ op: 'rename', src: 't/mine', dst: 't/f', as: who, expect: ok ? 'ok' : 'EPERM' }]);
  }
  add('sticky-dir-owner', 'sticky dir: the directory\'s owner may unlink others\' files', sticky(U2), [{ op: 'unlink', path: 't/f', as: U2, expect: 'ok' }]);
  add('sticky-write-ok', 'sticky dir: others may still write a 0666 file in it', sticky(), [{ op: 'write', path: 't/f', as: U2, data: 'w', expect: 'ok:1' }]);
  add('sticky-create-ok', 'sticky dir: anyone creates files in it', sticky(), [{ op: 'open', path: 't/n', flags: ['O_CREAT', 'O_WRONLY'], as: U2, expect: 'ok' }, st('t/n')]);
  add('sticky-on-file', 'chmod 1644 on a file keeps the bit for root', file('f'), [{ op: 'chmod', path: 'f', mode: 0o1644, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode'], expect: 'ok:mode=1644' }]);

  // ---- chmod ----
  for (const mode of [0o000, 0o600, 0o644, 0o755, 0o777, 0o4755, 0o2755, 0o1777, 0o7777]) {
    add(`chmod-root-${mode.toString(8)}`, `chmod ${mode.toString(8)} by root; only ctime changes`, file('f'), [{ op: 'chmod', path: 'f', mode, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode'], expect: `ok:mode=${mode.toString(8).padStart(4, '0')}` }], ['f']);
    add(`chmod-dir-${mode.toString(8)}`, `chmod ${mode.toString(8)} of a directory`, dir('d'), [{ op: 'chmod', path: 'd', mode, expect: 'ok' }, { op: 'stat', path: 'd', fields: ['mode'] }], ['d']);
  }
  add('chmod-nonowner', 'chmod by a non-owner → EPERM', file('f', 0o666), [{ op: 'chmod', path: 'f', mode: 0o600, as: U1, expect: 'EPERM' }]);
  add('chmod-owner', 'chmod by the owner', [...file('f'), own('f', U1)], [{ op: 'chmod', path: 'f', mode: 0o600, as: U1, expect: 'ok' }, st('f')]);
  add('chmod-owner-sgid-nonmember', 'the owner setting S_ISGID for a group it is not in: the bit is dropped', [...file('f'), own('f', [1001, 1002])], [{ op: 'chmod', path: 'f', mode: 0o2755, as: U1, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode'], expect: 'ok:mode=0755' }]);
  add('chmod-owner-sgid-member', 'the owner setting S_ISGID for its own group keeps it', [...file('f'), own('f', [1001, 2000])], [{ op: 'chmod', path: 'f', mode: 0o2755, as: U1, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode'], expect: 'ok:mode=2755' }]);
  add('chmod-owner-suid', 'the owner may set S_ISUID', [...file('f'), own('f', U1)], [{ op: 'chmod', path: 'f', mode: 0o4755, as: U1, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode'], expect: 'ok:mode=4755' }]);
  add('chmod-owner-sticky-file', 'a user setting the sticky bit on its file', [...file('f'), own('f', U1)], [{ op: 'chmod', path: 'f', mode: 0o1644, as: U1, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode'] }]);
  add('chmod-symlink-follows', 'chmod through a symlink changes the target', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'chmod', path: 's', mode: 0o600, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode'], expect: 'ok:mode=0600' }, { op: 'lstat', path: 's', fields: ['mode'], expect: 'ok:mode=0777' }], ['f', 's']);
  add('fchmod-owner', 'fchmod by the owner', [...file('f'), own('f', U1)], [{ op: 'fchmod', path: 'f', mode: 0o640, as: U1, expect: 'ok' }, st('f')], ['f']);
  add('fchmod-nonowner', 'fchmod by a non-owner → EPERM', file('f', 0o644), [{ op: 'fchmod', path: 'f', mode: 0o600, as: U1, expect: 'EPERM' }]);

  // ---- chown ----
  add('chown-root', 'root gives a file away; only ctime changes', file('f'), [{ op: 'chown', path: 'f', uid: 1001, gid: 1002, expect: 'ok' }, st('f', 'ok:reg mode=0644 uid=1001 gid=1002 nlink=1 size=4')], ['f']);
  add('chown-noop', 'chown -1 -1 changes the ctime', file('f'), [{ op: 'chown', path: 'f', uid: -1, gid: -1, expect: 'ok' }], ['f']);
  add('chown-same', 'chown to the same owner', file('f'), [{ op: 'chown', path: 'f', uid: 0, gid: 0, expect: 'ok' }], ['f']);
  add('chown-user-giveaway', 'a user cannot give its file away → EPERM', [...file('f'), own('f', U1)], [{ op: 'chown', path: 'f', uid: 1002, gid: -1, as: U1, expect: 'EPERM' }]);
  add('chown-user-same-uid', 'a user "chowns" to itself', [...file('f'), own('f', U1)], [{ op: 'chown', path: 'f', uid: 1001, gid: -1, as: U1, expect: 'ok' }]);
  add('chown-user-member-group', 'the owner changes the group to one of its groups', [...file('f'), own('f', U1)], [{ op: 'chown', path: 'f', uid: -1, gid: 2000, as: U1, expect: 'ok' }, st('f', 'ok:reg mode=0644 uid=1001 gid=2000 nlink=1 size=4')]);
  add('chown-user-other-group', 'the owner cannot change the group to one it is not in → EPERM', [...file('f'), own('f', U1)], [{ op: 'chown', path: 'f', uid: -1, gid: 1002, as: U1, expect: 'EPERM' }]);
  add('chown-nonowner-group', 'a non-owner cannot change the group → EPERM', file('f', 0o666), [{ op: 'chown', path: 'f', uid: -1, gid: 2000, as: U1, expect: 'EPERM' }]);
  add('chown-nonowner-noop', 'a non-owner chown -1 -1 changes nothing and succeeds', file('f', 0o666), [{ op: 'chown', path: 'f', uid: -1, gid: -1, as: U1, expect: 'ok' }], ['f']);
  for (const mode of [0o4755, 0o2755, 0o6755, 0o2745, 0o6777]) {
    add(`chown-clears-${mode.toString(8)}`, `chown by root of a ${mode.toString(8)} file clears setuid (and setgid when group-executable)`, file('f', mode),
      [{ op: 'chown', path: 'f', uid: 1001, gid: 1001, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode', 'uid', 'gid'] }]);
    add(`chown-user-clears-${mode.toString(8)}`, `chgrp by the owner of a ${mode.toString(8)} file`, [...file('f', mode), own('f', U1), { op: 'chmod', path: 'f', mode }],
      [{ op: 'chown', path: 'f', uid: -1, gid: 2000, as: U1, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode', 'uid', 'gid'] }]);
  }
  add('chown-dir-keeps-sgid', 'chown of a setgid directory keeps the bit', dir('d', 0o2755), [{ op: 'chown', path: 'd', uid: 1001, gid: 1001, expect: 'ok' }, { op: 'stat', path: 'd', fields: ['mode'], expect: 'ok:mode=2755' }]);
  add('chown-symlink-follows', 'chown through a symlink changes the target', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'chown', path: 's', uid: 1001, gid: 1001, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['uid', 'gid'], expect: 'ok:uid=1001 gid=1001' }, { op: 'lstat', path: 's', fields: ['uid', 'gid'], expect: 'ok:uid=0 gid=0' }]);
  add('lchown-symlink', 'lchown changes the symlink itself', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'chown', path: 's', uid: 1001, gid: 1001, nofollow: true, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['uid', 'gid'], expect: 'ok:uid=0 gid=0' }, { op: 'lstat', path: 's', fields: ['uid', 'gid'], expect: 'ok:uid=1001 gid=1001' }], ['s', 'f']);
  add('fchown-root', 'fchown by root', file('f'), [{ op: 'fchown', path: 'f', uid: 1002, gid: 2000, expect: 'ok' }, st('f')], ['f']);
  add('fchown-user', 'fchown by a non-owner → EPERM', file('f', 0o666), [{ op: 'fchown', path: 'f', flags: ['O_RDWR'], uid: 1001, gid: -1, as: U1, expect: 'EPERM' }]);

  // ---- setuid/setgid cleared on write and truncate ----
  for (const mode of [0o6777, 0o4777, 0o2777, 0o2767, 0o1777]) {
    const m = mode.toString(8);
    add(`write-clears-${m}-other`, `write by a non-owner to a ${m} file clears setuid/setgid`, file('f', mode), [{ op: 'write', path: 'f', data: 'w', as: U1, expect: 'ok:1' }, { op: 'stat', path: 'f', fields: ['mode'] }], ['f']);
    add(`write-keeps-${m}-root`, `write by root to a ${m} file keeps the bits`, file('f', mode), [{ op: 'write', path: 'f', data: 'w', expect: 'ok:1' }, { op: 'stat', path: 'f', fields: ['mode'] }]);
    add(`write-clears-${m}-owner`, `write by the owner (not root) to a ${m} file`, [...file('f', mode), own('f', U1), { op: 'chmod', path: 'f', mode }], [{ op: 'write', path: 'f', data: 'w', as: U1, expect: 'ok:1' }, { op: 'stat', path: 'f', fields: ['mode'] }]);
    add(`truncate-clears-${m}-other`, `truncate by a non-owner of a ${m} file`, file('f', mode), [{ op: 'truncate', path: 'f', len: 1, as: U1, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode', 'size'] }], ['f']);
    add(`ftruncate-clears-${m}-other`, `ftruncate by a non-owner of a ${m} file`, file('f', mode), [{ op: 'ftruncate', path: 'f', len: 10, as: U1, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode', 'size'] }]);
    add(`truncate-keeps-${m}-root`, `truncate by root of a ${m} file`, file('f', mode), [{ op: 'truncate', path: 'f', len: 1, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode', 'size'] }]);
  }
  add('write-group-member-sgid', 'write by a group member to a 2775 file', [...file('f', 0o2775), own('f', [0, 2000]), { op: 'chmod', path: 'f', mode: 0o2775 }], [{ op: 'write', path: 'f', data: 'w', as: U1, expect: 'ok:1' }, { op: 'stat', path: 'f', fields: ['mode'] }]);

  // ---- truncate / ftruncate ----
  for (const len of [0, 1, 4, 100, 5000, 1 << 20]) {
    add(`truncate-${len}`, `truncate to ${len}: size; mtime/ctime change unless the size stays`, file('f'), [{ op: 'truncate', path: 'f', len, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['size'], expect: `ok:size=${len}` }, { op: 'read', path: 'f' }], ['f']);
    add(`ftruncate-${len}`, `ftruncate to ${len}`, file('f'), [{ op: 'ftruncate', path: 'f', len, expect: 'ok' }, { op: 'stat', path: 'f', fields: ['size'], expect: `ok:size=${len}` }], ['f']);
  }
  add('truncate-dir', 'truncate of a directory → EISDIR', dir('d'), [{ op: 'truncate', path: 'd', len: 0, expect: 'EISDIR' }]);
  add('truncate-negative', 'truncate to -1 → EINVAL', file('f'), [{ op: 'truncate', path: 'f', len: -1, expect: 'EINVAL' }]);
  add('ftruncate-negative', 'ftruncate to -1 → EINVAL', file('f'), [{ op: 'ftruncate', path: 'f', len: -1, expect: 'EINVAL' }]);
  add('ftruncate-rdonly', 'ftruncate on an O_RDONLY descriptor → EINVAL', file('f'), [{ op: 'ftruncate', path: 'f', flags: ['O_RDONLY'], len: 0, expect: 'EINVAL' }]);
  add('truncate-fifo', 'truncate of a fifo → EINVAL', [{ op: 'mkfifo', path: 'q' }], [{ op: 'truncate', path: 'q', len: 0, expect: 'EINVAL' }]);
  add('truncate-nonowner-nowrite', 'truncate by a non-owner without write permission → EACCES', file('f', 0o644), [{ op: 'truncate', path: 'f', len: 0, as: U1, expect: 'EACCES' }]);
  add('truncate-nonowner-write', 'truncate by a non-owner with write permission', file('f', 0o646), [{ op: 'truncate', path: 'f', len: 2, as: U1, expect: 'ok' }, st('f')], ['f']);
  add('truncate-owner-nowrite', 'truncate by the owner of a 0444 file → EACCES', [...file('f', 0o444), own('f', U1)], [{ op: 'truncate', path: 'f', len: 0, as: U1, expect: 'EACCES' }]);
  add('truncate-symlink', 'truncate through a symlink', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'truncate', path: 's', len: 2, expect: 'ok' }, st('f')]);
  add('truncate-same-size', 'truncate to the current size', file('f'), [{ op: 'truncate', path: 'f', len: 4, expect: 'ok' }], ['f']);
  add('ftruncate-same-size', 'ftruncate to the current size', file('f'), [{ op: 'ftruncate', path: 'f', len: 4, expect: 'ok' }], ['f']);

  // ---- utimensat ----
  const T1 = [1_234_567_890, 123_456_789], T2 = [1_500_000_000, 987_654_321];
  add('utime-explicit', 'utimensat with explicit times sets them (ns)', file('f'), [{ op: 'utime', path: 'f', a: T1, m: T2, expect: 'ok' }, { op: 'times', path: 'f' }], ['f']);
  add('utime-now', 'utimensat UTIME_NOW both', file('f'), [{ op: 'utime', path: 'f', a: 'now', m: 'now', expect: 'ok' }], ['f']);
  add('utime-null', 'utimensat with NULL times', file('f'), [{ op: 'utime', path: 'f', null: true, expect: 'ok' }], ['f']);
  add('utime-omit-a', 'UTIME_OMIT for atime: mtime and ctime change', file('f'), [{ op: 'utime', path: 'f', a: 'omit', m: 'now', expect: 'ok' }], ['f']);
  add('utime-omit-m', 'UTIME_OMIT for mtime: atime and ctime change', file('f'), [{ op: 'utime', path: 'f', a: 'now', m: 'omit', expect: 'ok' }], ['f']);
  add('utime-omit-both', 'UTIME_OMIT for both: nothing changes', file('f'), [{ op: 'utime', path: 'f', a: 'omit', m: 'omit', expect: 'ok' }], ['f']);
  add('utime-explicit-a', 'an explicit atime and UTIME_OMIT mtime', file('f'), [{ op: 'utime', path: 'f', a: [1000000000, 0], m: 'omit', expect: 'ok' }, { op: 'times', path: 'f' }], ['f']);
  add('utime-pre-epoch', 'a time before 1970', file('f'), [{ op: 'utime', path: 'f', a: [-1000000000, 0], m: [-1000000000, 0], expect: 'ok' }, { op: 'times', path: 'f' }]);
  add('utime-2100', 'a time after 2038', file('f'), [{ op: 'utime', path: 'f', a: [4102444800, 0], m: [4102444800, 500000000], expect: 'ok' }, { op: 'times', path: 'f' }]);
  add('utime-dir', 'utimensat on a directory', dir('d'), [{ op: 'utime', path: 'd', a: [1100000000, 0], m: [1200000000, 0], expect: 'ok' }, { op: 'times', path: 'd' }], ['d']);
  add('utime-nofollow', 'AT_SYMLINK_NOFOLLOW sets the symlink\'s own times', [...file('f'), { op: 'symlink', target: 'f', path: 's' }],
    [{ op: 'utime', path: 's', a: [1100000000, 0], m: [1200000000, 0], nofollow: true, expect: 'ok' }, { op: 'times', path: 's' }], ['s', 'f']);
  add('utime-follow', 'without it the target\'s times change', [...file('f'), { op: 'symlink', target: 'f', path: 's' }],
    [{ op: 'utime', path: 's', a: [1100000000, 0], m: [1200000000, 0], expect: 'ok' }, { op: 'times', path: 'f' }], ['s', 'f']);
  add('utime-owner-explicit', 'the owner sets explicit times', [...file('f'), own('f', U1)], [{ op: 'utime', path: 'f', a: [1100000000, 0], m: [1100000000, 0], as: U1, expect: 'ok' }, { op: 'times', path: 'f' }]);
  add('utime-writer-now', 'a non-owner with write permission may set the times to now', file('f', 0o666), [{ op: 'utime', path: 'f', a: 'now', m: 'now', as: U1, expect: 'ok' }], ['f']);
  add('utime-writer-null', 'a non-owner with write permission may use NULL times', file('f', 0o666), [{ op: 'utime', path: 'f', null: true, as: U1, expect: 'ok' }], ['f']);
  add('utime-writer-explicit', 'a non-owner with write permission cannot set explicit times → EPERM', file('f', 0o666), [{ op: 'utime', path: 'f', a: [1100000000, 0], m: [1100000000, 0], as: U1, expect: 'EPERM' }]);
  add('utime-writer-omit-now', 'a non-owner writer: UTIME_OMIT + UTIME_NOW', file('f', 0o666), [{ op: 'utime', path: 'f', a: 'omit', m: 'now', as: U1 }]);
  add('utime-nonwriter-now', 'a non-owner without write permission, UTIME_NOW → EACCES', file('f', 0o644), [{ op: 'utime', path: 'f', a: 'now', m: 'now', as: U1, expect: 'EACCES' }]);
  add('utime-nonwriter-explicit', 'a non-owner without write permission, explicit → EPERM', file('f', 0o644), [{ op: 'utime', path: 'f', a: [1100000000, 0], m: [1100000000, 0], as: U1, expect: 'EPERM' }]);
  add('utime-nonowner-omit', 'UTIME_OMIT both by anyone is allowed', file('f', 0o644), [{ op: 'utime', path: 'f', a: 'omit', m: 'omit', as: U1, expect: 'ok' }], ['f']);

  // ---- which times each call changes, on which inode ----
  add('times-mkdir', 'mkdir: the parent mc', dir('p'), [{ op: 'mkdir', path: 'p/d' }], ['p']);
  add('times-mknod', 'mknod: the parent mc', dir('p'), [{ op: 'mknod', path: 'p/n', kind: 'fifo' }], ['p']);
  add('times-symlink', 'symlink: the parent mc', dir('p'), [{ op: 'symlink', target: 'x', path: 'p/s' }], ['p']);
  add('times-rmdir', 'rmdir: the parent mc', [...dir('p'), ...dir('p/d')], [{ op: 'rmdir', path: 'p/d' }], ['p', 'p/d']);
  add('times-rename-dir-dotdot', 'rename a directory to another parent: the moved dir\'s ctime (its .. changed)', [...dir('a'), ...dir('b'), ...dir('a/d')], [{ op: 'rename', src: 'a/d', dst: 'b/d' }], ['a', 'b']);
  add('times-rename-replace', 'rename over a file: the replaced inode\'s ctime', [...file('f'), ...file('g'), { op: 'link', src: 'g', dst: 'h' }], [{ op: 'rename', src: 'f', dst: 'g' }], ['h', '.']);
  add('times-readdir', 'readdir changes the directory\'s atime', [...dir('d'), ...file('d/f')], [{ op: 'readdir', path: 'd' }], ['d']);
  add('times-readlink', 'readlink changes the symlink\'s atime', [{ op: 'symlink', target: 'x'.repeat(100), path: 's' }], [{ op: 'readlink', path: 's' }], ['s']);
  add('times-stat', 'stat changes nothing', file('f'), [st('f')], ['f']);
  add('times-setxattr', 'setxattr changes the ctime', file('f'), [{ op: 'setxattr', path: 'f', name: 'user.a', value: 'v' }], ['f']);
  add('times-removexattr', 'removexattr changes the ctime', [...file('f'), { op: 'setxattr', path: 'f', name: 'user.a', value: 'v' }], [{ op: 'removexattr', path: 'f', name: 'user.a' }], ['f']);
  add('times-getxattr', 'getxattr changes nothing', [...file('f'), { op: 'setxattr', path: 'f', name: 'user.a', value: 'v' }], [{ op: 'getxattr', path: 'f', name: 'user.a' }], ['f']);
  add('times-write-empty', 'a write of 0 bytes', file('f'), [{ op: 'write', path: 'f', data: '' }], ['f']);
  add('times-link-dst-dir', 'link: the target directory mc, the inode c', [...file('f'), ...dir('d')], [{ op: 'link', src: 'f', dst: 'd/l' }], ['f', 'd', '.']);
  add('times-chmod-dir', 'chmod of a dir: ctime only', dir('d'), [{ op: 'chmod', path: 'd', mode: 0o700 }], ['d', '.']);

  // ---- permission checks on directories ----
  add('dir-noexec-stat', 'stat through a directory without x → EACCES', [...dir('d', 0o766), ...file('d/f')], [st('d/f', 'EACCES', U1)]);
  add('dir-noread-readdir', 'readdir of a directory without r → EACCES', [...dir('d', 0o711), ...file('d/f')], [{ op: 'opendir', path: 'd', as: U1, expect: 'EACCES' }, { op: 'stat', path: 'd/f', fields: ['type'], as: U1, expect: 'ok:reg' }]);
  add('dir-read-noexec', 'a 0744 directory lists for others but its entries cannot be stat\'ed', [...dir('d', 0o744), ...file('d/f')], [{ op: 'opendir', path: 'd', as: U1, expect: 'ok:1' }, st('d/f', 'EACCES', U1)]);
  add('dir-chdir-noexec', 'chdir into a directory without x → EACCES', dir('d', 0o766), [{ op: 'chdir', path: 'd', as: U1, expect: 'EACCES' }]);
  add('dir-chdir-ok', 'chdir into a 0711 directory', dir('d', 0o711), [{ op: 'chdir', path: 'd', as: U1, expect: 'ok' }]);
  add('dir-group-search', 'a group member passes a 0710 directory of its group', [...dir('d', 0o710), own('d', [0, 2000]), ...file('d/f')], [st('d/f', undefined, U1), st('d/f', undefined, U2)]);
  for (const [mode, m] of [[0o4, 'R_OK'], [0o2, 'W_OK'], [0o1, 'X_OK']] as [number, string][]) {
    for (const fmode of [0o700, 0o755, 0o644, 0o600, 0o777, 0o111]) {
      add(`access-${m}-${fmode.toString(8)}`, `access ${m} as uid 1001 on a root file of mode ${fmode.toString(8)}`, file('f', fmode), [{ op: 'access', path: 'f', mode, as: U1 }, { op: 'access', path: 'f', mode }]);
    }
  }

  // ---- xattrs ----
  add('xattr-set-get', 'setxattr then getxattr', file('f'), [{ op: 'setxattr', path: 'f', name: 'user.k', value: 'value', expect: 'ok' }, { op: 'getxattr', path: 'f', name: 'user.k', expect: 'ok:value' }]);
  add('xattr-list', 'listxattr lists user and trusted names for root', [...file('f'), { op: 'setxattr', path: 'f', name: 'user.b', value: '1' }, { op: 'setxattr', path: 'f', name: 'user.a', value: '2' }, { op: 'setxattr', path: 'f', name: 'trusted.t', value: '3' }],
    [{ op: 'listxattr', path: 'f', expect: 'ok:trusted.t,user.a,user.b' }, { op: 'listxattr', path: 'f', as: U1, expect: 'ok:user.a,user.b' }]);
  add('xattr-create-exists', 'XATTR_CREATE on an existing name → EEXIST', [...file('f'), { op: 'setxattr', path: 'f', name: 'user.k', value: 'v' }], [{ op: 'setxattr', path: 'f', name: 'user.k', value: 'w', flags: 'create', expect: 'EEXIST' }, { op: 'getxattr', path: 'f', name: 'user.k', expect: 'ok:v' }]);
  add('xattr-replace-missing', 'XATTR_REPLACE of a missing name → ENODATA', file('f'), [{ op: 'setxattr', path: 'f', name: 'user.k', value: 'w', flags: 'replace', expect: 'ENODATA' }]);
  add('xattr-replace', 'XATTR_REPLACE of an existing name', [...file('f'), { op: 'setxattr', path: 'f', name: 'user.k', value: 'v' }], [{ op: 'setxattr', path: 'f', name: 'user.k', value: 'longer value', flags: 'replace', expect: 'ok' }, { op: 'getxattr', path: 'f', name: 'user.k', expect: 'ok:longer value' }]);
  add('xattr-get-missing', 'getxattr of a missing name → ENODATA', file('f'), [{ op: 'getxattr', path: 'f', name: 'user.none', expect: 'ENODATA' }]);
  add('xattr-remove-missing', 'removexattr of a missing name → ENODATA', file('f'), [{ op: 'removexattr', path: 'f', name: 'user.none', expect: 'ENODATA' }]);
  add('xattr-remove', 'removexattr', [...file('f'), { op: 'setxattr', path: 'f', name: 'user.k', value: 'v' }], [{ op: 'removexattr', path: 'f', name: 'user.k', expect: 'ok' }, { op: 'listxattr', path: 'f', expect: 'ok:' }]);
  add('xattr-empty-value', 'an empty value', file('f'), [{ op: 'setxattr', path: 'f', name: 'user.e', value: '', expect: 'ok' }, { op: 'getxattr', path: 'f', name: 'user.e', expect: 'ok:' }]);
  for (const n of [100, 1000, 3000, 4000, 65536, 65537]) {
    add(`xattr-size-${n}`, `a ${n}-byte value`, file('f'), [{ op: 'setxattr', path: 'f', name: 'user.big', value: 'v'.repeat(n) }, { op: 'getxattr', path: 'f', name: 'user.big' }]);
  }
  add('xattr-name-255', 'a 255-byte name', file('f'), [{ op: 'setxattr', path: 'f', name: `user.${'k'.repeat(250)}`, value: 'v', expect: 'ok' }, { op: 'listxattr', path: 'f' }]);
  add('xattr-name-256', 'a 256-byte name → ERANGE', file('f'), [{ op: 'setxattr', path: 'f', name: `user.${'k'.repeat(251)}`, value: 'v', expect: 'ERANGE' }]);
  add('xattr-bad-namespace', 'an unknown namespace → EOPNOTSUPP (errno 95, which Python names ENOTSUP)', file('f'), [{ op: 'setxattr', path: 'f', name: 'bogus.k', value: 'v', expect: 'ENOTSUP' }]);
  add('xattr-user-symlink', 'user.* on a symlink itself → EPERM', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'setxattr', path: 's', name: 'user.k', value: 'v', nofollow: true, expect: 'EPERM' }]);
  add('xattr-user-symlink-follow', 'user.* through a symlink sets the target\'s', [...file('f'), { op: 'symlink', target: 'f', path: 's' }], [{ op: 'setxattr', path: 's', name: 'user.k', value: 'v', expect: 'ok' }, { op: 'getxattr', path: 'f', name: 'user.k', expect: 'ok:v' }]);
  add('xattr-user-fifo', 'user.* on a fifo → EPERM', [{ op: 'mkfifo', path: 'q' }], [{ op: 'setxattr', path: 'q', name: 'user.k', value: 'v', expect: 'EPERM' }]);
  add('xattr-user-dir', 'user.* on a directory', dir('d'), [{ op: 'setxattr', path: 'd', name: 'user.k', value: 'v', expect: 'ok' }, { op: 'getxattr', path: 'd', name: 'user.k', expect: 'ok:v' }]);
  add('xattr-trusted-root', 'trusted.* by root', file('f'), [{ op: 'setxattr', path: 'f', name: 'trusted.k', value: 'v', expect: 'ok' }, { op: 'getxattr', path: 'f', name: 'trusted.k', expect: 'ok:v' }]);
  add('xattr-trusted-user', 'trusted.* by a user → EPERM', file('f', 0o666), [{ op: 'setxattr', path: 'f', name: 'trusted.k', value: 'v', as: U1, expect: 'EPERM' }]);
  add('xattr-trusted-user-get', 'getxattr trusted.* by a user → ENODATA', [...file('f', 0o666), { op: 'setxattr', path: 'f', name: 'trusted.k', value: 'v' }], [{ op: 'getxattr', path: 'f', name: 'trusted.k', as: U1, expect: 'ENODATA' }]);
  add('xattr-user-nowrite', 'setxattr user.* without write permission → EACCES', file('f', 0o644), [{ op: 'setxattr', path: 'f', name: 'user.k', value: 'v', as: U1, expect: 'EACCES' }]);
  add('xattr-user-write', 'setxattr user.* with write permission', file('f', 0o666), [{ op: 'setxattr', path: 'f', name: 'user.k', value: 'v', as: U1, expect: 'ok' }]);
  add('xattr-user-noread', 'getxattr user.* without read permission → EACCES', [...file('f', 0o600), { op: 'setxattr', path: 'f', name: 'user.k', value: 'v' }], [{ op: 'getxattr', path: 'f', name: 'user.k', as: U1, expect: 'EACCES' }]);
  add('xattr-user-read', 'getxattr user.* with read permission', [...file('f', 0o644), { op: 'setxattr', path: 'f', name: 'user.k', value: 'v' }], [{ op: 'getxattr', path: 'f', name: 'user.k', as: U1, expect: 'ok:v' }]);
  add('xattr-many', 'twenty attributes', file('f'), [...Array.from({ length: 20 }, (_, i) => ({ op: 'setxattr', path: 'f', name: `user.a${i}`, value: `v${i}`.repeat(10) })), { op: 'listxattr', path: 'f' }, { op: 'getxattr', path: 'f', name: 'user.a7' }]);
  add('xattr-survives-rename', 'xattrs move with a rename', [...file('f'), { op: 'setxattr', path: 'f', name: 'user.k', value: 'v' }], [{ op: 'rename', src: 'f', dst: 'g' }, { op: 'getxattr', path: 'g', name: 'user.k', expect: 'ok:v' }]);
  add('xattr-on-link', 'xattrs are per inode: seen through a hard link', [...file('f'), { op: 'link', src: 'f', dst: 'g' }], [{ op: 'setxattr', path: 'f', name: 'user.k', value: 'v' }, { op: 'getxattr', path: 'g', name: 'user.k', expect: 'ok:v' }]);

  // ---- POSIX ACLs ----
  const ACL = 'u::rw-,u:1001:rw-,g::r--,m::rw-,o::---';
  add('acl-set-get', 'an access ACL: set, read back; the group bits show the mask', file('f', 0o640), [{ op: 'setacl', path: 'f', acl: ACL, expect: 'ok' }, { op: 'getacl', path: 'f', expect: `ok:${ACL}` }, { op: 'stat', path: 'f', fields: ['mode'], expect: 'ok:mode=0660' }], ['f']);
  add('acl-grants', 'a named-user entry grants a user access', [...file('f', 0o640), { op: 'setacl', path: 'f', acl: ACL }], [{ op: 'write', path: 'f', data: 'acl', as: U1, expect: 'ok:3' }, { op: 'read', path: 'f', as: U2, expect: 'EACCES' }]);
  add('acl-mask-limits', 'the mask limits a named user', [...file('f', 0o640), { op: 'setacl', path: 'f', acl: 'u::rw-,u:1001:rw-,g::r--,m::r--,o::---' }], [{ op: 'write', path: 'f', data: 'acl', as: U1, expect: 'EACCES' }, { op: 'read', path: 'f', as: U1, expect: 'ok:data' }]);
  add('acl-chmod-mask', 'chmod of a file with an ACL sets the mask', [...file('f'), { op: 'setacl', path: 'f', acl: ACL }], [{ op: 'chmod', path: 'f', mode: 0o600, expect: 'ok' }, { op: 'getacl', path: 'f', expect: 'ok:u::rw-,u:1001:rw-,g::r--,m::---,o::---' }]);
  add('acl-minimal', 'a minimal ACL is the mode', file('f'), [{ op: 'setacl', path: 'f', acl: 'u::rwx,g::r-x,o::---', expect: 'ok' }, { op: 'stat', path: 'f', fields: ['mode'], expect: 'ok:mode=0750' }, { op: 'getacl', path: 'f' }]);
  add('acl-invalid', 'a named user without a mask → EINVAL', file('f'), [{ op: 'setacl', path: 'f', acl: 'u::rw-,u:1001:rw-,g::r--,o::---', expect: 'EINVAL' }]);
  add('acl-default-file', 'a default ACL on a file → EACCES', file('f'), [{ op: 'setacl', path: 'f', default: true, acl: ACL, expect: 'EACCES' }]);
  add('acl-default-inherit', 'a default ACL is inherited by new files (and the umask ignored)', [...dir('d'), { op: 'setacl', path: 'd', default: true, acl: 'u::rwx,u:1001:rwx,g::r-x,m::rwx,o::r-x' }],
    [{ op: 'open', path: 'd/n', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o666, expect: 'ok' }, { op: 'getacl', path: 'd/n' }, { op: 'stat', path: 'd/n', fields: ['mode'] },
      { op: 'mkdir', path: 'd/s', mode: 0o777 }, { op: 'getacl', path: 'd/s', default: true }, { op: 'stat', path: 'd/s', fields: ['mode'] }]);
  add('acl-by-nonowner', 'setting an ACL by a non-owner → EPERM', file('f', 0o666), [{ op: 'setacl', path: 'f', acl: ACL, as: U1, expect: 'EPERM' }]);
  add('acl-get-missing', 'getting an ACL never set → ENODATA', file('f'), [{ op: 'getacl', path: 'f', expect: 'ENODATA' }]);
  add('acl-dir-grants-search', 'an ACL on a directory grants search to a named user', [...dir('d', 0o700), ...file('d/f'), { op: 'setacl', path: 'd', acl: 'u::rwx,u:1001:--x,g::---,m::--x,o::---' }], [st('d/f', undefined, U1), st('d/f', undefined, U2)]);

  add('acl-chmod-recheck', 'chmod narrows and widens the mask: a named user\'s access follows at once (no stale cached ACL)', [...file('f', 0o640), { op: 'setacl', path: 'f', acl: ACL }],
    [{ op: 'write', path: 'f', data: 'a', as: U1, expect: 'ok:1' }, { op: 'chmod', path: 'f', mode: 0o640, expect: 'ok' }, { op: 'write', path: 'f', data: 'b', as: U1, expect: 'EACCES' },
      { op: 'chmod', path: 'f', mode: 0o660, expect: 'ok' }, { op: 'write', path: 'f', data: 'c', as: U1, expect: 'ok:1' }]);
  add('acl-default-inherit-more', 'a default ACL: a fifo and a directory get it (the umask 022 ignored); its named user may write a new file', [...dir('d'), { op: 'setacl', path: 'd', default: true, acl: 'u::rwx,u:1001:rw-,g::r-x,g:2000:rwx,m::rwx,o::---' }],
    [{ op: 'mkfifo', path: 'd/q', mode: 0o666, expect: 'ok' }, { op: 'getacl', path: 'd/q', expect: 'ok:u::rw-,u:1001:rw-,g::r-x,g:2000:rwx,m::rw-,o::---' }, { op: 'stat', path: 'd/q', fields: ['mode'], expect: 'ok:mode=0660' },
      { op: 'mkdir', path: 'd/s', mode: 0o777, expect: 'ok' }, { op: 'stat', path: 'd/s', fields: ['mode'], expect: 'ok:mode=0770' }, { op: 'getacl', path: 'd/s', default: true },
      { op: 'open', path: 'd/n', flags: ['O_CREAT', 'O_WRONLY'], mode: 0o664, expect: 'ok' }, { op: 'write', path: 'd/n', data: 'x', as: U1, expect: 'ok:1' }, { op: 'read', path: 'd/n', as: U2, expect: 'EACCES' }]);

  return cases;
}
