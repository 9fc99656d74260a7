"""Allocation-heavy Python workload for the `programs` suite (python3.sh).

Builds dicts, lists and strings of a few hundred thousand items, round-trips a
large document through json, sorts, and runs threads that hand their results
to the main thread through a queue (so objects are freed by another thread).
Every line it prints is deterministic; python3.sh compares them.

usage: python3 python_workload.py [LIBNAME]
  LIBNAME: prints whether a mapping whose path contains LIBNAME is in
  /proc/self/maps (the preloaded allocator).
"""

import hashlib
import json
import queue
import sys
import threading


def check(cond, what):
    if not cond:
        print("CHECK FAILED:", what, file=sys.stderr)
        sys.exit(1)


def main():
    n = 300_000

    # Dict of strings -> ints, then a comprehension over it.
    d = {f"key{i:07d}": i * 7 % 1_000_003 for i in range(n)}
    check(len(d) == n, "dict size")
    total = sum(d.values())
    odd = {k: v for k, v in d.items() if v & 1}
    print("dict", len(d), total, len(odd))

    # Strings: build, sort, join, split.
    words = [format(i * 2654435761 % 2**32, "x") for i in range(n)]
    words.sort()
    check(all(words[i] <= words[i + 1] for i in range(len(words) - 1)), "sorted")
    text = " ".join(words)
    check(text.split(" ") == words, "join/split round trip")
    h = hashlib.sha256(text.encode()).hexdigest()
    print("words", len(words), words[0], words[-1], h[:16])

    # A list of lists, sorted by a key function, deleted in the middle.
    rows = [[i, str(i * i), (i * 31) % 97] for i in range(n)]
    rows.sort(key=lambda r: (r[2], -r[0]))
    del rows[1000:200_000]
    print("rows", len(rows), rows[0][0], rows[-1][0])

    # json round trip of a large document.
    doc = {
        "rows": [
            {"id": i, "name": f"n{i}", "tags": [i % 3, i % 5, "t" * (i % 7)], "v": str(i * i)}
            for i in range(100_000)
        ],
        "meta": {"count": 100_000, "nested": [[j] * 3 for j in range(1000)]},
    }
    encoded = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    back = json.loads(encoded)
    check(back == doc, "json round trip")
    print("json", len(encoded), hashlib.sha256(encoded.encode()).hexdigest()[:16])
    del doc, back, encoded

    # Threads: each builds and sorts chunks and hands them to the main thread,
    # which frees them.
    q = queue.Queue(maxsize=16)
    nthreads, chunks, size = 4, 25, 4000

    def worker(t):
        for c in range(chunks):
            data = [(i * 1103515245 + t * 12345 + c * 7) % 2**31 for i in range(size)]
            data.sort()
            q.put((t, c, data, {str(x): x for x in data[:200]}))
        q.put(None)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    done = 0
    received = 0
    acc = 0
    while done < nthreads:
        item = q.get()
        if item is None:
            done += 1
            continue
        t, c, data, index = item
        check(all(data[i] <= data[i + 1] for i in range(len(data) - 1)), "thread chunk sorted")
        check(len(index) <= 200, "thread chunk index")
        acc = (acc + sum(data) * (t + 1) + c) % (2**61 - 1)
        received += 1
    for th in threads:
        th.join()
    print("threads", received, acc)

    if len(sys.argv) > 1:
        with open("/proc/self/maps") as maps:
            mapped = any(sys.argv[1] in line for line in maps)
        print("mapped", mapped)
    print("done")


if __name__ == "__main__":
    main()
