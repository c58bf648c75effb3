/*
 * How kernel code reports errors. Linux returns -errno / ERR_PTR; in TypeScript kernel code
 * throws an Errno (positive errno inside) and the system-call entry turns it into -errno.
 * Anything else thrown is a kernel bug: it is printed and the call fails with -EIO.
 */
export class Errno extends Error {
  constructor(public readonly errno: number, msg?: string) {
    super(msg ?? `errno ${errno}`);
  }
}
/*
 * Errors are ordinary results here (a lookup that finds nothing, an absent xattr), thrown
 * on hot paths: skip capturing a stack trace for them (V8's Error.stackTraceLimit; other
 * engines ignore it). Kernel bugs are other exception types and keep their stacks.
 */
const ErrorCtor = Error as { stackTraceLimit?: number };

/** Construct an error to throw: `throw err(ENOENT)`. Accepts positive or negative errno. */
export function err(errno: number, msg?: string): Errno {
  const limit = ErrorCtor.stackTraceLimit;
  ErrorCtor.stackTraceLimit = 0;
  try { return new Errno(Math.abs(errno), msg); } finally { ErrorCtor.stackTraceLimit = limit; }
}
export function isErrno(e: unknown): e is Errno { return e instanceof Errno; }

/**
 * Kernel-internal errnos (include/linux/errno.h): never returned to user space.
 * ENOIOCTLCMD: "no such ioctl here", turned into ENOTTY at the system call.
 */
export const ENOIOCTLCMD = 515;
