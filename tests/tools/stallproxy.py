#!/usr/bin/env python3
"""stallproxy: a TCP proxy that a test controls, to put a network fault in
place at a moment the test chooses instead of racing it.

    from stallproxy import StallProxy
    p = StallProxy(("127.0.0.1", upstream_port)).start()
    ... point the client at p.port ...
    p.hold_after(200000)     # forward 200000 more bytes, then stop reading
    p.wait_held(30)          # the client is now blocked (its buffers fill)
    ... put the fault in place (stop the receiver, ...) ...
    p.reset()                # RST every client connection
    p.resume()               # read again

What it does:
- Listens on loopback (port 0 = any) and opens one upstream connection per
  client connection. Bytes upstream -> client always flow (TLS handshakes,
  RELP acks); bytes client -> upstream flow only while the proxy is not
  paused and within the byte budget set by hold_after().
- pause(): stop reading from every client now. hold_after(n): read n more
  bytes in all, then pause; wait_held() returns once that happened. The
  listening socket has a small receive buffer (rcvbuf), inherited by the
  accepted sockets, so what a paused proxy leaves unread is bounded by that
  buffer plus the client's own send buffer.
- reset(): every client connection gets a TCP RST (SO_LINGER 0); the
  upstream side is closed. block(): new connections are accepted but not
  read from nor connected upstream until unblock().
- When the upstream side closes or fails, the client connection is reset
  (on_upstream_close="reset", default) or closed ("close"): a receiver that
  stops is seen by the client as it would be without the proxy. Once the
  client half-closed its side (passed on upstream), the receiver's close
  that follows is the normal end of the stream: the client gets a FIN.
- rcvbuf: the receive buffer of the accepted sockets, what a paused proxy
  holds acknowledged but unread (a load balancer or a busy receiver that
  buffers a lot). As root it may exceed net.core.rmem_max
  (SO_RCVBUFFORCE).
- Counters: bytes each way, connections accepted, resets sent.

Threads only (standard library); every wait in the API takes a deadline.
Run as a script for manual use: stallproxy.py UPSTREAM_HOST:PORT [--port N]
then type pause / resume / hold N / reset / block / unblock / stats.
"""

import socket
import struct
import sys
import threading
import time

TICK = 0.05     # internal select timeout: how fast a paused loop notices a change
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


class StallProxy:
    def __init__(self, upstream, listen=("127.0.0.1", 0), rcvbuf=16384,
                 on_upstream_close="reset"):
        self.upstream = upstream
        self.on_upstream_close = on_upstream_close
        self.lock = threading.Condition()
        self.paused = False
        self.budget = None          # bytes client->upstream left, None = no limit
        self.blocked = False
        self.closing = False
        self.conns = []             # [client_sock, upstream_sock or None]
        self.up_bytes = 0           # client -> upstream
        self.down_bytes = 0         # upstream -> client
        self.accepted = 0
        self.resets = 0
        self.upstream_failures = 0
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            try:
                self.ls.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.ls.bind(listen)
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.threads = []

    # ---- control -------------------------------------------------------
    def start(self):
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def pause(self):
        with self.lock:
            self.paused = True
            self.lock.notify_all()

    def resume(self):
        with self.lock:
            self.paused = False
            self.budget = None
            self.lock.notify_all()

    def hold_after(self, nbytes):
        """Forward nbytes more (client -> upstream, all connections), then
        pause."""
        with self.lock:
            self.paused = False
            self.budget = int(nbytes)
            self.lock.notify_all()

    def held(self):
        with self.lock:
            return self.paused or (self.budget is not None and self.budget <= 0)

    def wait_held(self, timeout):
        """Wait until the budget of hold_after() is used up."""
        end = time.monotonic() + timeout
        with self.lock:
            while not (self.paused or (self.budget is not None and self.budget <= 0)):
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("stallproxy: budget not used up within %ss "
                                       "(%d bytes forwarded)" % (timeout, self.up_bytes))
                self.lock.wait(min(left, TICK))
            self.paused = True

    def block(self):
        with self.lock:
            self.blocked = True

    def unblock(self):
        with self.lock:
            self.blocked = False
            self.lock.notify_all()

    def reset(self):
        """RST every client connection now; close the upstream sides."""
        with self.lock:
            conns, self.conns = self.conns, []
            self.resets += len(conns)
            self.lock.notify_all()
        for c in conns:
            _rst(c[0])
            if c[1] is not None:
                _close(c[1])

    def stats(self):
        with self.lock:
            return {"up_bytes": self.up_bytes, "down_bytes": self.down_bytes,
                    "accepted": self.accepted, "open": len(self.conns),
                    "resets": self.resets, "paused": self.paused,
                    "budget": self.budget,
                    "upstream_failures": self.upstream_failures}

    def stop(self):
        with self.lock:
            self.closing = True
            self.lock.notify_all()
        _close(self.ls)
        self.reset()
        for t in self.threads:
            t.join(5)

    # ---- internals -------------------------------------------------------
    def _accept_loop(self):
        self.ls.settimeout(TICK)
        while True:
            with self.lock:
                if self.closing:
                    return
            try:
                cs, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            cs.settimeout(None)
            conn = [cs, None, False]    # client, upstream, client half-closed
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _alive(self, conn):
        with self.lock:
            return not self.closing and any(c is conn for c in self.conns)

    def _serve(self, conn):
        with self.lock:
            while self.blocked and not self.closing and \
                    any(c is conn for c in self.conns):
                self.lock.wait(TICK)
        if not self._alive(conn):
            return
        try:
            us = socket.create_connection(self.upstream, timeout=10)
            us.settimeout(None)
        except OSError:
            with self.lock:
                self.upstream_failures += 1
            self._drop(conn, rst=True)
            return
        with self.lock:
            if not any(c is conn for c in self.conns):
                _close(us)
                return
            conn[1] = us
        t = threading.Thread(target=self._pump_down, args=(conn,), daemon=True)
        t.start()
        self._pump_up(conn)
        t.join()

    def _take(self, want):
        """Bytes the client->upstream pump may read now (0 = wait)."""
        with self.lock:
            if self.paused:
                return 0
            if self.budget is None:
                return want
            n = min(want, self.budget)
            if n <= 0:
                self.paused = True
                self.lock.notify_all()
            return n

    def _pump_up(self, conn):
        cs, us = conn[0], conn[1]
        import select
        while self._alive(conn):
            n = self._take(65536)
            if n == 0:
                with self.lock:
                    self.lock.wait(TICK)
                continue
            try:
                r, _, _ = select.select([cs], [], [], TICK)
                if not r:
                    continue
                data = cs.recv(n)
            except OSError:
                data = b""
            if not data:
                # the client closed: pass the half-close on
                conn[2] = True
                try:
                    us.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self.lock:
                self.up_bytes += len(data)
                if self.budget is not None:
                    self.budget -= len(data)
                    if self.budget <= 0:
                        self.paused = True
                        self.lock.notify_all()
            try:
                us.sendall(data)
            except OSError:
                self._upstream_gone(conn)
                return

    def _pump_down(self, conn):
        cs, us = conn[0], conn[1]
        import select
        while self._alive(conn):
            try:
                r, _, _ = select.select([us], [], [], TICK)
                if not r:
                    continue
                data = us.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._upstream_gone(conn)
                return
            with self.lock:
                self.down_bytes += len(data)
            try:
                cs.sendall(data)
            except OSError:
                self._drop(conn, rst=True)
                return

    def _upstream_gone(self, conn):
        self._drop(conn, rst=self.on_upstream_close == "reset" and not conn[2])

    def _drop(self, conn, rst):
        with self.lock:
            if not any(c is conn for c in self.conns):
                return
            self.conns = [c for c in self.conns if c is not conn]
            if rst:
                self.resets += 1
            self.lock.notify_all()
        if rst:
            _rst(conn[0])
        else:
            _close(conn[0])
        if conn[1] is not None:
            _close(conn[1])


def _rst(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(s)


def _close(s):
    try:
        s.close()
    except OSError:
        pass


def main(argv):
    if len(argv) < 2 or ":" not in argv[1]:
        sys.stderr.write("usage: stallproxy.py UPSTREAM_HOST:PORT [--port N]\n")
        return 2
    host, port = argv[1].rsplit(":", 1)
    lport = int(argv[argv.index("--port") + 1]) if "--port" in argv else 0
    p = StallProxy((host, int(port)), listen=("127.0.0.1", lport)).start()
    print("listening on 127.0.0.1:%d" % p.port, flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "hold":
            p.hold_after(int(cmd[1]))
        elif cmd[0] in ("pause", "resume", "reset", "block", "unblock"):
            getattr(p, cmd[0])()
        elif cmd[0] == "stats":
            print(p.stats(), flush=True)
        elif cmd[0] in ("quit", "exit"):
            break
    p.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
