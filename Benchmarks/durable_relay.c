/* The durable floor for publish-to-subscriber latency: relay.c plus what durability costs at
 * the least. Each chunk read from a publisher (one line when lines come one at a time; several
 * when they arrive together, the analogue of a group commit) is appended to a file and
 * fdatasync'ed before it is forwarded to every other connection. No parsing, no database.
 * Build: cc -O2 -o durable_relay durable_relay.c ; run: ./durable_relay SOCKET FILE */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 256

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: durable_relay SOCKET FILE\n"); return 2; }
    int log = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log < 0) { perror("open"); return 1; }
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, argv[1], sizeof address.sun_path - 1);
    unlink(argv[1]);
    if (bind(server, (struct sockaddr *)&address, sizeof address) || listen(server, 256)) { perror("bind"); return 1; }
    struct pollfd fds[MAX_CLIENTS + 1] = {{.fd = server, .events = POLLIN}};
    int count = 1;
    static char buffer[1 << 16];
    for (;;) {
        if (poll(fds, count, -1) < 0) continue;
        if (fds[0].revents & POLLIN && count <= MAX_CLIENTS) {
            fds[count].fd = accept(server, NULL, NULL);
            fds[count].events = POLLIN;
            fds[count].revents = 0;
            count++;
        }
        for (int i = 1; i < count; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n <= 0) { close(fds[i].fd); fds[i] = fds[--count]; i--; continue; }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(log, buffer + off, n - off);
                if (w <= 0) { perror("write"); return 1; }
                off += w;
            }
            if (fdatasync(log) != 0) { perror("fdatasync"); return 1; }
            for (int j = 1; j < count; j++) {
                if (j == i) continue;
                for (ssize_t off = 0; off < n;) {
                    ssize_t w = write(fds[j].fd, buffer + off, n - off);
                    if (w <= 0) break;
                    off += w;
                }
            }
        }
    }
}
