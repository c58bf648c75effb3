/*
 * Kernel timers, tickless (kernel/time/hrtimer.c in spirit, arch/lkl/kernel/time.c).
 *
 * One host one-shot timer is armed for the earliest pending kernel timer. When it fires,
 * host code raises IRQ_TIMER; the IRQ handler runs every expired timer callback (in
 * deadline order, synchronously: callbacks only wake tasks or queue work) and re-arms.
 * Wall-clock time is the host's real time at boot plus monotonic time since boot, and can
 * be moved by clock_settime.
 */
import type { HostTimer } from '../host-ops.js';
import { host } from '../arch/cpu.js';
import { request_irq, trigger_irq } from '../arch/irq.js';
import { IRQ_TIMER } from '../arch/irq.js';
import type { timespec64 } from '../include/uapi.js';

export interface timer_list { expires: number; function: () => void; seq: number; active: boolean }

class TimerState {
  timers: timer_list[] = []; // sorted by (expires, seq)
  hostTimer: HostTimer | null = null;
  armedFor = Infinity;
  seq = 0;
  bootMono = 0;
  /** Wall clock at boot, in ns split as [sec, nsec], plus an adjustment by clock_settime. */
  wallSecAtBoot = 0;
  wallNsecAtBoot = 0;
  fired = 0;
}
let ts = new TimerState();

export function time_init(): void {
  ts = new TimerState();
  const h = host();
  ts.bootMono = h.monotonicNs();
  [ts.wallSecAtBoot, ts.wallNsecAtBoot] = h.realtime();
  ts.hostTimer = h.timerAlloc(() => trigger_irq(IRQ_TIMER));
  request_irq(IRQ_TIMER, () => runTimers());
}

/** Release the host timer: nothing stays scheduled after halt. */
export function timeHalt(): void {
  for (const t of ts.timers) t.active = false;
  ts.timers.length = 0;
  if (ts.hostTimer) { ts.hostTimer.cancel(); host().timerFree(ts.hostTimer); ts.hostTimer = null; }
  ts.armedFor = Infinity;
}

/** Nanoseconds since boot (ktime_get). */
export function ktime_get_ns(): number { return host().monotonicNs() - ts.bootMono; }

/** CLOCK_REALTIME as a timespec (ktime_get_real_ts64). */
export function ktime_get_real_ts64(): timespec64 {
  const ns = ktime_get_ns();
  let sec = ts.wallSecAtBoot + Math.floor(ns / 1e9);
  let nsec = ts.wallNsecAtBoot + Math.floor(ns % 1e9);
  if (nsec >= 1e9) { sec++; nsec -= 1e9; }
  return { sec, nsec };
}
export function ktime_get_ts64(): timespec64 {
  const ns = ktime_get_ns();
  return { sec: Math.floor(ns / 1e9), nsec: Math.floor(ns % 1e9) };
}
/** clock_settime(CLOCK_REALTIME). */
export function setRealtime(t: timespec64): void {
  const ns = ktime_get_ns();
  // Choose the boot-time wall clock so that now reads as t.
  let sec = t.sec - Math.floor(ns / 1e9);
  let nsec = t.nsec - Math.floor(ns % 1e9);
  if (nsec < 0) { sec--; nsec += 1e9; }
  ts.wallSecAtBoot = sec;
  ts.wallNsecAtBoot = nsec;
}

/** Arm a timer `deltaNs` from now. Returns a handle for del_timer. */
export function add_timer(deltaNs: number, fn: () => void): timer_list {
  const t: timer_list = { expires: ktime_get_ns() + Math.max(0, deltaNs), function: fn, seq: ts.seq++, active: true };
  // Insert keeping order; equal deadlines fire in arming order.
  let lo = 0, hi = ts.timers.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts.timers[mid]!.expires <= t.expires) lo = mid + 1; else hi = mid;
  }
  ts.timers.splice(lo, 0, t);
  program();
  return t;
}

export function del_timer(t: timer_list): void {
  if (!t.active) return;
  t.active = false;
  const i = ts.timers.indexOf(t);
  if (i >= 0) ts.timers.splice(i, 1);
  program();
}

export function pendingTimers(): number { return ts.timers.length; }
export function timersFired(): number { return ts.fired; }

function program(): void {
  const h = ts.hostTimer;
  if (!h) return;
  const first = ts.timers[0];
  if (!first) { if (ts.armedFor !== Infinity) { h.cancel(); ts.armedFor = Infinity; } return; }
  if (first.expires === ts.armedFor) return;
  ts.armedFor = first.expires;
  h.set(Math.max(0, first.expires - ktime_get_ns()));
}

function runTimers(): void {
  const now = ktime_get_ns();
  ts.armedFor = Infinity;
  while (ts.timers.length && ts.timers[0]!.expires <= now) {
    const t = ts.timers.shift()!;
    t.active = false;
    ts.fired++;
    t.function();
  }
  program();
}
