/* Stand-in compilers only (tools/esp-idf-standin): Debian's newlib 3.3 <machine/setjmp.h> has no Xtensa case; newlib's own
 * jmp_buf for Xtensa's windowed ABI is 17 words. */
#if defined(__XTENSA__) && !defined(_JBLEN)
#define _JBLEN 17
#define _JBTYPE int
#endif
#include_next <machine/setjmp.h>
