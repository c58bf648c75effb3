#!/usr/bin/env python3
# The case runner of test/fuse/real-conformance.test.ts: performs conformance cases with real
# host system calls in a directory and answers what happened, as JSON.
#
# stdin: {"root": dir, "other": dir on another filesystem, "sleepMs": n, "cases": [case...]}
# case:  {"id": name, "setup": [step...], "ops": [step...], "watch": [path...]}
# step:  {"op": name, ...arguments, "as": [uid, gid, [groups...]]?}
#
# Every case runs in a fresh directory root/<id> (mode 0755, owned by root), with relative
# paths (the runner chdirs there, so PATH_MAX is about the path given). Phase 1 runs every
# case's setup as root (a failing setup step is part of the outcome), sets the atime and mtime
# of the watched paths to a fixed time in 2001 and stats them; then the runner sleeps once;
# phase 2 runs every case's ops and stats the watched paths again. Steps with "as" run in a
# forked child with setgroups/setgid/setuid. The answer per case: the setup error (or null),
# one result string per op ("ok", "ok:<detail>" or an errno name), and per watched path which
# of its atime/mtime/ctime changed ("amc" letters, "-" for none, "gone").
#
# Python because its os module has what node's fs lacks: mknod, utimensat with UTIME_OMIT
# (through ctypes), xattrs, linkat flags.
import ctypes
import ctypes.util
import errno
import json
import os
import stat
import struct
import sys
import time

libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_SYMLINK_FOLLOW = 0x400
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
T0 = 978307200 * 10**9  # 2001-01-01T00:00:00Z


class Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


def oserr():
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e))


def ts(v):
    if v == 'now':
        return Timespec(0, UTIME_NOW)
    if v == 'omit':
        return Timespec(0, UTIME_OMIT)
    if isinstance(v, list):
        return Timespec(v[0], v[1])
    return Timespec(v // 10**9, v % 10**9)


def utimensat(path, a, m, nofollow):
    arr = (Timespec * 2)(ts(a), ts(m))
    if libc.utimensat(AT_FDCWD, os.fsencode(path), arr, AT_SYMLINK_NOFOLLOW if nofollow else 0) != 0:
        oserr()


def utimens_null(path):
    if libc.utimensat(AT_FDCWD, os.fsencode(path), None, 0) != 0:
        oserr()


def renameat2(src, dst, flags):
    if libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) != 0:
        oserr()


OFLAGS = {n: getattr(os, n) for n in ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_CREAT', 'O_EXCL', 'O_TRUNC',
                                       'O_APPEND', 'O_DIRECTORY', 'O_NOFOLLOW', 'O_PATH', 'O_NONBLOCK']}


def oflags(names):
    f = 0
    for n in names or []:
        f |= OFLAGS[n]
    return f


FTYPE = {stat.S_IFREG: 'reg', stat.S_IFDIR: 'dir', stat.S_IFLNK: 'lnk', stat.S_IFIFO: 'fifo',
         stat.S_IFCHR: 'chr', stat.S_IFBLK: 'blk', stat.S_IFSOCK: 'sock'}


def fmt_stat(st, fields):
    out = []
    for f in fields:
        if f == 'type':
            out.append(FTYPE.get(stat.S_IFMT(st.st_mode), '?'))
        elif f == 'mode':
            out.append('mode=%04o' % stat.S_IMODE(st.st_mode))
        elif f == 'uid':
            out.append('uid=%d' % st.st_uid)
        elif f == 'gid':
            out.append('gid=%d' % st.st_gid)
        elif f == 'nlink':
            out.append('nlink=%d' % st.st_nlink)
        elif f == 'size':
            out.append('size=%d' % st.st_size)
        elif f == 'rdev':
            out.append('rdev=%d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    return ' '.join(out)


ACL_TAGS = {'u': 0x01, 'U': 0x02, 'g': 0x04, 'G': 0x08, 'm': 0x10, 'o': 0x20}
ACL_NAMES = {v: k for k, v in ACL_TAGS.items()}


def acl_encode(text):
    # "u::rw-,u:1001:r--,g::r--,m::r--,o::---" -> the posix_acl xattr (version 2).
    ents = []
    for e in text.split(','):
        tag, qual, perm = e.split(':')
        named = qual != ''
        t = {'u': 'U', 'g': 'G'}.get(tag, tag) if named else tag
        p = (4 if perm[0] == 'r' else 0) | (2 if perm[1] == 'w' else 0) | (1 if perm[2] == 'x' else 0)
        ents.append((ACL_TAGS[t], p, int(qual) if named else 0xffffffff))
    ents.sort(key=lambda x: (x[0], x[2]))
    return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', t, p, i) for t, p, i in ents)


def acl_decode(b):
    out = []
    for off in range(4, len(b), 8):
        t, p, i = struct.unpack_from('<HHI', b, off)
        name = ACL_NAMES.get(t, '?')
        qual = str(i) if name in ('U', 'G') else ''
        perm = ('r' if p & 4 else '-') + ('w' if p & 2 else '-') + ('x' if p & 1 else '-')
        out.append('%s:%s:%s' % (name.lower(), qual, perm))
    return ','.join(out)


def with_fd(step, default_flags, fn):
    fd = os.open(step['path'], oflags(step.get('flags')) if 'flags' in step else default_flags, step.get('mode', 0o644))
    try:
        return fn(fd)
    finally:
        os.close(fd)


def do_step(s):
    op = s['op']
    p = s.get('path')
    if op == 'open':
        fd = os.open(p, oflags(s.get('flags')), s.get('mode', 0o644))
        os.close(fd)
    elif op == 'creat':
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, s.get('mode', 0o644)))
    elif op == 'mkdir':
        os.mkdir(p, s.get('mode', 0o755))
    elif op == 'mknod':
        kind = {'reg': stat.S_IFREG, 'fifo': stat.S_IFIFO, 'chr': stat.S_IFCHR, 'blk': stat.S_IFBLK,
                'sock': stat.S_IFSOCK, 'dir': stat.S_IFDIR, 'bad': 0o170000}[s['kind']]
        os.mknod(p, kind | s.get('mode', 0o644), os.makedev(*s.get('dev', [0, 0])))
    elif op == 'mkfifo':
        os.mkfifo(p, s.get('mode', 0o644))
    elif op == 'link':
        # linkat itself: os.link's follow_symlinks=True calls link(2), which does not follow
        if libc.linkat(AT_FDCWD, os.fsencode(s['src']), AT_FDCWD, os.fsencode(s['dst']), AT_SYMLINK_FOLLOW if s.get('follow') else 0) != 0:
            oserr()
    elif op == 'symlink':
        os.symlink(s['target'], p)
    elif op == 'rename':
        if s.get('flags'):
            renameat2(s['src'], s['dst'], {'noreplace': RENAME_NOREPLACE, 'exchange': RENAME_EXCHANGE}[s['flags']])
        else:
            os.rename(s['src'], s['dst'])
    elif op == 'unlink':
        os.unlink(p)
    elif op == 'rmdir':
        os.rmdir(p)
    elif op == 'chmod':
        os.chmod(p, s['mode'])
    elif op == 'fchmod':
        with_fd(s, os.O_RDONLY, lambda fd: os.fchmod(fd, s['mode']))
    elif op == 'chown':
        os.chown(p, s.get('uid', -1), s.get('gid', -1), follow_symlinks=not s.get('nofollow', False))
    elif op == 'fchown':
        with_fd(s, os.O_RDONLY, lambda fd: os.fchown(fd, s.get('uid', -1), s.get('gid', -1)))
    elif op == 'truncate':
        os.truncate(p, s['len'])
    elif op == 'ftruncate':
        with_fd(s, os.O_WRONLY, lambda fd: os.ftruncate(fd, s['len']))
    elif op == 'write':
        n = with_fd(s, os.O_WRONLY, lambda fd: os.write(fd, s.get('data', 'x').encode()))
        return 'ok:%d' % n
    elif op == 'read':
        b = with_fd(s, os.O_RDONLY, lambda fd: os.read(fd, 65536))
        return 'ok:' + b.decode('utf-8', 'replace')
    elif op == 'utime':
        if s.get('null'):
            utimens_null(p)
        else:
            utimensat(p, s.get('a', 'now'), s.get('m', 'now'), s.get('nofollow', False))
    elif op == 'stat' or op == 'lstat':
        st = os.stat(p, follow_symlinks=op == 'stat')
        return 'ok:' + fmt_stat(st, s.get('fields', ['type', 'mode', 'uid', 'gid', 'nlink', 'size']))
    elif op == 'times':
        # The times themselves, for cases that set them (ns, as the kernel keeps them).
        st = os.stat(p, follow_symlinks=False)
        return 'ok:a=%d m=%d' % (st.st_atime_ns, st.st_mtime_ns)
    elif op == 'readlink':
        return 'ok:' + os.readlink(p)
    elif op == 'readdir':
        return 'ok:' + ','.join(sorted(os.listdir(p)))
    elif op == 'access':
        return 'ok' if os.access(p, s['mode']) else 'denied'
    elif op == 'setxattr':
        os.setxattr(p, s['name'], s.get('value', '').encode(), {'': 0, 'create': os.XATTR_CREATE, 'replace': os.XATTR_REPLACE}[s.get('flags', '')], follow_symlinks=not s.get('nofollow', False))
    elif op == 'getxattr':
        return 'ok:' + os.getxattr(p, s['name'], follow_symlinks=not s.get('nofollow', False)).decode('utf-8', 'replace')
    elif op == 'listxattr':
        names = [n for n in os.listxattr(p, follow_symlinks=not s.get('nofollow', False)) if not n.startswith('security.')]
        return 'ok:' + ','.join(sorted(names))
    elif op == 'removexattr':
        os.removexattr(p, s['name'], follow_symlinks=not s.get('nofollow', False))
    elif op == 'setacl':
        name = 'system.posix_acl_default' if s.get('default') else 'system.posix_acl_access'
        os.setxattr(p, name, acl_encode(s['acl']))
    elif op == 'getacl':
        name = 'system.posix_acl_default' if s.get('default') else 'system.posix_acl_access'
        return 'ok:' + acl_decode(os.getxattr(p, name))
    elif op == 'opendir':
        # getdents on a directory opened for reading (EACCES without r, for instance)
        fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return 'ok:%d' % len(os.listdir(fd))
        finally:
            os.close(fd)
    elif op == 'chdir':
        # search permission, in a child so the runner's directory stays
        os.chdir(p)
    else:
        raise ValueError('unknown op ' + op)
    return 'ok'


def run_step(s):
    who = s.get('as')
    if who is None:
        return run_here(s)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups(who[2])
            os.setgid(who[1])
            os.setuid(who[0])
            res = run_here(s)
        except BaseException as e:  # noqa: BLE001
            res = 'child failed: %r' % (e,)
        os.write(w, res.encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    return b''.join(chunks).decode()


def run_here(s):
    try:
        return do_step(s)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def times_of(p):
    try:
        st = os.lstat(p)
    except OSError:
        return None
    return (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)


def main():
    job = json.load(sys.stdin)
    root = job['root']
    os.umask(0o022)
    out = {}
    before = {}
    for c in job['cases']:
        d = os.path.join(root, c['id'])
        os.mkdir(d, 0o755)
        os.chdir(d)
        err = None
        for i, s in enumerate(c.get('setup', [])):
            r = run_step(s)
            if not r.startswith('ok'):
                err = 'setup step %d (%s): %s' % (i, s['op'], r)
                break
        for w in c.get('watch', []):
            try:
                utimensat(w, T0, T0, True)
            except OSError as e:
                err = err or 'watch %s: %s' % (w, errno.errorcode.get(e.errno))
        before[c['id']] = {w: times_of(w) for w in c.get('watch', [])}
        out[c['id']] = {'setup': err, 'ops': [], 'times': {}}
        os.chdir(root)
    time.sleep(job.get('sleepMs', 50) / 1000)
    for c in job['cases']:
        o = out[c['id']]
        os.chdir(os.path.join(root, c['id']))
        if o['setup'] is None:
            o['ops'] = [run_step(s) for s in c['ops']]
            for w in c.get('watch', []):
                b, a = before[c['id']][w], times_of(w)
                if a is None:
                    o['times'][w] = 'gone'
                else:
                    o['times'][w] = ''.join(l for l, x, y in zip('amc', b, a) if x != y) or '-'
        os.chdir(root)
    json.dump(out, sys.stdout)


main()
