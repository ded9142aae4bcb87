#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE
#include "serial.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static int raw(int fd, uint32_t baud) {
  struct termios t;
  if (tcgetattr(fd, &t)) return -1;
  cfmakeraw(&t);
  t.c_cflag |= CLOCAL | CREAD;
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (baud) {
    speed_t s;
    switch (baud) {
      case 9600: s = B9600; break;
      case 19200: s = B19200; break;
      case 38400: s = B38400; break;
      case 57600: s = B57600; break;
      case 115200: s = B115200; break;
      case 230400: s = B230400; break;
#ifdef B460800
      case 460800: s = B460800; break;
#endif
#ifdef B921600
      case 921600: s = B921600; break;
#endif
      default: return -2;
    }
    cfsetispeed(&t, s);
    cfsetospeed(&t, s);
  }
  return tcsetattr(fd, TCSANOW, &t);
}

int ef_serial_open(const char *path, uint32_t baud) {
  int fd = open(path, O_RDWR | O_NOCTTY);
  if (fd < 0) return -1;
  if (isatty(fd) && raw(fd, baud)) { close(fd); return -1; }
  return fd;
}

int ef_serial_pty(char *path, uint32_t cap, int *slave) {
  int fd = posix_openpt(O_RDWR | O_NOCTTY);
  const char *name;
  if (fd < 0 || grantpt(fd) || unlockpt(fd) || !(name = ptsname(fd)) || strlen(name) + 1 > cap) return -1;
  strcpy(path, name);
  {
    /* the slave side raw too, so the host sees the bytes as sent (no echo, no CR/LF mapping) */
    int s = open(name, O_RDWR | O_NOCTTY);
    if (s < 0) return -1;
    if (raw(s, 0)) { close(s); return -1; }
    /* s stays open as long as the master: with no slave open, reads on the master fail with EIO
     * between two host connections */
    *slave = s;
  }
  return fd;
}
