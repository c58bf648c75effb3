/*
 * printk (kernel/printk/printk.c, include/linux/kern_levels.h): every kernel message goes
 * through here, with a level, to the registered consoles and the host's print operation.
 *
 * A message may start with a level marker (KERN_ERR + "text", as in C); without one it has
 * the default level. Messages at or below console_loglevel reach the host's console;
 * every message reaches every registered console (tests register one to capture what the
 * kernel said). Printing never fails: with no kernel booted, a message that no console
 * takes goes nowhere.
 */
import { host } from '../arch/cpu.js';

/* Level markers: SOH (0x01) then the level digit, as include/linux/kern_levels.h. */
export const KERN_SOH = '\x01';
export const KERN_EMERG = '\x010', KERN_ALERT = '\x011', KERN_CRIT = '\x012', KERN_ERR = '\x013',
  KERN_WARNING = '\x014', KERN_NOTICE = '\x015', KERN_INFO = '\x016', KERN_DEBUG = '\x017';
export const LOGLEVEL_ERR = 3, LOGLEVEL_WARNING = 4, LOGLEVEL_INFO = 6, LOGLEVEL_DEBUG = 7;
/** MESSAGE_LOGLEVEL_DEFAULT: the level of a message that names none. */
const MESSAGE_LOGLEVEL_DEFAULT = LOGLEVEL_WARNING;

/** console_loglevel: messages with a level below it reach the host console (7: all but debug). */
let console_loglevel = 7;
export function set_console_loglevel(level: number): void { console_loglevel = level; }

/** struct console, reduced to its write method: gets each message's level and text. */
export interface console { write(level: number, text: string): void }
const consoles: console[] = [];
export function register_console(con: console): void { if (!consoles.includes(con)) consoles.push(con); }
export function unregister_console(con: console): void {
  const i = consoles.indexOf(con);
  if (i >= 0) consoles.splice(i, 1);
}

/** printk_get_level: the level of a marked message, or -1. */
export function printk_get_level(msg: string): number {
  return msg.length >= 2 && msg[0] === KERN_SOH && msg[1]! >= '0' && msg[1]! <= '7' ? msg.charCodeAt(1) - 48 : -1;
}

export function printk(msg: string): void {
  const marked = printk_get_level(msg);
  const level = marked < 0 ? MESSAGE_LOGLEVEL_DEFAULT : marked;
  const text = marked < 0 ? msg : msg.slice(2);
  for (const c of consoles) c.write(level, text);
  if (level >= console_loglevel) return;
  try { host().print(text, level); } catch { /* no kernel booted: nowhere to print */ }
}

/** pr_err / pr_warn / pr_info / pr_debug. */
export const pr_err = (msg: string): void => printk(KERN_ERR + msg);
export const pr_warn = (msg: string): void => printk(KERN_WARNING + msg);
export const pr_info = (msg: string): void => printk(KERN_INFO + msg);
export const pr_debug = (msg: string): void => printk(KERN_DEBUG + msg);
