// CTillSystem is mostly header-only (static inline wrappers); what needs storage (a thread-local) is here.
#define _GNU_SOURCE  // statx
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "CTillSystem.h"

static __thread int till_may_block;

void till_set_thread_may_block(int may_block) { till_may_block = may_block; }

int till_thread_may_block(void) { return till_may_block; }

int till_file_identity(const char *path, unsigned long long *device, unsigned long long *inode) {
    struct statx info;
    // glibc's statx emulates the call with fstatat on a kernel without it (before 4.11).
    if (statx(AT_FDCWD, path, AT_STATX_SYNC_AS_STAT, STATX_INO, &info) != 0) return -1;
    *device = makedev(info.stx_dev_major, info.stx_dev_minor);
    *inode = info.stx_ino;
    return 0;
}
