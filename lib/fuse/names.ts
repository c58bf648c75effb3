/*
 * NAME_MAX, the daemon's to enforce: the FUSE kernel module lets names of up to 1024 bytes
 * through, and neither libfuse nor the kernel module refuses a longer component. Both
 * transports' operation layers (ops.ts by path, ll-ops.ts by name) check here, before the
 * kernel sees the name.
 */
import { NAME_MAX } from '../kernel/include/uapi.js';

/** True if some component of the path `p` is longer than NAME_MAX bytes. */
export function nameTooLong(p: string): boolean {
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p.charCodeAt(i) === 0x2f) {
      if (i - start > NAME_MAX / 3 && Buffer.byteLength(p.slice(start, i)) > NAME_MAX) return true;
      start = i + 1;
    }
  }
  return false;
}

/** True if the single name `n` (raw bytes, as the kernel protocol carries it) is too long. */
export const nameBytesTooLong = (n: Uint8Array) => n.length > NAME_MAX;
