#!/usr/bin/env python3
"""Writes the seed corpus of api_fuzz (tests/fuzz/corpus/api/), in the input
format api_fuzz.cpp reads: an opcode byte (an index into kOps, modulo its
length) and the bytes of its arguments. Rerun it when that format changes:

    tests/fuzz/make_api_seeds.py tests/fuzz/corpus/api

Each seed is one scenario; libFuzzer mutates from there.
"""
import os
import sys

# kOps in api_fuzz.cpp (the first index of each operation)
ALLOC, ALIGNED, REALLOC, FREE, EXPAND, CHECK, HEAP, HEAP_ALLOC, COLLECT, SYNC = 0, 3, 5, 7, 10, 11, 12, 13, 15, 16

# kEdgeSizes, kAlignments, kEdgeOffsets: indices used below
EDGE_SIZES = 39
ALIGN = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5, 64: 6, 128: 7, 256: 8, 512: 9, 4096: 10, 8192: 11, 65536: 12,
         131072: 13, 1 << 20: 14, 4 << 20: 15}
EDGE_ALIGN = 240  # a byte >= 240 picks kAlignments[16 + byte % 8]: 0, 3, 24, 65535, SIZE_MAX, 2^45, 2^62, 2^63
EDGE_OFFSET = {"PTRDIFF_MAX": 224 + 0, "PTRDIFF_MAX+1": 224 + 1, "SIZE_MAX-62": 224 + 2, "SIZE_MAX-63": 224 + 3,
               "SIZE_MAX-64": 224 + 4, "SIZE_MAX-4095": 224 + 5, "SIZE_MAX": 224 + 6}


def size(n):
    """The two bytes of take_size for about n bytes."""
    if n < 256:
        return [0x00, n]
    if n < 1024:
        return [0x40 | (n & 3), n // 4]
    if n < 16384:
        return [0x60 | (n & 31), n // 64]
    if n < 131072:
        return [0x80, n // 512]
    if n < 2 << 20:
        return [0xA0 | 0x10, n // 8192]
    return [0xC0, min((n - (2 << 20)) // 16384, 255)]  # huge


def edge(i):
    return [0xE0, i % EDGE_SIZES]


def count(c=None):
    """take_count: a count of 1 + (byte % 16), or an edge (byte >= 248)."""
    return [248 + c] if c is not None else [3]


def alloc(slot, form, nbytes, cnt=None, extra=()):
    return [ALLOC, slot, form] + nbytes + count(cnt) + list(extra)


def aligned(slot, kind, nbytes, align, offset=None, cnt=None):
    form = (kind << 1) | (1 if offset is not None else 0)
    out = [ALIGNED, slot, form] + nbytes + [align]
    if offset is not None:
        out.append(offset)
    if kind == 2:
        out += count(cnt)
    return out


def realloc(slot, kind, nbytes, cnt=None, align=None, offset=None, heap=None):
    form = kind | (128 if offset is not None else 0)
    out = [REALLOC, slot, form] + nbytes + count(cnt)
    if 7 <= kind <= 9:
        out.append(align)
        if offset is not None:
            out.append(offset)
    if kind == 10:
        out.append(heap)
    return out


def free(slot, form=0):
    return [FREE, slot, form]


def seeds():
    s = {}
    # every allocation form, then checks, frees and re-allocations
    b = []
    for i, n in enumerate([0, 1, 24, 100, 1000, 5000, 70000, 300000]):
        for form in range(14):
            b += alloc((i * 14 + form) % 64, form, size(n), extra=[ALIGN[64]] if form in (9, 10, 11) else [])
    b += [CHECK, 3, CHECK, 17]
    for slot in range(0, 64, 3):
        b += realloc(slot, slot % 7, size(2000 + slot * 100))
    for slot in range(64):
        b += free(slot, slot % 5)
    s["every-form"] = b
    # aligned and _at requests at the edges (issue 10, defect 1: 64 bytes at
    # alignment 64, offset SIZE_MAX - 62, returned a block of 1 usable byte)
    b = aligned(0, 0, size(64), ALIGN[64], EDGE_OFFSET["SIZE_MAX-62"])
    b += aligned(1, 1, size(64), ALIGN[64], EDGE_OFFSET["SIZE_MAX-63"])
    b += aligned(2, 0, size(4000), ALIGN[4096], EDGE_OFFSET["SIZE_MAX"])
    b += aligned(3, 0, size(100), ALIGN[1 << 20], EDGE_OFFSET["PTRDIFF_MAX+1"])
    b += aligned(4, 2, size(640), ALIGN[128], 24)
    b += aligned(5, 0, size(70000), ALIGN[65536], 8)
    b += aligned(6, 3, size(10), ALIGN[4 << 20])
    for k in range(8):
        b += aligned(7 + k, k % 5, size(200), EDGE_ALIGN + k)
    b += realloc(0, 7, size(5000), align=ALIGN[64], offset=EDGE_OFFSET["SIZE_MAX-62"])
    b += realloc(1, 8, size(100000), align=ALIGN[4096], offset=16)
    b += realloc(4, 9, size(3000), align=ALIGN[256])
    for slot in range(16):
        b += free(slot, 2 + slot % 2)
    s["aligned-at-edges"] = b
    # every edge size, in the plain, aligned and re-allocation forms
    b = []
    for i in range(EDGE_SIZES):
        b += alloc(i % 64, i % 4, edge(i))
        b += aligned((i + 20) % 64, i % 5, edge(i), ALIGN[16], 8)
        b += realloc((i + 40) % 64, i % 12, edge(i), align=ALIGN[16], heap=0)
    s["edge-sizes"] = b
    # count * size at the edges: overflows, zeros, products past the line
    b = []
    for c in range(8):
        b += alloc(c, 2, size(64), cnt=c)
        b += alloc(8 + c, 3, size(64), cnt=c)
        b += aligned(16 + c, 2, size(64), ALIGN[64], 0, cnt=c)
        b += realloc(c, 2, size(64), cnt=c)
        b += realloc(8 + c, 4, size(64), cnt=c)
        b += realloc(16 + c, 5, size(64), cnt=c)
    s["count-overflow"] = b
    # blocks freed by the other thread while this one allocates
    b = []
    for slot in range(48):
        b += alloc(slot, slot % 2, size(16 + (slot * 37) % 3000))
    for slot in range(0, 48, 2):
        b += free(slot, 5)
    for slot in range(1, 48, 2):
        b += realloc(slot, 0, size(5000 + slot))
    b += [SYNC]
    for slot in range(1, 48, 2):
        b += free(slot, 5)
    b += alloc(50, 0, size(300000)) + alloc(51, 0, size(3 << 20)) + free(50, 5) + free(51, 5)
    b += [SYNC, COLLECT, 1]
    s["cross-thread"] = b
    # heaps: a destroyable one, one in the small arena (runs out), default-heap swap
    b = [HEAP, 0, 0, HEAP, 64, 1]
    for slot in range(20):
        b += [HEAP_ALLOC, slot, slot % 9, slot % 2] + size(100 + slot * 50)
        if slot % 9 in (2, 3):
            b += count()
        if slot % 9 in (4, 5):
            b += [ALIGN[256], 8]
    for slot in range(20, 40):  # 3 MiB blocks in the arena heap until it is full
        b += [HEAP_ALLOC, slot, 0, 1] + size(3 << 20)
    b += realloc(2, 10, size(9000), heap=0) + free(4, 5) + [SYNC]
    b += [HEAP, 2, 0, HEAP, 3, 1, COLLECT, 2]
    s["heaps"] = b
    # zeroed blocks: grown, shrunk and grown again by the zeroing forms
    b = alloc(0, 1, size(100)) + realloc(0, 1, size(5000)) + realloc(0, 1, size(3000)) + realloc(0, 1, size(4800))
    b += realloc(0, 2, size(40000)) + realloc(0, 8, size(90000), align=ALIGN[4096], offset=64)
    b += alloc(1, 2, size(1000)) + realloc(1, 1, size(3 << 20)) + realloc(1, 1, size(1 << 20))
    b += [EXPAND, 0] + size(90000) + [EXPAND, 1] + size(1 << 21) + [CHECK, 0, CHECK, 1]
    s["zeroing-reallocs"] = b
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "api")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        assert all(0 <= x < 256 for x in data), name
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(data))
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
