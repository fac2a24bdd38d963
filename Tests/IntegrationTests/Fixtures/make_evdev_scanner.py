#!/usr/bin/env python3
"""(Copied from ../shared/fixtures/umockdev and extended: letters y, z, q, w, r, t, tab, and
Shift for capitals.) Writes a umockdev device description, ioctl file and read script for a keyboard-wedge
barcode scanner at /dev/input/event5 that types the given text (US layout keycodes) and Enter.

  make_evdev_scanner.py OUTDIR 4001
  umockdev-run --device OUTDIR/scanner.umockdev \
      --ioctl /dev/input/event5=OUTDIR/scanner.ioctl \
      --script /dev/input/event5=OUTDIR/scanner.script -- PROGRAM

libevdev_new_from_fd, libevdev_grab and libevdev_next_event work against it (checked).
The ioctl file answers every ioctl libevdev asks at open; the script's 'r' lines are the
struct input_event records the program reads (64-bit layout), escaped as umockdev wants.
"""
import os
import struct
import sys

from umockdev_script import escape  # beside this file

# US-layout key positions (linux/input-event-codes.h). The scanner sends key positions, not
# characters: under another layout the same keys type other characters (y and z swap in "de").
KEYCODES = {"1": 2, "2": 3, "3": 4, "4": 5, "5": 6, "6": 7, "7": 8, "8": 9, "9": 10, "0": 11,
            "\n": 28, "\t": 15, "a": 30, "b": 48, "c": 46, "d": 32, "e": 18, "f": 33,
            "q": 16, "w": 17, "r": 19, "t": 20, "y": 21, "z": 44, "-": 12}
KEY_LEFTSHIFT = 42
EV_SYN, EV_KEY = 0, 1


def bits(nbytes, setbits):
    b = bytearray(nbytes)
    for i in setbits:
        b[i // 8] |= 1 << (i % 8)
    return bytes(b).hex().upper()


def event(t, code, value):
    return struct.pack("<qqHHi", 1700000000, 0, t, code, value)


def main(outdir, text, name="Honeywell Scanner", vid=0x0C2E, pid=0x0B81, node=5, prefix="scanner"):
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, prefix + ".umockdev"), "w") as f:
        f.write(f"""P: /devices/virtual/input/input{node}/event{node}
N: input/event{node}
E: DEVNAME=/dev/input/event{node}
E: ID_INPUT=1
E: ID_INPUT_KEY=1
E: ID_INPUT_KEYBOARD=1
E: ID_VENDOR_ID={vid:04x}
E: ID_MODEL_ID={pid:04x}
E: MAJOR=13
E: MINOR={64 + node}
E: SUBSYSTEM=input
A: dev=13:{64 + node}

P: /devices/virtual/input/input{node}
E: NAME="{name}"
E: SUBSYSTEM=input
A: name={name}
""")
    ident = struct.pack("<HHHH", 3, vid, pid, 1).hex().upper()
    lines = [f"@DEV /dev/input/event{node}",
             "EVIOCGVERSION 0 01000100",
             f"EVIOCGID 0 {ident}",
             f"EVIOCGNAME(0) {len(name) + 1} " + (name.encode() + b"\0").ljust(255, b"\0").hex().upper(),
             "EVIOCGPROP(0) 0 " + bits(8, []),
             "EVIOCGBIT(0) 8 " + bits(8, [0, 1, 4, 17, 20]),
             "EVIOCGBIT(1) 96 " + bits(96, range(1, 120)),
             "EVIOCGBIT(2) 0 " + bits(8, []),
             "EVIOCGBIT(3) 0 " + bits(8, []),
             "EVIOCGBIT(4) 8 " + bits(8, [4]),
             "EVIOCGBIT(5) 0 " + bits(8, []),
             "EVIOCGBIT(17) 8 " + bits(8, [0, 1, 2]),
             "EVIOCGBIT(18) 0 " + bits(8, []),
             "EVIOCGBIT(21) 0 " + bits(16, []),
             "EVIOCGKEY(0) 96 " + bits(96, []),
             "EVIOCGLED(0) 8 " + bits(8, []),
             "EVIOCGSW(0) 0 " + bits(8, []),
             "EVIOCGREP 0 FA00000021000000"]
    with open(os.path.join(outdir, prefix + ".ioctl"), "w") as f:
        f.write("\n".join(lines) + "\n")
    script = []
    for ch in text + "\n":
        shifted = ch.isupper()
        code = KEYCODES[ch.lower()]
        if shifted:
            script.append("r 5 " + escape(event(EV_KEY, KEY_LEFTSHIFT, 1) + event(EV_SYN, 0, 0)))
        for value in (1, 0):
            script.append("r 5 " + escape(event(EV_KEY, code, value) + event(EV_SYN, 0, 0)))
        if shifted:
            script.append("r 5 " + escape(event(EV_KEY, KEY_LEFTSHIFT, 0) + event(EV_SYN, 0, 0)))
    with open(os.path.join(outdir, prefix + ".script"), "w", encoding="latin-1") as f:
        f.write("\n".join(script) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "4006381333931")
    if "--keyboard" in sys.argv[3:]:
        # A real keyboard beside the scanner (keyboard.* at /dev/input/event3): someone types
        # on it while the scanner scans. tilld must never open it.
        main(sys.argv[1], "qwerty", name="AT Translated Set 2 keyboard", vid=0x0001, pid=0x0001, node=3, prefix="keyboard")
