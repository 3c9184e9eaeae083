"""A DNS server for the tests, on a free UDP port of 127.0.0.1, in a thread of the test
process: it answers A and AAAA questions from a table the test changes as it goes (and
PTR questions from another), says
NXDOMAIN for names it does not know, stays silent for names marked so, and counts the
questions it gets (what a cache must spare it)."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class DnsServer:
    def __init__(self) -> None:
        self.records: dict[str, tuple[list[str], int]] = {}  # name -> (IPv4 addresses, TTL)
        self.silent: set[str] = set()
        self.ptr: dict[str, str] = {}  # address -> name (its PTR record)
        self.questions: list[tuple[str, str]] = []  # (name, type)
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def set(self, name: str, addresses: list[str], ttl: int = 300) -> None:
        with self._lock:
            self.records[name.lower()] = (addresses, ttl)

    def asked(self, name: str) -> int:
        with self._lock:
            return sum(1 for n, kind in self.questions if n == name and kind == "A")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            with self._lock:
                self.questions.append((name, kind))
                silent = name in self.silent
                record = self.records.get(name)
            if silent:
                continue
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            if kind == "PTR":
                address = ".".join(reversed(name.removesuffix(".in-addr.arpa").split(".")))
                with self._lock:
                    target = self.ptr.get(address)
                if target is None:
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                else:
                    reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "PTR",
                                                            target + "."))
            elif record is None:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            elif kind == "A":
                addresses, ttl = record
                reply.answer.append(dns.rrset.from_text(question.name, ttl, "IN", "A",
                                                        *addresses))
            self._sock.sendto(reply.to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
