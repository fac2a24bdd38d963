// The floor for hotplug latency: a bare libudev monitor that prints, for each event, the
// CLOCK_MONOTONIC time it received it (seconds), its action and its syspath. Built and run by
// Benchmarks/hotplug_bench.py in the same umockdev testbed as tilld.
#include <libudev.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

int main(void) {
    struct udev *udev = udev_new();
    struct udev_monitor *monitor = udev_monitor_new_from_netlink(udev, "udev");
    udev_monitor_filter_add_match_subsystem_devtype(monitor, "tty", NULL);
    udev_monitor_enable_receiving(monitor);
    printf("ready\n");
    fflush(stdout);
    struct pollfd entry = { udev_monitor_get_fd(monitor), POLLIN, 0 };
    while (poll(&entry, 1, -1) > 0) {
        struct udev_device *device;
        while ((device = udev_monitor_receive_device(monitor)) != NULL) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            printf("%ld.%09ld %s %s\n", (long)now.tv_sec, now.tv_nsec, udev_device_get_action(device), udev_device_get_syspath(device));
            fflush(stdout);
            udev_device_unref(device);
        }
    }
    return 0;
}
