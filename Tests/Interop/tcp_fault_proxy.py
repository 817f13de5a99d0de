#!/usr/bin/env python3
"""A userspace TCP proxy that injects network faults on command, for edgelog's replication tests.

    tcp_fault_proxy.py --listen-port 0 --target HOST:PORT [--listen-host 127.0.0.1]
                       [--tls-cert CERT.pem --tls-key KEY.pem]

Listens on 127.0.0.1 (port 0 = any free port), prints "PORT <n>" on stdout once listening, and
forwards every accepted connection to the target. Commands arrive on stdin, one per line; after
applying one it prints "OK <command>" (a bad one gets "ERR <command>: <reason>"):

    cut             close every current connection, both sides, at once (no flush); keep accepting
    down            cut, then close every new connection as soon as it is accepted, until "up"
    up              accept and forward new connections again
    rate <B/s>      throttle each direction to B bytes per second, shared by all connections
                    (a link's bandwidth); 0 = unlimited
    delay <ms>      hold every forwarded chunk this long before writing it (latency: chunks stay
                    pipelined, so throughput is kept); 0 = none
    stats           print "STATS {json}" before the OK: bytes_up (client -> target), bytes_down
                    (target -> client), connections (accepted and forwarded), active, refused
                    (closed while down or when the target could not be reached), cuts, down,
                    rate, delay_ms

Bytes count when written to the other side. A half-close (EOF) from one side is passed on to the
other; a connection ends when both directions have ended. The proxy exits 0 on EOF of stdin,
SIGTERM or SIGINT, closing everything.
"""

import argparse
import asyncio
import json
import signal
import sys
import time

CHUNK = 65536
QUEUE_CHUNKS = 16  # chunks buffered per direction while delayed or throttled (backpressure)


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Limiter:
    """Serialises one direction's chunks at `rate` bytes/s (0 = unlimited), across connections."""

    def __init__(self):
        self.rate = 0
        self.next_free = 0.0

    def set_rate(self, rate):
        self.rate = rate
        self.next_free = 0.0

    def read_size(self):
        # Small reads when throttled, so one chunk never stalls a direction for long (<= 50 ms).
        return CHUNK if self.rate <= 0 else max(1, min(CHUNK, self.rate // 20))

    async def take(self, size):
        rate = self.rate
        if rate <= 0:
            return
        now = time.monotonic()
        start = max(now, self.next_free)
        self.next_free = start + size / rate
        await asyncio.sleep(self.next_free - now)


class Proxy:
    def __init__(self, target_host, target_port):
        self.target_host = target_host
        self.target_port = target_port
        self.down = False
        self.delay = 0.0
        self.limiters = {"up": Limiter(), "down": Limiter()}
        self.bytes = {"up": 0, "down": 0}
        self.connections = 0
        self.refused = 0
        self.cuts = 0
        self.active = set()  # of Connection

    async def handle(self, client_reader, client_writer):
        if self.down:
            self.refused += 1
            client_writer.transport.abort()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self.refused += 1
            client_writer.transport.abort()
            return
        if self.down:  # went down while connecting
            self.refused += 1
            client_writer.transport.abort()
            target_writer.transport.abort()
            return
        self.connections += 1
        connection = Connection(self, client_reader, client_writer, target_reader, target_writer)
        self.active.add(connection)
        try:
            await connection.run()
        finally:
            self.active.discard(connection)

    def cut(self):
        self.cuts += 1
        for connection in list(self.active):
            connection.abort()

    def stats(self):
        return {
            "bytes_up": self.bytes["up"],
            "bytes_down": self.bytes["down"],
            "connections": self.connections,
            "active": len(self.active),
            "refused": self.refused,
            "cuts": self.cuts,
            "down": self.down,
            "rate": self.limiters["up"].rate,
            "delay_ms": round(self.delay * 1000, 3),
        }

    def apply(self, line):
        words = line.split()
        if not words:
            return
        command = " ".join(words)
        name, arguments = words[0].lower(), words[1:]
        try:
            if name == "cut" and not arguments:
                self.cut()
            elif name == "down" and not arguments:
                self.down = True
                self.cut()
            elif name == "up" and not arguments:
                self.down = False
            elif name == "rate" and len(arguments) == 1:
                rate = int(arguments[0])
                if rate < 0:
                    raise ValueError("rate must be >= 0")
                for limiter in self.limiters.values():
                    limiter.set_rate(rate)
            elif name == "delay" and len(arguments) == 1:
                delay = float(arguments[0])
                if delay < 0:
                    raise ValueError("delay must be >= 0")
                self.delay = delay / 1000.0
            elif name == "stats" and not arguments:
                out("STATS " + json.dumps(self.stats(), separators=(",", ":")))
            else:
                raise ValueError("unknown command or wrong arguments")
        except ValueError as error:
            out("ERR %s: %s" % (command, error))
            return
        out("OK " + command)


class Connection:
    def __init__(self, proxy, client_reader, client_writer, target_reader, target_writer):
        self.proxy = proxy
        self.writers = (client_writer, target_writer)
        self.tasks = [
            asyncio.ensure_future(self.pump("up", client_reader, target_writer)),
            asyncio.ensure_future(self.pump("down", target_reader, client_writer)),
        ]

    async def run(self):
        try:
            await asyncio.gather(*self.tasks)
        except asyncio.CancelledError:
            pass
        finally:
            self.abort()

    def abort(self):
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.transport.abort()

    async def pump(self, direction, reader, writer):
        """Reads chunks and hands them to a writer task that applies delay and rate."""
        queue = asyncio.Queue(QUEUE_CHUNKS)
        sender = asyncio.ensure_future(self.send(direction, queue, writer))
        try:
            while True:
                try:
                    data = await reader.read(self.proxy.limiters[direction].read_size())
                except (ConnectionError, OSError):
                    data = b""
                await queue.put((time.monotonic() + self.proxy.delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()

    async def send(self, direction, queue, writer):
        limiter = self.proxy.limiters[direction]
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                except (ConnectionError, OSError, RuntimeError):
                    pass
                return
            await limiter.take(len(data))
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                self.abort()
                return
            self.proxy.bytes[direction] += len(data)


async def read_commands(proxy, stop):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:
        # stdin is a regular file (not a pipe, socket or tty): it never blocks, read it directly.
        for line in sys.stdin:
            proxy.apply(line)
            await asyncio.sleep(0)
        stop.set()
        return
    while not stop.is_set():
        line = await reader.readline()
        if not line:
            break
        proxy.apply(line.decode("utf-8", "replace"))
    stop.set()


async def main_async(args):
    host, _, port = args.target.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit("--target must be HOST:PORT")
    proxy = Proxy(host.strip("[]"), int(port))
    tls = None
    if args.tls_cert:
        # Terminates TLS for clients (the target stays plaintext): a TLS front for brokers
        # that cannot speak it themselves.
        import ssl
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    server = await asyncio.start_server(proxy.handle, args.listen_host, args.listen_port, ssl=tls)
    listen_port = server.sockets[0].getsockname()[1]
    out("PORT %d" % listen_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    commands = asyncio.ensure_future(read_commands(proxy, stop))
    await stop.wait()

    commands.cancel()
    server.close()
    proxy.cut()
    await server.wait_closed()
    # Let cancelled connection tasks unwind before the loop closes.
    await asyncio.sleep(0)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--target", required=True, help="HOST:PORT")
    parser.add_argument("--tls-cert", help="serve TLS to clients with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
