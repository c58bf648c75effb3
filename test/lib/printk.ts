// Kernel messages for tests: one console registered with printk, replaced on each call.
import { register_console, unregister_console, type console } from '../../lib/kernel/kernel/printk.js';

let con: console | null = null;

/** Send every kernel message to `fn` from now on (null: stop). */
export function captureKernelMessages(fn: ((msg: string) => void) | null): void {
  if (con) unregister_console(con);
  con = null;
  if (fn) {
    con = { write: (_level, text) => fn(text) };
    register_console(con);
  }
}
