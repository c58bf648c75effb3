/*
 * IRQs (LKL's arch/lkl/kernel/irq.c): handlers by number, raising an IRQ with data from
 * anywhere, and running the queued IRQs in raise order at each hand-over of the CPU token
 * (cpu.ts). Handlers run in IRQ context: synchronous, never sleeping.
 */
import { pr_err, pr_warn } from '../kernel/printk.js';
import { cpu_state } from './cpu.js';

/* Fixed IRQ numbers of the lkl-ts "machine" (arch/lkl/include/asm/irq.h); devices get theirs from alloc_irq_number(). */
export const IRQ_TIMER = 0;
export const IRQ_SYSCALL = 1;

export interface IrqEntry { irq: number; data: unknown }
export type IrqHandler = (irq: number, data: unknown) => void;

export function request_irq(irq: number, handler: IrqHandler): void {
  if (cpu_state().irqHandlers.has(irq)) throw new Error(`irq ${irq} already requested`);
  cpu_state().irqHandlers.set(irq, handler);
}
export function free_irq(irq: number): void { cpu_state().irqHandlers.delete(irq); }

/** A fresh IRQ number for a device (numbered anew each boot, from 16). */
export function alloc_irq_number(): number { return cpu_state().nextIrq++; }

/**
 * Raise an IRQ carrying data. Callable from host code at any time, and from kernel code.
 * Never runs the handler synchronously: it runs at the next hand-over, in raise order.
 */
export function trigger_irq(irq: number, data?: unknown): void {
  const c = cpu_state();
  if (c.halted) return;
  c.pendingIrqs.push({ irq, data });
  if (c.current === null) c.idleSem.up();
}

/** Run the queued IRQs (cpu.ts calls this at each hand-over, with nobody on the CPU). */
export function run_irqs(): void {
  const c = cpu_state();
  if (c.pendingIrqs.length === 0) return;
  c.inIrq = true;
  try {
    // Handlers may raise more IRQs; run them too, still in order.
    while (c.pendingIrqs.length) {
      const e = c.pendingIrqs.shift()!;
      const h = c.irqHandlers.get(e.irq);
      c.irqCount++;
      if (h) {
        try { h(e.irq, e.data); } catch (err) {
          pr_err(`BUG: irq ${e.irq} handler threw: ${(err as Error)?.stack ?? err}`);
        }
      } else pr_warn(`irq ${e.irq}: no handler`);
    }
  } finally { c.inIrq = false; }
}

export function in_irq(): boolean { return cpu_state().inIrq; }
export function irqsServed(): number { return cpu_state().irqCount; }
