/* Start-up of the instruction-count harness (tools/bench/isa/harness.c): stack, gp, .bss zeroed,
 * then ef_isa_main. Entered from QEMU's reset (virt: -bios none -kernel) or from the ESP32-C3 ROM's
 * flash boot, which has already copied every segment into SRAM (so no .data copy here). */
  .section .text.entry, "ax"
  .globl _start
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, __stack
  la t0, ef_isa_trap_entry        /* a fault ends the run with a line, not a hang */
  .option push
  .option arch, +zicsr
  csrw mtvec, t0
  .option pop
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sw zero, 0(t0)
  addi t0, t0, 4
  j 1b
2:
  call ef_isa_main
3:
  j 3b

  .balign 4
ef_isa_trap_entry:
  la sp, __stack
  call ef_isa_trap
4:
  j 4b
