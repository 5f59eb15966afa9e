"""A network namespace of the test's own, for the calling thread of the
test process: what `unshare -n` does for a command, done with the
unshare(2) and setns(2) system calls (through ctypes; Python 3.11 has no
os.unshare), so that a pytest module runs its fixtures and tests inside
it and reports each test on its own.

    with NetNS():
        ...   # servers started here (and their sockets) live in the namespace

Inside, only the loopback interface exists and is up: the whole of
127.0.0.0/8 and every port, 25 included, belong to the test, so several
servers can each listen on port 25 of their own 127.x address, and nothing
reaches the machine's network.  Child processes and threads started
inside inherit the namespace; sockets stay in the namespace they were made
in.

Invariants: needs root (CAP_SYS_ADMIN); leaving (also on an exception)
returns the thread to the namespace it came from, which is then destroyed
by the kernel once its last process and socket are gone."""
import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


class NetNSError(Exception):
    pass


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise NetNSError("%s: %s" % (what, os.strerror(err)))


class NetNS:
    """Enter a new network namespace on __enter__, leave it on __exit__."""

    def __init__(self):
        self._home = None

    def __enter__(self):
        if os.geteuid() != 0:
            raise NetNSError("a network namespace needs root (CI runs as root)")
        # the thread's own namespace (the process's may differ for a thread)
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
        except BaseException:
            self._leave()
            raise
        return self

    def _leave(self):
        if self._home is None:
            return
        try:
            _check(_libc.setns(self._home, CLONE_NEWNET), "setns back")
        finally:
            os.close(self._home)
            self._home = None

    def __exit__(self, *exc):
        self._leave()

    @staticmethod
    def inode():
        """The current thread's network namespace (its inode number), to
        tell whether a test really runs in a namespace of its own."""
        return os.stat("/proc/thread-self/ns/net").st_ino
