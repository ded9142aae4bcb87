/* The part of <sys/mman.h> llama2.c's run.c uses, for the bare-metal instruction-count harness
 * (picolibc has none): mmap of a read-only file returns its bytes where the harness sees them
 * (memory-mapped flash on the ESP32-C3, RAM on QEMU's virt machine). harness.c defines both. */
#ifndef EF_ISA_SYS_MMAN_H
#define EF_ISA_SYS_MMAN_H
#include <stddef.h>
#include <sys/types.h>
#define PROT_READ 1
#define MAP_PRIVATE 2
#define MAP_FAILED ((void *)-1)
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int munmap(void *addr, size_t len);
#endif
