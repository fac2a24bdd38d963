/* The floors for publish-to-subscriber latency: a minimal program that relays each line it
 * reads on one Unix-socket connection to every other connection. No parsing, no journal, no
 * validation. Given FILE, it is the durable floor: each chunk read from a publisher (one line
 * when lines come one at a time; several when they arrive together, the analogue of a group
 * commit) is appended to FILE and fdatasync'ed before it is forwarded: the least a durable
 * relay can do. With --ack, after forwarding a chunk it also answers its sender with one line
 * per line relayed: what a publisher that waits for its acknowledgement (tilld's protocol, a
 * POS) needs, so the floor pays the reply and the publisher's wake-up as tilld does.
 * Build: cc -O2 -o relay relay.c ; run: ./relay [--ack] SOCKET [FILE] */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 256

static void write_all(int fd, const char *data, ssize_t n) {
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) return;
        off += w;
    }
}

int main(int argc, char **argv) {
    int ack = argc > 1 && strcmp(argv[1], "--ack") == 0;
    if (ack) { argc--; argv++; }
    if (argc != 2 && argc != 3) { fprintf(stderr, "usage: relay [--ack] SOCKET [FILE]\n"); return 2; }
    int log = -1;
    if (argc == 3 && (log = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) { perror("open"); return 1; }
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
            if (log >= 0) {
                write_all(log, buffer, n);
                if (fdatasync(log) != 0) { perror("fdatasync"); return 1; }
            }
            for (int j = 1; j < count; j++) {
                if (j != i) write_all(fds[j].fd, buffer, n);
            }
            if (ack) {
                static char acks[1 << 16];
                ssize_t lines = 0;
                for (ssize_t k = 0; k < n; k++) if (buffer[k] == '\n') acks[lines++] = '\n';
                write_all(fds[i].fd, acks, lines);
            }
        }
    }
}
