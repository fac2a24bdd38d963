// CTillSystem is mostly header-only (static inline wrappers); what needs storage (a thread-local) is here.
#include "CTillSystem.h"

static __thread int till_may_block;

void till_set_thread_may_block(int may_block) { till_may_block = may_block; }

int till_thread_may_block(void) { return till_may_block; }
