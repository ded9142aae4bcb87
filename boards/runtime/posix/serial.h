/* The serial line: any tty or pty in raw mode (termios) at a baud rate, or stdin/stdout. */
#ifndef EF_SERIAL_H
#define EF_SERIAL_H
#include <stdint.h>
/* Opens path raw at baud (0: leave the rate, as for a pty); returns the fd or -1. */
int ef_serial_open(const char *path, uint32_t baud);
/* Creates a pseudo-terminal in raw mode; returns the master fd, writes the slave's path and gives the
 * runtime's own descriptor of the slave (closed with the master when the link drops). */
int ef_serial_pty(char *path, uint32_t cap, int *slave);
#endif
