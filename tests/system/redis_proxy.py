"""redis_proxy.py - a loopback TCP proxy between jobmill processes and a
redis-server, that a test can make misbehave in two ways (Python stdlib only):

  drop_reply(marker)  the first reply that carries marker (bytes) is never
                      delivered: the proxy closes that client's connection
                      instead, as a network fault after Redis ran the command
                      (a "lost reply"). One shot.
  stall(pred)         once a client sends a request for which pred(data) is
                      true, that request still reaches Redis, but no reply on
                      that connection reaches the client again (a half-dead
                      connection: the command ran, the client times out).

Everything listens and connects on 127.0.0.1 only. Each client connection
gets its own upstream connection and two pump threads; close() ends them all.
"""
import socket
import threading


class RedisProxy:

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.socks = []
        self.closed = False
        self._drop_marker = None
        self._stall_pred = None
        self.dropped = 0        # replies dropped by drop_reply
        self.stalled = 0        # connections stalled by stall
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def drop_reply(self, marker):
        with self.lock:
            self._drop_marker = marker

    def stall(self, pred):
        with self.lock:
            self._stall_pred = pred

    def close(self):
        with self.lock:
            self.closed = True
            socks, self.socks = self.socks, []
        for s in socks + [self.lsock]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    # ---- internals ----

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                if self.closed:
                    c.close()
                    u.close()
                    return
                self.socks += [c, u]
            state = {"stalled": False}
            threading.Thread(target=self._up, args=(c, u, state), daemon=True).start()
            threading.Thread(target=self._down, args=(c, u, state), daemon=True).start()

    def _end(self, *socks):
        """Ends a client's connection pair: shut down (wakes the other pump)
        and closed, and forgotten, so a long run does not pile up sockets."""
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self.lock:
            self.socks = [x for x in self.socks if x not in socks]

    def _up(self, c, u, state):
        """client -> Redis: always forwarded; may mark the connection stalled."""
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._end(c, u)
                return
            with self.lock:
                pred = self._stall_pred
            if pred is not None and not state["stalled"] and pred(data):
                state["stalled"] = True
                with self.lock:
                    self.stalled += 1
            try:
                u.sendall(data)
            except OSError:
                self._end(c, u)
                return

    def _down(self, c, u, state):
        """Redis -> client: dropped when stalled; a marked reply ends the
        connection undelivered."""
        tail = b""
        while True:
            try:
                data = u.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._end(c, u)
                return
            if state["stalled"]:
                continue
            with self.lock:
                marker = self._drop_marker
                hit = marker is not None and marker in tail + data
                if hit:
                    self._drop_marker = None
                    self.dropped += 1
            if hit:
                self._end(c, u)
                return
            if marker is not None:
                tail = (tail + data)[-len(marker):]
            try:
                c.sendall(data)
            except OSError:
                self._end(c, u)
                return
