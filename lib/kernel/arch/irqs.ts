/* Fixed IRQ numbers of the lkl-ts "machine" (arch/lkl/include/asm/irq.h). Devices get theirs from alloc_irq_number(). */
export const IRQ_TIMER = 0;
export const IRQ_SYSCALL = 1;
