#ifndef TILL_CSYSTEMD_SHIM_H
#define TILL_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#endif
