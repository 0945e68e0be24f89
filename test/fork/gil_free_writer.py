"""fork() while another thread writes into arena memory without the GIL, as
multiprocessing's result-handler thread does all the time (os.read makes a
small bytes object in a pymalloc arena, releases the GIL and lets the
kernel write into it). Here the reader uses os.readv into small bytearrays
made first, so that the writes surely land on huge pages. The parent drains the pool first, then forks
CHILDREN children that each write to every inherited object. Prints
'child K exit=0' or 'child K signal=7' (SIGBUS) per child, then 'parent ok'.
Usage: gil_free_writer.py [CHILDREN]"""
import os
import sys
import threading


def pool_free():
    """Huge pages this process can still take: free, less those other
    processes have reserved and not yet faulted in."""
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_"):
                key, value = line.split(":")
                fields[key] = int(value.split()[0])
    return fields.get("HugePages_Free", 0) - fields.get("HugePages_Rsvd", 0)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    bufs = [bytearray(64) for _ in range(4096)]  # on the first, huge, pages
    heap = []
    for _ in range(100000):
        heap.append([(i, "s%d" % i) for i in range(20000)])
        if pool_free() == 0 and len(heap) > 8:
            break
    expected = sum(t[0] for chunk in heap for t in chunk)
    r, w = os.pipe()
    os.set_blocking(w, False)  # a full pipe must never block the writer at the end
    stop = threading.Event()

    def reader():
        i = 0
        while not stop.is_set():
            os.readv(r, [bufs[i % len(bufs)]])  # the kernel writes, the GIL released
            i += 1

    def writer():
        while not stop.is_set():
            try:
                os.write(w, b"x" * 64)
            except BlockingIOError:
                pass

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    print("heap chunks=%d pool_free=%d" % (len(heap), pool_free()), flush=True)
    results = []
    for k in range(n):
        pid = os.fork()
        if pid == 0:
            total = 0
            for chunk in heap:
                for t in chunk:
                    total += t[0]
                chunk.append(None)
            os._exit(0 if total == expected else 3)
        _, status = os.waitpid(pid, 0)
        results.append(status)
    stop.set()
    for t in threads[1:]:
        t.join()
    try:
        os.write(w, b"x")  # wakes the reader if it waits on an empty pipe
    except BlockingIOError:
        pass  # the pipe is full: the reader is not waiting
    threads[0].join()
    for k, status in enumerate(results):
        if os.WIFSIGNALED(status):
            print("child %d signal=%d" % (k, os.WTERMSIG(status)))
        else:
            print("child %d exit=%d" % (k, os.WEXITSTATUS(status)))
    print("parent ok")


main()
