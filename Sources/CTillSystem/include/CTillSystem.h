#ifndef CTILLSYSTEM_H
#define CTILLSYSTEM_H

// The C calls Swift cannot make directly: ioctl is variadic. Each wrapper passes one typed
// argument, so the Swift side (TillSystem) never sees varargs.
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

static inline int till_ioctl_none(int fd, unsigned long request) {
    return ioctl(fd, request);
}

static inline int till_ioctl_int_pointer(int fd, unsigned long request, int *value) {
    return ioctl(fd, request, value);
}

// The calling thread's name (prctl is variadic; pthread_setname_np needs _GNU_SOURCE).
static inline int till_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, name, 0, 0, 0);
}

// Whether the calling thread may block in the kernel: set by a thread of tilld's own (a
// reader's), never true on the cooperative pool or an event loop. Thread-local in C because
// Swift has no thread-local storage of its own.
void till_set_thread_may_block(int may_block);
int till_thread_may_block(void);

// eventfd(2), non-blocking and close-on-exec (its flags are macros Swift does not import).
static inline int till_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

// The device and inode of the file at `path` (0, or -1 with errno), asking the kernel for
// nothing else. Why not stat(): on kernels with multigrain timestamps (6.13 on), reading a
// file's ctime or mtime makes its next write take a fine-grained timestamp, so the inode is
// dirtied at every write and each fdatasync writes it too. statx with STATX_INO alone leaves
// the timestamps unread.
int till_file_identity(const char *path, unsigned long long *device, unsigned long long *inode);

// Request codes as plain constants (some are macros Swift does not import).
static const unsigned long TILL_TIOCEXCL = TIOCEXCL;
static const unsigned long TILL_TIOCNXCL = TIOCNXCL;
static const unsigned long TILL_TIOCGEXCL = TIOCGEXCL;
static const unsigned long TILL_TIOCMGET = TIOCMGET;
static const unsigned long TILL_TIOCMBIS = TIOCMBIS;
static const unsigned long TILL_TIOCMBIC = TIOCMBIC;
static const unsigned long TILL_TIOCMSET = TIOCMSET;
// Modem line bits (TIOCMGET and friends).
static const int TILL_TIOCM_DTR = TIOCM_DTR;
static const int TILL_TIOCM_RTS = TIOCM_RTS;
static const int TILL_TIOCM_CTS = TIOCM_CTS;
static const int TILL_TIOCM_DSR = TIOCM_DSR;
static const int TILL_TIOCM_CAR = TIOCM_CAR;
static const int TILL_TIOCM_RNG = TIOCM_RNG;
// TIOCM_LOOP (the UART's loopback: outputs wired to inputs) is not in glibc's headers.
static const int TILL_TIOCM_LOOP = 0x8000;
static const unsigned long TILL_TIOCOUTQ = TIOCOUTQ;
static const unsigned long TILL_TIOCSPTLCK = TIOCSPTLCK;
static const unsigned long TILL_TIOCGPTN = TIOCGPTN;
static const unsigned int TILL_CRTSCTS = CRTSCTS;

#endif
