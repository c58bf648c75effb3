// POSIX ACLs on read-write ext4 through the kernel API, against the host kernel doing the
// same on a copy of the same image.
//
// One script of operations runs twice: through lkl-ts (k.sys, other users through
// k.sysAs) on one image, and through the host kernel (a Python child on a loop mount: the
// same system calls, the same umasks, other users by setgroups/setgid/setuid in a fork) on
// a copy. It covers what a default ACL gives new files, directories (both ACLs) and fifos
// (posix_acl_create: the umask is ignored then, and applied without a default ACL), chmod of
// a file with an extended ACL (posix_acl_chmod: the mask follows the group bits; without a
// mask the owning group's entry does), setting an ACL equivalent to the mode (the xattr
// goes, the mode takes its bits; S_ISGID goes for a setter outside the group), and
// permission checks that use the access ACL (named users and groups, the mask, an ACL the
// mode's group bits leave unused). Each step's outcome must be the host's, and where the
// result is known it is asserted too. Then e2fsck -fn must be clean and the host kernel,
// reading both images (getfacl -R -n, modes), must see the same tree.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_CREAT, O_EXCL, O_RDONLY, O_WRONLY, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'debugfs', 'losetup', 'mount', 'getfacl', 'python3'], { root: true });

const S_IFIFO = 0o010000;
const ERRNO: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 17: 'EEXIST', 22: 'EINVAL', 61: 'ENODATA', 95: 'EOPNOTSUPP' };

/* ---- ACL text <-> posix_acl_xattr bytes ---- */
const TAGS: [string, number][] = [['u', 0x01], ['u', 0x02], ['g', 0x04], ['g', 0x08], ['m', 0x10], ['o', 0x20]];
/** 'u::rw-,u:1001:rwx,g::r-x,m::rwx,o::---' as the xattr value (version 2, 8-byte entries). */
function aclBytes(text: string): Buffer {
  const ents = text.split(',');
  const b = Buffer.alloc(4 + 8 * ents.length);
  b.writeUInt32LE(2, 0);
  ents.forEach((e, i) => {
    const [k, id, p] = e.split(':') as [string, string, string];
    const tag = k === 'u' ? (id ? 0x02 : 0x01) : k === 'g' ? (id ? 0x08 : 0x04) : k === 'm' ? 0x10 : 0x20;
    const perm = (p[0] === 'r' ? 4 : 0) | (p[1] === 'w' ? 2 : 0) | (p[2] === 'x' ? 1 : 0);
    b.writeUInt16LE(tag, 4 + 8 * i);
    b.writeUInt16LE(perm, 6 + 8 * i);
    b.writeUInt32LE(id ? Number(id) : 0xffffffff, 8 + 8 * i);
  });
  return b;
}
function aclText(v: Uint8Array): string {
  const b = Buffer.from(v);
  const out: string[] = [];
  for (let o = 4; o + 8 <= b.length; o += 8) {
    const tag = b.readUInt16LE(o), perm = b.readUInt16LE(o + 2), id = b.readUInt32LE(o + 4);
    const k = TAGS.find(([, t]) => t === tag)?.[0] ?? `?${tag}`;
    const named = tag === 0x02 || tag === 0x08;
    out.push(`${k}:${named ? id : ''}:${perm & 4 ? 'r' : '-'}${perm & 2 ? 'w' : '-'}${perm & 1 ? 'x' : '-'}`);
  }
  return out.join(',');
}

/* ---- the script ---- */
interface As { uid: number; gid: number; groups: number[] }
type Op =
  | { op: 'mkdir'; p: string; mode: number; umask: number }
  | { op: 'create'; p: string; mode: number; umask: number }
  | { op: 'mknod'; p: string; mode: number; umask: number }
  | { op: 'symlink'; p: string; target: string }
  | { op: 'setacl'; p: string; acl: string | null; dflt?: boolean; as?: As }
  | { op: 'getacl'; p: string; dflt?: boolean }
  | { op: 'mode'; p: string }
  | { op: 'chmod'; p: string; mode: number }
  | { op: 'chown'; p: string; uid: number; gid: number }
  | { op: 'open'; p: string; write: boolean; as: As };
type Step = Op & { expect?: string; why?: string };

const U1001: As = { uid: 1001, gid: 1001, groups: [] };
const U1003IN1002: As = { uid: 1003, gid: 1003, groups: [1002] };
const U1004: As = { uid: 1004, gid: 1004, groups: [] };
const U1005GROUP0: As = { uid: 1005, gid: 0, groups: [] };
const DEFAULT = 'u::rwx,u:1001:rwx,g::r-x,g:1002:rwx,m::rwx,o::r-x';

const STEPS: Step[] = [
  /* inheritance from a default ACL: the umask (077) plays no part */
  { op: 'mkdir', p: 'd', mode: 0o755, umask: 0o022, expect: 'ok' },
  { op: 'setacl', p: 'd', dflt: true, acl: DEFAULT, expect: 'ok' },
  { op: 'getacl', p: 'd', dflt: true, expect: `ok:${DEFAULT}` },
  { op: 'create', p: 'd/f', mode: 0o666, umask: 0o077, expect: 'ok' },
  { op: 'getacl', p: 'd/f', expect: 'ok:u::rw-,u:1001:rwx,g::r-x,g:1002:rwx,m::rw-,o::r--', why: 'a file: the default ACL limited by the mode 0666' },
  { op: 'mode', p: 'd/f', expect: 'ok:100664' },
  { op: 'getacl', p: 'd/f', dflt: true, expect: 'ENODATA' },
  { op: 'mkdir', p: 'd/s', mode: 0o777, umask: 0o077, expect: 'ok' },
  { op: 'getacl', p: 'd/s', expect: `ok:${DEFAULT}`, why: 'a directory: the access ACL' },
  { op: 'getacl', p: 'd/s', dflt: true, expect: `ok:${DEFAULT}`, why: 'and the default ACL, inherited' },
  { op: 'mode', p: 'd/s', expect: 'ok:40775' },
  { op: 'mknod', p: 'd/p', mode: S_IFIFO | 0o640, umask: 0o077, expect: 'ok' },
  { op: 'getacl', p: 'd/p', expect: 'ok:u::rw-,u:1001:rwx,g::r-x,g:1002:rwx,m::r--,o::---', why: 'a fifo' },
  { op: 'mode', p: 'd/p', expect: 'ok:10640' },
  { op: 'create', p: 'd/s/g', mode: 0o600, umask: 0o000, expect: 'ok' },
  { op: 'getacl', p: 'd/s/g', expect: 'ok:u::rw-,u:1001:rwx,g::r-x,g:1002:rwx,m::---,o::---', why: 'a level further down' },
  { op: 'mkdir', p: 'd/s/t', mode: 0o750, umask: 0o022, expect: 'ok' },
  { op: 'getacl', p: 'd/s/t', dflt: true, expect: `ok:${DEFAULT}` },
  { op: 'getacl', p: 'd/s/t', expect: 'ok:u::rwx,u:1001:rwx,g::r-x,g:1002:rwx,m::r-x,o::---' },
  { op: 'symlink', p: 'd/l', target: 'f', expect: 'ok' },
  { op: 'getacl', p: 'd/l', why: 'a symlink has no ACLs' },
  { op: 'open', p: 'd/f', write: true, as: U1001, expect: 'ok', why: 'the inherited named-user entry, masked to rw-' },
  { op: 'open', p: 'd/p', write: true, as: U1001, expect: 'EACCES', why: 'the fifo\'s mask (r--) refuses the write' },
  /* without a default ACL the umask applies */
  { op: 'mkdir', p: 'e', mode: 0o755, umask: 0o022, expect: 'ok' },
  { op: 'create', p: 'e/f', mode: 0o666, umask: 0o027, expect: 'ok' },
  { op: 'mode', p: 'e/f', expect: 'ok:100640' },
  { op: 'getacl', p: 'e/f', expect: 'ENODATA' },
  { op: 'mkdir', p: 'e/s', mode: 0o777, umask: 0o027, expect: 'ok' },
  { op: 'mode', p: 'e/s', expect: 'ok:40750' },
  { op: 'getacl', p: 'e/s', dflt: true, expect: 'ENODATA' },
  { op: 'mknod', p: 'e/p', mode: S_IFIFO | 0o666, umask: 0o002, expect: 'ok' },
  { op: 'mode', p: 'e/p', expect: 'ok:10664' },
  /* a minimal default ACL: the mode alone, the umask still ignored, no access ACL stored */
  { op: 'mkdir', p: 'm', mode: 0o755, umask: 0o022, expect: 'ok' },
  { op: 'setacl', p: 'm', dflt: true, acl: 'u::rwx,g::r-x,o::---', expect: 'ok' },
  { op: 'create', p: 'm/f', mode: 0o666, umask: 0o077, expect: 'ok' },
  { op: 'mode', p: 'm/f', expect: 'ok:100640' },
  { op: 'getacl', p: 'm/f', expect: 'ENODATA' },
  { op: 'mkdir', p: 'm/s', mode: 0o777, umask: 0o000, expect: 'ok' },
  { op: 'mode', p: 'm/s', expect: 'ok:40750' },
  { op: 'getacl', p: 'm/s', dflt: true, expect: 'ok:u::rwx,g::r-x,o::---' },
  /* chmod of a file with an extended ACL: the mask follows */
  { op: 'create', p: 'c', mode: 0o644, umask: 0o022, expect: 'ok' },
  { op: 'setacl', p: 'c', acl: 'u::rw-,u:1001:rw-,g::r--,m::rw-,o::---', expect: 'ok' },
  { op: 'mode', p: 'c', expect: 'ok:100660', why: 'the mask became the group bits' },
  { op: 'chmod', p: 'c', mode: 0o640, expect: 'ok' },
  { op: 'getacl', p: 'c', expect: 'ok:u::rw-,u:1001:rw-,g::r--,m::r--,o::---' },
  { op: 'chmod', p: 'c', mode: 0o755, expect: 'ok' },
  { op: 'getacl', p: 'c', expect: 'ok:u::rwx,u:1001:rw-,g::r--,m::r-x,o::r-x' },
  { op: 'chmod', p: 'd', mode: 0o700, expect: 'ok' },
  { op: 'getacl', p: 'd', dflt: true, expect: `ok:${DEFAULT}`, why: 'chmod leaves a default ACL alone' },
  /* a stored access ACL without a mask (debugfs wrote it): chmod sets its group entry; equivalent then, it goes */
  { op: 'getacl', p: 'nm', expect: 'ok:u::rwx,g::rwx,o::rwx' },
  { op: 'open', p: 'nm', write: false, as: U1004, expect: 'EACCES', why: 'group bits 0: the ACL is not consulted' },
  { op: 'chmod', p: 'nm', mode: 0o640, expect: 'ok' },
  { op: 'getacl', p: 'nm', expect: 'ENODATA' },
  { op: 'mode', p: 'nm', expect: 'ok:100640' },
  { op: 'getacl', p: 'nm2', expect: 'ok:u::rwx,g::rwx,o::rwx' },
  { op: 'chmod', p: 'nm2', mode: 0o2770, expect: 'ok' },
  { op: 'mode', p: 'nm2', expect: 'ok:102770' },
  /* setting an ACL equivalent to a mode: no xattr, the mode changes */
  { op: 'create', p: 'q', mode: 0o600, umask: 0o022, expect: 'ok' },
  { op: 'setacl', p: 'q', acl: 'u::rw-,u:1001:r--,g::r--,m::r--,o::---', expect: 'ok' },
  { op: 'getacl', p: 'q', expect: 'ok:u::rw-,u:1001:r--,g::r--,m::r--,o::---' },
  { op: 'setacl', p: 'q', acl: 'u::rwx,g::r-x,o::r--', expect: 'ok' },
  { op: 'getacl', p: 'q', expect: 'ENODATA', why: 'the equivalent ACL replaced the extended one by the mode' },
  { op: 'mode', p: 'q', expect: 'ok:100754' },
  /* ... and S_ISGID goes when the setter is outside the file's group */
  { op: 'create', p: 'sg', mode: 0o644, umask: 0o022, expect: 'ok' },
  { op: 'chown', p: 'sg', uid: 1001, gid: 1002, expect: 'ok' },
  { op: 'chmod', p: 'sg', mode: 0o2755, expect: 'ok' },
  { op: 'setacl', p: 'sg', acl: 'u::rwx,g::r-x,o::r-x', as: U1001, expect: 'ok' },
  { op: 'mode', p: 'sg', expect: 'ok:100755' },
  { op: 'create', p: 'sg2', mode: 0o644, umask: 0o022, expect: 'ok' },
  { op: 'chown', p: 'sg2', uid: 1001, gid: 1002, expect: 'ok' },
  { op: 'chmod', p: 'sg2', mode: 0o2755, expect: 'ok' },
  { op: 'setacl', p: 'sg2', acl: 'u::rwx,g::r-x,o::r-x', expect: 'ok', why: 'root (CAP_FSETID) keeps it' },
  { op: 'mode', p: 'sg2', expect: 'ok:102755' },
  { op: 'setacl', p: 'sg2', acl: 'u::rwx,g::r-x,o::r-x', as: U1004, expect: 'EPERM', why: 'not the owner' },
  /* permission checks with the access ACL */
  { op: 'create', p: 'a', mode: 0o640, umask: 0o022, expect: 'ok' },
  { op: 'setacl', p: 'a', acl: 'u::rw-,u:1001:rw-,g::r--,g:1002:rw-,m::rw-,o::---', expect: 'ok' },
  { op: 'open', p: 'a', write: true, as: U1001, expect: 'ok', why: 'a named user' },
  { op: 'open', p: 'a', write: true, as: U1003IN1002, expect: 'ok', why: 'a named group' },
  { op: 'open', p: 'a', write: false, as: U1004, expect: 'EACCES', why: 'other' },
  { op: 'open', p: 'a', write: false, as: U1005GROUP0, expect: 'ok', why: 'the owning group' },
  { op: 'open', p: 'a', write: true, as: U1005GROUP0, expect: 'EACCES' },
  { op: 'chmod', p: 'a', mode: 0o640, expect: 'ok' },
  { op: 'open', p: 'a', write: true, as: U1001, expect: 'EACCES', why: 'the mask (r--) limits the named user' },
  { op: 'open', p: 'a', write: false, as: U1001, expect: 'ok' },
  { op: 'open', p: 'a', write: true, as: U1003IN1002, expect: 'EACCES' },
  { op: 'mkdir', p: 'x', mode: 0o700, umask: 0o022, expect: 'ok' },
  { op: 'create', p: 'x/f', mode: 0o644, umask: 0o022, expect: 'ok' },
  { op: 'setacl', p: 'x', acl: 'u::rwx,u:1001:--x,g::---,m::--x,o::---', expect: 'ok' },
  { op: 'open', p: 'x/f', write: false, as: U1001, expect: 'ok', why: 'search granted by a named-user entry' },
  { op: 'open', p: 'x/f', write: false, as: U1004, expect: 'EACCES' },
  { op: 'setacl', p: 'x', acl: null, expect: 'ok' },
  { op: 'open', p: 'x/f', write: false, as: U1001, expect: 'EACCES', why: 'the ACL removed, the mode (0710) decides' },
  { op: 'mode', p: 'x', expect: 'ok:40710' },
];

/* Files debugfs makes before the script: access ACLs without a mask, which no set_acl stores. */
const NOMASK = ['nm', 'nm2'];

const NAME = (a: boolean | undefined) => a ? 'system.posix_acl_default' : 'system.posix_acl_access';

async function lklRun(k: Kernel, mnt: string, steps: Step[]): Promise<string[]> {
  const sys = k.sys;
  const P = (p: string) => `${mnt}/${p}`;
  const res = (r: number) => r < 0 ? (ERRNO[-r] ?? `E${-r}`) : 'ok';
  const out: string[] = [];
  for (const s of steps) {
    const who = 'as' in s && s.as ? k.sysAs(s.as) : sys;
    switch (s.op) {
      case 'mkdir': await sys.umask(s.umask); out.push(res(await sys.mkdir(P(s.p), s.mode))); break;
      case 'create': {
        await sys.umask(s.umask);
        const fd = await sys.open(P(s.p), O_CREAT | O_EXCL | O_WRONLY, s.mode);
        if (fd >= 0) await sys.close(fd);
        out.push(res(fd));
        break;
      }
      case 'mknod': await sys.umask(s.umask); out.push(res(await sys.mknod(P(s.p), s.mode, 0))); break;
      case 'symlink': out.push(res(await sys.symlink(s.target, P(s.p)))); break;
      case 'setacl':
        out.push(res(s.acl === null ? await who.removexattr(P(s.p), NAME(s.dflt)) : await who.setxattr(P(s.p), NAME(s.dflt), aclBytes(s.acl), 0)));
        break;
      case 'getacl': {
        const v = await sys.lgetxattr(P(s.p), NAME(s.dflt));
        out.push(typeof v === 'number' ? res(v) : `ok:${aclText(v)}`);
        break;
      }
      case 'mode': {
        const st = await sys.lstat(P(s.p));
        out.push(typeof st === 'number' ? res(st) : `ok:${st.mode.toString(8)}`);
        break;
      }
      case 'chmod': out.push(res(await sys.chmod(P(s.p), s.mode))); break;
      case 'chown': out.push(res(await sys.chown(P(s.p), s.uid, s.gid))); break;
      case 'open': {
        const fd = await who.open(P(s.p), s.write ? O_WRONLY : O_RDONLY);
        if (fd >= 0) await who.close(fd);
        out.push(res(fd));
        break;
      }
    }
  }
  await sys.umask(0o022);
  return out;
}

/* The host's run: the same calls from Python on the loop mount (JSON steps in, outcomes out). */
const HOST_RUNNER = String.raw`
import errno, json, os, sys
root = sys.argv[1]
steps = json.load(sys.stdin)
def name(s): return 'system.posix_acl_default' if s.get('dflt') else 'system.posix_acl_access'
def res(f):
    try:
        r = f()
        return 'ok' if r is None else 'ok:' + r
    except OSError as e:
        return 'EOPNOTSUPP' if e.errno == errno.EOPNOTSUPP else errno.errorcode.get(e.errno, 'E%d' % e.errno)
def as_user(a, f):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups(a['groups']); os.setgid(a['gid']); os.setuid(a['uid'])
            out = res(f)
        except BaseException as e:
            out = 'child failed: %r' % (e,)
        os.write(w, out.encode()); os._exit(0)
    os.close(w)
    out = os.read(r, 4096).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return out
def run(s):
    p = os.path.join(root, s['p'])
    op = s['op']
    if op == 'mkdir':
        os.umask(s['umask']); return res(lambda: os.mkdir(p, s['mode']))
    if op == 'create':
        os.umask(s['umask']); return res(lambda: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, s['mode'])))
    if op == 'mknod':
        os.umask(s['umask']); return res(lambda: os.mknod(p, s['mode'], 0))
    if op == 'symlink': return res(lambda: os.symlink(s['target'], p))
    if op == 'getacl': return res(lambda: aclText(os.getxattr(p, name(s), follow_symlinks=False)))
    if op == 'mode': return res(lambda: '%o' % os.lstat(p).st_mode)
    if op == 'chmod': return res(lambda: os.chmod(p, s['mode']))
    if op == 'chown': return res(lambda: os.chown(p, s['uid'], s['gid']))
    if op == 'setacl':
        f = (lambda: os.removexattr(p, name(s))) if s['acl'] is None else (lambda: os.setxattr(p, name(s), bytes.fromhex(s['hex'])))
    elif op == 'open':
        f = lambda: os.close(os.open(p, os.O_WRONLY if s['write'] else os.O_RDONLY))
    else:
        return 'unknown op'
    return as_user(s['as'], f) if s.get('as') else res(f)
TAGS = {1: 'u', 2: 'u', 4: 'g', 8: 'g', 0x10: 'm', 0x20: 'o'}
def aclText(v):
    out = []
    for o in range(4, len(v), 8):
        tag = int.from_bytes(v[o:o+2], 'little'); perm = int.from_bytes(v[o+2:o+4], 'little'); i = int.from_bytes(v[o+4:o+8], 'little')
        ident = str(i) if tag in (2, 8) else ''
        out.append('%s:%s:%s%s%s' % (TAGS.get(tag, '?'), ident, 'r' if perm & 4 else '-', 'w' if perm & 2 else '-', 'x' if perm & 1 else '-'))
    return ','.join(out)
print(json.dumps([run(s) for s in steps]))
`;

async function hostRun(mnt: string, steps: Step[]): Promise<string[]> {
  const input = JSON.stringify(steps.map((s) => s.op === 'setacl' && s.acl !== null ? { ...s, hex: aclBytes(s.acl).toString('hex') } : s));
  const r = await run('python3', ['-c', HOST_RUNNER, mnt], { input });
  return JSON.parse(r.stdout) as string[];
}

/** What the host kernel reads of a tree: getfacl -R (numeric, with the default ACLs) and every mode. */
async function hostView(mnt: string): Promise<string> {
  const acl = await run('getfacl', ['-R', '-n', '-p', '.'], { cwd: mnt });
  const modes = await run('find', ['.', '-path', './lost+found', '-prune', '-o', '-printf', '%p %M %U %G\\n'], { cwd: mnt });
  return `${acl.stdout}\n${modes.stdout.split('\n').sort().join('\n')}`;
}

/** A fresh image with `nm`, `nm2`: mode 0600, an access ACL without a mask written by debugfs. */
async function prepare(img: string, inodeSize: number, dir: string): Promise<void> {
  await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 4096, inodeSize, path: img });
  await withLoopMount(img, {}, async (m) => {
    for (const f of NOMASK) { fs.writeFileSync(path.join(m, f), ''); fs.chmodSync(path.join(m, f), 0o600); }
  });
  const val = path.join(dir, 'nomask.acl');
  fs.writeFileSync(val, aclBytes('u::rwx,g::rwx,o::rwx'));
  for (const f of NOMASK) await run('debugfs', ['-w', '-R', `ea_set -f ${val} /${f} system.posix_acl_access`, img]);
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-acl');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const inodeSize of [256, 128]) {
    t.test(`ext4, ${inodeSize}-byte inodes: ACL inheritance, chmod and checks as the host kernel does them`, async (t) => {
      const lklImg = path.join(dir, `lkl-${inodeSize}.img`), hostImg = path.join(dir, `host-${inodeSize}.img`);
      await prepare(lklImg, inodeSize, dir);
      fs.copyFileSync(lklImg, hostImg);

      const hostOut = await withLoopMount(hostImg, {}, (m) => hostRun(m, STEPS));
      const id = await k.diskAdd({ path: lklImg });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      t.type(mnt, 'string', 'mounted read-write');
      if (typeof mnt !== 'string') return;
      let lklOut: string[];
      try {
        lklOut = await lklRun(k, mnt, STEPS);
      } finally { t.equal(await k.umountDev(id, 0), 0, 'unmounted'); }

      STEPS.forEach((s, i) => {
        const label = `${s.op} ${s.p}${'dflt' in s && s.dflt ? ' (default)' : ''}${'as' in s && s.as ? ` as ${s.as.uid}` : ''}${s.why ? `: ${s.why}` : ''}`;
        t.equal(lklOut[i], hostOut[i], `${label}: as the host (${hostOut[i]})`);
        if (s.expect !== undefined) t.equal(lklOut[i], s.expect, `${label}: ${s.expect}`);
      });

      const ck = await e2fsckClean(lklImg);
      t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
      const lklView = await withLoopMount(lklImg, { ro: true }, hostView);
      const hostViewText = await withLoopMount(hostImg, { ro: true }, hostView);
      t.equal(lklView, hostViewText, 'the host kernel reads the same ACLs and modes in both images');
      t.match(lklView, /# file: \.\/d\/s\n# owner: 0\n# group: 0\nuser::rwx\nuser:1001:rwx\ngroup::r-x\ngroup:1002:rwx\nmask::rwx\nother::r-x\ndefault:user::rwx/, 'the host reads d/s\'s inherited ACLs');
    });
  }

  t.test('sysAs with a umask: the call creates with it, the process umask stays', async (t) => {
    const img = path.join(dir, 'umask.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 4096, path: img });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
    if (typeof mnt !== 'string') { t.fail('mount'); return; }
    try {
      await k.sys.umask(0o022);
      const as = k.sysAs({ uid: 0, gid: 0, groups: [], umask: 0o077 });
      t.equal(await as.mkdir(`${mnt}/u`, 0o777), 0, 'mkdir with the call\'s umask');
      const st = await k.sys.stat(`${mnt}/u`);
      t.equal(typeof st === 'number' ? st : st.mode & 0o7777, 0o700, 'masked with 077');
      t.equal(await k.sys.mkdir(`${mnt}/v`, 0o777), 0);
      const sv = await k.sys.stat(`${mnt}/v`);
      t.equal(typeof sv === 'number' ? sv : sv.mode & 0o7777, 0o755, 'the process umask is still 022');
      t.equal(await as.umask(0o070), 0o077, 'umask(2) in such a call reports the call\'s umask');
      t.equal(await k.sys.umask(0o022), 0o022, 'and does not change the process\'s');
      t.equal(await as.setxattr(`${mnt}/u`, 'system.posix_acl_default', aclBytes('u::rwx,g::rwx,o::---'), 0), 0);
      t.equal(await as.mkdir(`${mnt}/u/w`, 0o777), 0, 'in a directory with a default ACL');
      const sw = await k.sys.stat(`${mnt}/u/w`);
      t.equal(typeof sw === 'number' ? sw : sw.mode & 0o7777, 0o770, 'the umask is ignored');
    } finally { t.equal(await k.umountDev(id, 0), 0); }
    t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn is clean');
  });

  t.test('noacl: no ACLs, the umask applies, chmod touches no ACL', async (t) => {
    const img = path.join(dir, 'noacl.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 4096, path: img });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, 'noacl');
    if (typeof mnt !== 'string') { t.fail('mount'); return; }
    try {
      await k.sys.umask(0o027);
      t.equal(await k.sys.mkdir(`${mnt}/d`, 0o777), 0);
      const st = await k.sys.stat(`${mnt}/d`);
      t.equal(typeof st === 'number' ? st : st.mode & 0o7777, 0o750, 'the VFS applied the umask');
      t.equal(await k.sys.setxattr(`${mnt}/d`, 'system.posix_acl_default', aclBytes(DEFAULT), 0), -95, 'setting an ACL: EOPNOTSUPP');
      t.equal(await k.sys.lgetxattr(`${mnt}/d`, 'system.posix_acl_access'), -95, 'getting one: EOPNOTSUPP');
      t.equal(await k.sys.chmod(`${mnt}/d`, 0o700), 0, 'chmod');
    } finally { await k.sys.umask(0o022); t.equal(await k.umountDev(id, 0), 0); }
    t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn is clean');
  });
}
