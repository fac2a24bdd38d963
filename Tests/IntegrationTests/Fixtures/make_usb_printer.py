#!/usr/bin/env python3
"""Writes a umockdev description and ioctl file for a USB receipt printer (default: Epson
TM-T20II, 04b8:0e15, printer class interface, bulk OUT 0x01 / IN 0x82) at /dev/bus/usb/001/002.

  make_usb_printer.py OUTDIR [EP:HEX ...]

(Adapted for tilld's tests: the dialogue comes from the command line, one EP:HEX per bulk
transfer in order, e.g. 01:1B40 for ESC @ out and 82:12 for a status byte in.)
  umockdev-run --device OUTDIR/printer.umockdev \
      --ioctl /dev/bus/usb/001/002=OUTDIR/printer.ioctl -- PROGRAM

libusb enumerates and opens it; each REAPURB line answers one bulk transfer in order:
fields are ret, urb type (3 = bulk), endpoint, status, flags, buffer length, actual length,
?, data (hex). An OUT transfer must carry exactly the recorded bytes; edit EXCHANGES to
script the dialogue your test needs (the job's bytes out, a DLE EOT reply in, ...).
The buffer length of an IN line must equal the length the program asks libusb to read (64 here).
"""
import os
import sys

EXCHANGES = [
    (0x01, bytes.fromhex("1B40") + b"hello\n"),  # OUT: ESC @ "hello\n"
    (0x82, bytes([0x12])),                         # IN: status byte, all clear
]


def main(outdir, vid=0x04B8, pid=0x0E15, serial="X5TEST"):
    os.makedirs(outdir, exist_ok=True)
    dev = bytes([18, 1, 0x00, 0x02, 0, 0, 0, 64, vid & 255, vid >> 8, pid & 255, pid >> 8, 0x00, 0x01, 1, 2, 3, 1])
    body = bytes([9, 4, 0, 0, 2, 7, 1, 2, 0]) + bytes([7, 5, 0x01, 2, 64, 0, 0]) + bytes([7, 5, 0x82, 2, 64, 0, 0])
    cfg = bytes([9, 2, 9 + len(body), 0, 1, 1, 0, 0xC0, 1]) + body
    with open(os.path.join(outdir, "printer.umockdev"), "w") as f:
        f.write(f"""P: /devices/pci0000:00/0000:00:14.0/usb1/1-1
N: bus/usb/001/002
E: DEVNAME=/dev/bus/usb/001/002
E: DEVTYPE=usb_device
E: DRIVER=usb
E: PRODUCT={vid:x}/{pid:x}/100
E: TYPE=0/0/0
E: BUSNUM=001
E: DEVNUM=002
E: MAJOR=189
E: MINOR=1
E: SUBSYSTEM=usb
E: ID_PATH=pci-0000:00:14.0-usb-0:1
A: busnum=1
A: devnum=2
A: idVendor={vid:04x}
A: idProduct={pid:04x}
A: serial={serial}
A: manufacturer=EPSON
A: product=TM-T20II
A: bConfigurationValue=1
A: bNumConfigurations=1
A: speed=480
H: descriptors={(dev + cfg).hex().upper()}
""")
    lines = ["@DEV /dev/bus/usb/001/002 (usbdevfs)"]
    for ep, data in EXCHANGES:
        buflen = len(data) if ep < 0x80 else 64
        lines.append(f"USBDEVFS_REAPURBNDELAY 0 3 {ep} 0 0 {buflen} {len(data)} 0 {data.hex().upper()}")
    with open(os.path.join(outdir, "printer.ioctl"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 2:
        EXCHANGES[:] = [(int(ep, 16), bytes.fromhex(data)) for ep, data in (arg.split(":") for arg in sys.argv[2:])]
    main(sys.argv[1])
