"""Writes a 64 KiB FAT12 filesystem (label FIRMWARE) holding EXTLINUX/EXTLINUX.CONF and IMAGE to
stdout: argv[1] and argv[2] are their contents. A seed for the vfat fuzz target."""
import struct
import sys

SECTOR, TOTAL = 512, 128
conf, image = (open(p, "rb").read() for p in sys.argv[1:3])
boot = bytearray(SECTOR)
boot[0:3] = b"\xeb\x3c\x90"
boot[3:11] = b"MSWIN4.1"
struct.pack_into("<HBHBHHBHHHLL", boot, 11, SECTOR, 1, 1, 2, 16, TOTAL, 0xF8, 1, 32, 2, 0, 0)
struct.pack_into("<BBBL11s8s", boot, 36, 0x80, 0, 0x29, 0x1A2B3C4D, b"FIRMWARE   ", b"FAT12   ")
boot[510:512] = b"\x55\xaa"

clusters = {}  # cluster -> next (0xFFF ends a chain)
data = {}
next_free = [2]


def store(content):
    count = max(1, -(-len(content) // SECTOR))
    first = next_free[0]
    for i in range(count):
        clusters[first + i] = first + i + 1 if i + 1 < count else 0xFFF
        data[first + i] = content[i * SECTOR:(i + 1) * SECTOR].ljust(SECTOR, b"\0")
    next_free[0] += count
    return first


def entry(name, attr, cluster, size):
    return struct.pack("<11sBBBHHHHHHHL", name, attr, 0, 0, 0, 0, 0, 0, 0, 0, cluster, size)


dir_cluster = next_free[0]
next_free[0] += 1
clusters[dir_cluster] = 0xFFF
conf_cluster = store(conf)
image_cluster = store(image)
data[dir_cluster] = (entry(b".          ", 0x10, dir_cluster, 0) + entry(b"..         ", 0x10, 0, 0)
                     + entry(b"EXTLINUXCONF", 0x20, conf_cluster, len(conf))).ljust(SECTOR, b"\0")
root = (entry(b"FIRMWARE   ", 0x08, 0, 0) + entry(b"EXTLINUX   ", 0x10, dir_cluster, 0)
        + entry(b"IMAGE      ", 0x20, image_cluster, len(image))).ljust(SECTOR, b"\0")

fat = bytearray(SECTOR)
fat[0:3] = b"\xf8\xff\xff"
for cluster, nxt in clusters.items():
    at = cluster * 3 // 2
    if cluster % 2 == 0:
        fat[at] = nxt & 0xFF
        fat[at + 1] = (fat[at + 1] & 0xF0) | (nxt >> 8)
    else:
        fat[at] = (fat[at] & 0x0F) | ((nxt & 0x0F) << 4)
        fat[at + 1] = nxt >> 4
out = bytearray(boot + fat + fat + root)
for cluster in range(2, TOTAL - 4 + 2):
    out += data.get(cluster, bytes(SECTOR))
sys.stdout.buffer.write(bytes(out[:TOTAL * SECTOR]))
