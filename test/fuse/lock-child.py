#!/usr/bin/env python3
# One lock-holding process for test/fuse/real-locks.test.ts: reads commands from stdin, one a
# line, does each with the real system call and answers one line on stdout (a blocking
# command answers when the call returns). Descriptors are kept by the names the test gives.
#
#   open NAME PATH                 -> ok | ERRNO        (O_RDWR)
#   close NAME                     -> ok | ERRNO
#   flock NAME sh|ex|un[|nb]       -> ok | ERRNO        flock(2)
#   CMD NAME r|w|u START LEN       -> ok | ERRNO        CMD: setlk setlkw ofdsetlk ofdsetlkw
#   getlk|ofdgetlk NAME r|w START LEN -> unlck | TYPE PID START LEN | ERRNO
#
# struct flock is packed by hand (short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid, as on every 64-bit Linux), so the OFD commands need no newer Python.
import errno
import fcntl
import os
import struct
import sys

F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
CMDS = {'getlk': F_GETLK, 'setlk': F_SETLK, 'setlkw': F_SETLKW,
        'ofdgetlk': F_OFD_GETLK, 'ofdsetlk': F_OFD_SETLK, 'ofdsetlkw': F_OFD_SETLKW}
TYPES = {'r': fcntl.F_RDLCK, 'w': fcntl.F_WRLCK, 'u': fcntl.F_UNLCK}
NAMES = {v: k for k, v in TYPES.items()}
FLOCK = 'hhqqi4x'
FLOCK_OPS = {'sh': fcntl.LOCK_SH, 'ex': fcntl.LOCK_EX, 'un': fcntl.LOCK_UN, 'nb': fcntl.LOCK_NB}

fds = {}
# errno.errorcode names 35 EDEADLOCK (its alias); the test speaks of EDEADLK.
ERRNAMES = dict(errno.errorcode)
ERRNAMES[errno.EDEADLK] = 'EDEADLK'


def run(words):
    op = words[0]
    if op == 'open':
        fds[words[1]] = os.open(words[2], os.O_RDWR)
        return 'ok'
    if op == 'close':
        os.close(fds.pop(words[1]))
        return 'ok'
    if op == 'flock':
        how = 0
        for w in words[2].split('|'):
            how |= FLOCK_OPS[w]
        fcntl.flock(fds[words[1]], how)
        return 'ok'
    if op in CMDS:
        cmd = CMDS[op]
        arg = struct.pack(FLOCK, TYPES[words[2]], os.SEEK_SET, int(words[3]), int(words[4]), 0)
        res = fcntl.fcntl(fds[words[1]], cmd, arg)
        if cmd not in (F_GETLK, F_OFD_GETLK):
            return 'ok'
        typ, _, start, length, pid = struct.unpack(FLOCK, res)
        return 'unlck' if typ == fcntl.F_UNLCK else '%s %d %d %d' % (NAMES[typ], pid, start, length)
    raise ValueError('unknown command ' + op)


while True:
    line = sys.stdin.readline()
    if not line:
        break
    words = line.split()
    if not words:
        continue
    try:
        out = run(words)
    except OSError as e:
        out = ERRNAMES.get(e.errno, str(e.errno))
    sys.stdout.write(out + '\n')
    sys.stdout.flush()
