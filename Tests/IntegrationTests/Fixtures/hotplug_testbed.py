#!/usr/bin/python3
"""A umockdev testbed that plugs USB devices in and out while a program (tilld) runs in it.

Run under umockdev's preload, with the program after `--`:

    umockdev-wrapper /usr/bin/python3 hotplug_testbed.py --control CONTROL.sock \
        [--plug "NAME KIND VID PID SERIAL PORT"]... -- tilld ARGS...

Devices given with --plug are there before the program starts. Then each connection to the
control socket sends one command line and gets one reply line ("ok ..." or "error ..."):

    plug NAME KIND VID PID SERIAL PORT   KIND: serial (a CDC ACM tty, /dev/ttyACMn),
                                         keyboard (an input event node that is a keyboard),
                                         printer (usblp bound to its interface, /dev/usb/lpN),
                                         usbprinter (opened by libusb; an 8th word gives its
                                         bulk transfers, EP:HEX,EP:HEX...),
                                         device (a USB device with no node of ours);
                                         SERIAL "-" for none; PORT the hub port ("1", "1.2")
    unplug NAME                          remove uevents for the node, the interface, the device
    send NAME HEX                        bytes from the device on its tty (a scanner's code)

Every plug gives a new node number, as a kernel may on replug. The testbed ends when the
program does, with its exit status.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import GLib, UMockdev  # noqa: E402

CONTROLLER = "/devices/pci0000:00/0000:00:14.0/usb1"


class Testbed:
    def __init__(self):
        self.bed = UMockdev.Testbed.new()
        self.devices = {}  # name -> (paths child first, node)
        self.next_tty = 0
        self.next_event = 10
        self.next_dev = 0
        self.lock = threading.Lock()

    def plug(self, name, kind, vid, pid, serial, port, transfers=None):
        if name in self.devices:
            return "error %s is plugged in already" % name
        usb = "%s/1-%s" % (CONTROLLER, port)
        id_path = "pci-0000:00:14.0-usb-0:%s" % port
        interface = usb + "/1-%s:1.0" % port
        serial_attr = "" if serial == "-" else "A: serial=%s\n" % serial
        usb_block = (
            "P: %s\nE: DEVTYPE=usb_device\nE: SUBSYSTEM=usb\nE: ID_PATH=%s\nE: DEVNAME=/dev/bus/usb/001/%03d\n"
            "A: idVendor=%s\nA: idProduct=%s\nA: busnum=1\nA: devnum=%d\n%s"
            % (usb, id_path, 10 + self.next_tty, vid, pid, 10 + self.next_tty, serial_attr)
        )
        if kind == "serial":
            node = "/dev/ttyACM%d" % self.next_tty
            tty = interface + "/tty/ttyACM%d" % self.next_tty
            text = (
                "P: %s\nN: ttyACM%d\nE: DEVNAME=%s\nE: SUBSYSTEM=tty\nE: ID_PATH=%s:1.0\nA: dev=166:%d\n\n"
                "P: %s\nE: DEVTYPE=usb_interface\nE: SUBSYSTEM=usb\nE: DRIVER=cdc_acm\nL: driver=../../../../../../bus/usb/drivers/cdc_acm\nE: ID_PATH=%s:1.0\nA: bInterfaceClass=02\n\n%s"
                % (tty, self.next_tty, node, id_path, self.next_tty, interface, id_path, usb_block)
            )
            paths = [tty, interface, usb]
            self.next_tty += 1
        elif kind == "keyboard":
            node = "/dev/input/event%d" % self.next_event
            event = interface + "/input/input%d/event%d" % (self.next_event, self.next_event)
            text = (
                "P: %s\nN: input/event%d\nE: DEVNAME=%s\nE: SUBSYSTEM=input\nE: ID_INPUT=1\nE: ID_INPUT_KEY=1\nE: ID_INPUT_KEYBOARD=1\n"
                "E: ID_PATH=%s:1.0\nA: dev=13:%d\n\n"
                "P: %s\nE: DEVTYPE=usb_interface\nE: SUBSYSTEM=usb\nE: DRIVER=usbhid\nA: bInterfaceClass=03\n\n%s"
                % (event, self.next_event, node, id_path, 64 + self.next_event, interface, usb_block)
            )
            paths = [event, interface, usb]
            self.next_event += 1
        elif kind == "printer":
            # A USB printer with the usblp kernel driver bound to its printer-class interface.
            node = "/dev/usb/lp%d" % self.next_tty
            lp = interface + "/usbmisc/lp%d" % self.next_tty
            text = (
                "P: %s\nN: usb/lp%d\nE: DEVNAME=%s\nE: SUBSYSTEM=usbmisc\nA: dev=180:%d\n\n"
                "P: %s\nE: DEVTYPE=usb_interface\nE: SUBSYSTEM=usb\nE: DRIVER=usblp\nL: driver=../../../../../../bus/usb/drivers/usblp\nA: bInterfaceClass=07\n\n%s"
                % (lp, self.next_tty, node, self.next_tty, interface, usb_block)
            )
            paths = [lp, interface, usb]
            self.next_tty += 1
        elif kind == "usbprinter":
            # A printer libusb opens (its descriptors in sysfs); TRANSFERS is its dialogue, one
            # bulk transfer each, comma-separated EP:HEX (01:1B40... out, 82:12 in), replayed by
            # umockdev: a transfer that is not the next one expected fails, so a second copy of
            # a job cannot go unseen.
            self.next_dev += 1
            devnum = 100 + self.next_dev
            node = "/dev/bus/usb/001/%03d" % devnum
            v, p_ = int(vid, 16), int(pid, 16)
            device = bytes([18, 1, 0x00, 0x02, 0, 0, 0, 64, v & 255, v >> 8, p_ & 255, p_ >> 8, 0x00, 0x01, 1, 2, 3, 1])
            body = bytes([9, 4, 0, 0, 2, 7, 1, 2, 0]) + bytes([7, 5, 0x01, 2, 64, 0, 0]) + bytes([7, 5, 0x82, 2, 64, 0, 0])
            config = bytes([9, 2, 9 + len(body), 0, 1, 1, 0, 0xC0, 1]) + body
            text = (
                "P: %s\nN: bus/usb/001/%03d\nE: DEVNAME=%s\nE: DEVTYPE=usb_device\nE: DRIVER=usb\nE: SUBSYSTEM=usb\n"
                "E: BUSNUM=001\nE: DEVNUM=%03d\nE: ID_PATH=%s\nA: busnum=1\nA: devnum=%d\nA: idVendor=%s\nA: idProduct=%s\n%s"
                "A: bConfigurationValue=1\nA: bNumConfigurations=1\nA: speed=480\nH: descriptors=%s\n"
                % (usb, devnum, node, devnum, id_path, devnum, vid, pid, serial_attr, (device + config).hex().upper())
            )
            paths = [usb]
        elif kind == "device":
            node = "-"
            text = usb_block
            paths = [usb]
        else:
            return "error unknown kind %s" % kind
        if not self.bed.add_from_string(text):
            return "error umockdev took no device from the description"
        if kind == "usbprinter":
            script = os.path.join(self.bed.get_root_dir(), "%s-%d.ioctl" % (name, self.next_dev))
            lines = ["@DEV %s (usbdevfs)" % node]
            for transfer in (transfers or "").split(","):
                if not transfer:
                    continue
                ep, data = transfer.split(":")
                ep, data = int(ep, 16), bytes.fromhex(data)
                length = len(data) if ep < 0x80 else 64
                lines.append("USBDEVFS_REAPURBNDELAY 0 3 %d 0 0 %d %d 0 %s" % (ep, length, len(data), data.hex().upper()))
            with open(script, "w") as f:
                f.write("\n".join(lines) + "\n")
            self.bed.load_ioctl(node, script)
        for path in reversed(paths):
            self.bed.uevent("/sys" + path, "add")
        self.devices[name] = (paths, node)
        return "ok %s" % node

    def unplug(self, name):
        if name not in self.devices:
            return "error %s is not plugged in" % name
        paths, node = self.devices.pop(name)
        # The kernel hangs up a tty whose device is gone (a reader gets EIO): close our end of
        # its pty, which umockdev keeps open on removal.
        if node.startswith("/dev/tty"):
            fd = self.bed.get_dev_fd(node)
            root = self.bed.get_root_dir()
            pts = os.readlink(root + node)  # the pty umockdev backs the node with
            if fd >= 0:
                os.close(fd)
            # The next pty may get the same number: umockdev's map entry for it must go too.
            stale = os.path.join(root, "dev", ".ptymap", pts.replace("/", "_"))
            if os.path.lexists(stale):
                os.remove(stale)
        for path in paths:
            self.bed.uevent("/sys" + path, "remove")
        # Child first, each with its bus and class links, so the same port can be plugged again.
        for path in paths:
            self.bed.remove_device("/sys" + path)
        return "ok"

    def send(self, name, data):
        if name not in self.devices:
            return "error %s is not plugged in" % name
        _, node = self.devices[name]
        fd = self.bed.get_dev_fd(node)
        if fd < 0:
            return "error %s has no tty" % name
        os.write(fd, bytes.fromhex(data))
        return "ok"

    def command(self, line):
        words = line.split()
        with self.lock:
            try:
                if words[0] == "plug" and len(words) in (7, 8):
                    return self.plug(*words[1:])
                if words[0] == "unplug" and len(words) == 2:
                    return self.unplug(words[1])
                if words[0] == "send" and len(words) == 3:
                    return self.send(words[1], words[2])
            except Exception as error:  # said to the test, which fails with it
                return "error %s" % error
        return "error cannot read %r" % line


def on_main_loop(work):
    """Runs `work` on the GLib main loop's thread and returns its result: umockdev's testbed
    (its ioctl handlers above all) is only safe to change from the thread that runs its loop."""
    done = threading.Event()
    result = []

    def run():
        result.append(work())
        done.set()
        return False

    GLib.idle_add(run)
    done.wait()
    return result[0]


def serve(bed, path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    while True:
        connection, _ = server.accept()
        with connection:
            line = connection.makefile("r").readline().strip()
            reply = on_main_loop(lambda: bed.command(line))
            connection.sendall((reply + "\n").encode())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--control", required=True)
    parser.add_argument("--plug", action="append", default=[])
    parser.add_argument("program", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    program = options.program[1:] if options.program[:1] == ["--"] else options.program
    bed = Testbed()
    for device in options.plug:
        reply = bed.command("plug " + device)
        if not reply.startswith("ok"):
            sys.exit("hotplug_testbed: --plug %s: %s" % (device, reply))
    threading.Thread(target=serve, args=(bed, options.control), daemon=True).start()
    # The program gets the testbed explicitly: os.environ does not see what the library set.
    environment = dict(os.environ, UMOCKDEV_DIR=bed.bed.get_root_dir())
    child = subprocess.Popen(program, env=environment)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    # The main loop serves umockdev (uevents, ioctl replay) until the program ends.
    loop = GLib.MainLoop()
    status = []

    def ended():
        if child.poll() is None:
            return True
        status.append(child.returncode)
        loop.quit()
        return False

    GLib.timeout_add(50, ended)
    loop.run()
    sys.exit(status[0] if status else 1)


if __name__ == "__main__":
    main()
