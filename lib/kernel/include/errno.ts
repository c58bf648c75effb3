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
/** Construct an error to throw: `throw err(ENOENT)`. Accepts positive or negative errno. */
export function err(errno: number, msg?: string): Errno { return new Errno(Math.abs(errno), msg); }
export function isErrno(e: unknown): e is Errno { return e instanceof Errno; }
