/* The entry the ESP app image names: the ROM's flash boot jumps here with the segments in RAM, interrupts
 * as the ROM left them, and its own stack. Interrupts off (the runtime polls), gp and sp ours, bss zeroed
 * (data was copied by the ROM with the image), the flash mapped (flash_storage.c), then c_start (main.c). */
  .section .text.start, "ax"
  .globl _start
_start:
  .option push
  .option arch, +zicsr
  csrci mstatus, 8                /* MIE off: nothing here takes an interrupt */
  .option pop
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, __stack
  la a0, __bss_start
  la a1, __bss_end
1:
  bgeu a0, a1, 2f
  sw zero, 0(a0)
  addi a0, a0, 4
  j 1b
2:
  call ef_c3_flash_map            /* the flash part mapped: from here code in flash runs */
  call c_start
3:
  j 3b
