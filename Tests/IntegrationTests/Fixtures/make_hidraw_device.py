#!/usr/bin/env python3
"""Writes a umockdev description and read script for a USB HID device at /dev/hidraw0 whose
report descriptor (the sysfs attribute the kernel keeps, report_descriptor) and input reports
are given as hex: a HID POS scanner for tilld's hidpos-scanner driver.

  make_hidraw_device.py OUTDIR DESCRIPTOR_HEX REPORT_HEX [REPORT_HEX ...]
  umockdev-run --device OUTDIR/hidraw.umockdev --script /dev/hidraw0=OUTDIR/hidraw.script -- PROGRAM

Checked on this machine: the descriptor reads back from
/sys/class/hidraw/hidraw0/../../report_descriptor, and the reports from /dev/hidraw0. A replay
may hand several reports to one read (a real hidraw read is one report); the driver splits
them by the descriptor's report lengths.
"""
import os
import sys


from umockdev_script import escape  # beside this file


def main(outdir, descriptor, reports, vid=0x0C2E, pid=0x0B87):
    os.makedirs(outdir, exist_ok=True)
    hid = f"/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/0003:{vid:04X}:{pid:04X}.0001"
    with open(os.path.join(outdir, "hidraw.umockdev"), "w") as f:
        f.write(f"""P: {hid}
E: DRIVER=hid-generic
E: HID_ID=0003:0000{vid:04X}:0000{pid:04X}
E: HID_NAME=Honeywell HID POS Scanner
E: SUBSYSTEM=hid
H: report_descriptor={descriptor.upper()}

P: {hid}/hidraw/hidraw0
N: hidraw0
E: DEVNAME=/dev/hidraw0
E: MAJOR=243
E: MINOR=0
E: SUBSYSTEM=hidraw
A: dev=243:0
""")
    with open(os.path.join(outdir, "hidraw.script"), "w") as f:
        for report in reports:
            data = bytes.fromhex(report)
            if any(x >= 127 for x in data):
                raise SystemExit("this generator writes 7-bit reports only")
            f.write(f"r 20 {escape(data)}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
