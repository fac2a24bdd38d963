/* The floor for scan-to-subscriber latency: reads a serial line (a pty's device side, as tilld
 * reads a scanner), cuts it at CR, and writes each line to the one subscriber connected to a
 * Unix socket. Given FILE, it also appends each line to it and fdatasyncs before forwarding
 * (tilld journals a scan before it delivers it): the durable floor.
 *
 *   pty_relay TTY SOCKET [FILE]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: pty_relay TTY SOCKET [FILE]\n"); return 2; }
    int tty = open(argv[1], O_RDWR | O_NOCTTY);
    if (tty < 0) { perror("open tty"); return 1; }
    struct termios t;
    tcgetattr(tty, &t);
    cfmakeraw(&t);
    tcsetattr(tty, TCSANOW, &t);
    int file = argc > 3 ? open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, argv[2], sizeof(address.sun_path) - 1);
    unlink(argv[2]);
    if (bind(listener, (struct sockaddr *)&address, sizeof(address)) < 0 || listen(listener, 1) < 0) { perror("listen"); return 1; }
    int subscriber = accept(listener, NULL, NULL);
    char buffer[4096], line[8192];
    size_t length = 0;
    for (;;) {
        ssize_t got = read(tty, buffer, sizeof(buffer));
        if (got <= 0) return 0;
        for (ssize_t i = 0; i < got; i++) {
            if (buffer[i] == '\r') {
                line[length++] = '\n';
                if (file >= 0) { if (write(file, line, length) < 0 || fdatasync(file) < 0) return 1; }
                if (write(subscriber, line, length) < 0) return 0;
                length = 0;
            } else if (length < sizeof(line) - 1) {
                line[length++] = buffer[i];
            }
        }
    }
}
