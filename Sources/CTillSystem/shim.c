// CTillSystem is header-only (static inline wrappers); SwiftPM wants one source file.
#include "CTillSystem.h"
