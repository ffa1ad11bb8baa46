"""redis_proxy.py - a loopback TCP proxy between jobmill processes and a
redis-server that a test can make misbehave (Python stdlib only). The system
tests and the chaos suite (one in front of each worker) share it.

Partitions, for as long as they last:
  freeze()  nothing moves in either direction: bytes already sent wait in
            the kernel's buffers, new connections are accepted and held (a
            partition: the worker's calls time out, its commands may reach
            Redis late when the proxy thaws, as delayed packets would)
  reset()   every connection is closed with an RST, and connections made
            while the cut lasts are reset at once (a partition that refuses)
  heal()    back to forwarding
One-shot faults:
  drop_reply(marker)  the first reply that carries marker (bytes) is never
                      delivered: that client's connection is closed instead,
                      as by a network fault after Redis ran the command (a
                      "lost reply")
  stall(pred)         once a client sends a request for which pred(data) is
                      true, the request still reaches Redis, but no reply on
                      that connection reaches the client again (the command
                      ran, the client times out)

Every finished connection is closed and forgotten, so a proxy can run for
hours through thousands of reconnects. Everything listens and connects on
127.0.0.1 only.
"""
import socket
import struct
import threading

OPEN, FROZEN, RESET = "open", "frozen", "reset"


class _Conn:
    """One client connection and its upstream; two pump threads. The last
    pump to finish closes both sockets (so no fd is closed under a thread
    still using it)."""

    def __init__(self, proxy, client, upstream):
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self.lock = threading.Lock()
        self.dead = False
        self.pumps_left = 2
        self.stalled = False   # stall(): replies are swallowed from now on
        self.tail = b""        # drop_reply(): the end of the last reply chunk

    def start(self):
        threading.Thread(target=self._pump, args=(self.client, self.upstream), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.upstream, self.client), daemon=True).start()

    def kill(self, rst=False):
        """Ends the connection: wakes both pumps (shutdown of the read side),
        with SO_LINGER 0 first when rst, so the final close sends an RST."""
        with self.lock:
            if self.dead:
                return
            self.dead = True
        for s in (self.client, self.upstream):
            try:
                if rst:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD if rst else socket.SHUT_RDWR)
            except OSError:
                pass

    def _gate(self):
        """Waits while the proxy is frozen; False when the connection must end."""
        p = self.proxy
        while True:
            if self.dead:
                return False
            mode = p.mode
            if mode == OPEN:
                return True
            if mode == RESET:
                self.kill(rst=True)
                return False
            with p.cond:
                if p.mode == FROZEN and not self.dead:
                    p.cond.wait(0.1)

    def _pump(self, src, dst):
        try:
            while self._gate():
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if not data or not self._gate():
                    break
                data = self.proxy._filter(self, src is self.client, data)
                if data is None:
                    break
                try:
                    if data:
                        dst.sendall(data)
                except OSError:
                    break
        finally:
            self.kill()
            with self.lock:
                self.pumps_left -= 1
                last = self.pumps_left == 0
            if last:
                self.client.close()
                self.upstream.close()
                self.proxy._forget(self)


class FaultProxy:

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.cond = threading.Condition()
        self.mode = OPEN
        self.conns = set()
        self.closed = False
        self.accepted = 0
        self._drop_marker = None
        self._stall_pred = None
        self.dropped = 0        # replies dropped by drop_reply
        self.stalled = 0        # connections stalled by stall
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def _set(self, mode):
        with self.cond:
            self.mode = mode
            conns = list(self.conns)
            self.cond.notify_all()
        if mode == RESET:
            for c in conns:
                c.kill(rst=True)

    def freeze(self):
        self._set(FROZEN)

    def reset(self):
        self._set(RESET)

    def heal(self):
        self._set(OPEN)

    def drop_reply(self, marker):
        with self.cond:
            self._drop_marker = marker

    def stall(self, pred):
        with self.cond:
            self._stall_pred = pred

    def _filter(self, conn, upward, data):
        """What of data moves on: data, b"" (swallowed) or None (the
        connection ends undelivered)."""
        if upward:
            pred = self._stall_pred
            if pred is not None and not conn.stalled and pred(data):
                conn.stalled = True
                with self.cond:
                    self.stalled += 1
            return data
        if conn.stalled:
            return b""
        marker = self._drop_marker
        if marker is None:
            return data
        with self.cond:
            hit = self._drop_marker is not None and marker in conn.tail + data
            if hit:
                self._drop_marker = None
                self.dropped += 1
        if hit:
            return None
        conn.tail = (conn.tail + data)[-len(marker):]
        return data

    def connections(self):
        with self.cond:
            return len(self.conns)

    def close(self):
        with self.cond:
            self.closed = True
            conns = list(self.conns)
            self.mode = OPEN
            self.cond.notify_all()
        for c in conns:
            c.kill()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        self.thread.join(5)

    def _forget(self, conn):
        with self.cond:
            self.conns.discard(conn)

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.closed:
                c.close()
                return
            self.accepted += 1
            if self.mode == RESET:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
                u.settimeout(None)
            except OSError:      # Redis down: the client sees its connection end
                c.close()
                continue
            conn = _Conn(self, c, u)
            with self.cond:
                if self.closed:
                    c.close()
                    u.close()
                    return
                self.conns.add(conn)
            conn.start()
