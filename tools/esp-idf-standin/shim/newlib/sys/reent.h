/* Stand-in compilers only (tools/esp-idf-standin): Debian's newlib 3.3 declares _global_impure_ptr const; Espressif's newlib 4
 * (and ESP-IDF's own declaration from v5.5) do not, and the two declarations would conflict. */
#define _global_impure_ptr _ef_global_impure_ptr_newlib33
#include_next <sys/reent.h>
#undef _global_impure_ptr
extern struct _reent *_global_impure_ptr __ATTRIBUTE_IMPURE_PTR__;
