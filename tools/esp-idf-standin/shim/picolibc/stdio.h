/* Stand-in compilers only (tools/esp-idf-standin): Debian's picolibc 1.8 <stdio.h> leaves ssize_t undefined; ESP-IDF v6's
 * platform_include/stdio.h uses it right after including this header. */
#include <sys/types.h>
#include_next <stdio.h>
