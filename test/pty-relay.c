/* A pseudo-terminal for a test double written in TypeScript (test/rom-loader-mock.ts): opens a pty with
 * the device runtime's own ef_serial_pty (boards/runtime/posix/serial.c, raw on both sides), prints
 * {"pty": PATH} on stdout, then relays bytes: what a client writes to PATH comes out on stdout, what
 * comes in on stdin goes to the client. Ends when stdin closes. Node has no pty of its own. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>
#include "../boards/runtime/posix/serial.h"

static int write_all(int fd, const unsigned char *b, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, b, (size_t)n);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -1;
    }
    b += w;
    n -= w;
  }
  return 0;
}

int main(void) {
  char path[256];
  int slave;   /* kept open by the runtime's helper so reads between two hosts do not fail */
  int m = ef_serial_pty(path, sizeof path, &slave);
  if (m < 0) {
    perror("pty-relay: cannot open a pty");
    return 1;
  }
  printf("{\"pty\":\"%s\"}\n", path);
  fflush(stdout);
  unsigned char buf[65536];
  struct pollfd p[2] = {{m, POLLIN, 0}, {0, POLLIN, 0}};
  for (;;) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (p[0].revents & POLLIN) {
      ssize_t n = read(m, buf, sizeof buf);
      if (n > 0 && write_all(1, buf, n)) return 1;
    }
    if (p[1].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) return 0;
      if (write_all(m, buf, n)) return 1;
    }
  }
}
