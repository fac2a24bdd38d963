"""What the umockdev fixture generators share: umockdev's escaping of the bytes a device sends
in a script's 'r' lines (control bytes and space as ^ plus a letter, ^ itself as ^`)."""


def escape(data):
    out = []
    for x in data:
        if x == 94:
            out.append("^`")
        elif x <= 32:
            out.append("^" + chr(x + 64))
        else:
            out.append(chr(x))
    return "".join(out)
