"""A DNS A-record lookup as bytes in, address out (RFC 1035), for a board whose
resolver cannot be bounded in time (lwIP's ``getaddrinfo`` has no timeout).

The caller sends ``query(txid, name)`` in one UDP datagram to port 53 of its DNS
server, waits as long as it chooses, and hands the reply to ``first_address``::

    header   id(2) flags(2) qdcount(2) ancount(2) nscount(2) arcount(2)   §4.1.1
    question name as labels, 0; qtype(2) = 1 (A); qclass(2) = 1 (IN)     §4.1.2
    answer   name (labels or a 0xC0.. pointer, §4.1.4) type(2) class(2)
             ttl(4) rdlength(2) rdata                                      §4.1.3
"""
import struct

from edgeledger.protocols import errors
from edgeledger.protocols.errors import DecodeError


class DnsError(DecodeError):
    """A DNS answer is malformed, not ours, an error, or has no IPv4 address (dns.py)."""


TYPE_A, CLASS_IN = 1, 1
MAX_NAME = 253  # §2.3.4: 255 octets on the wire, dotted form 253 characters


def query(txid, name):
    """The query datagram for ``name``'s IPv4 address (recursion desired). Raises
    EncodeError for a name that is not 1..253 characters of 1..63-character labels."""
    labels = name.rstrip(".").split(".")
    if not 0 < len(name) <= MAX_NAME or not all(0 < len(x) < 64 for x in labels):
        raise errors.EncodeError("DNS name: expected 1..253 characters in 1..63-character "
                                 "labels, found %r" % (name,))
    out = bytearray(struct.pack(">HHHHHH", txid & 0xFFFF, 0x0100, 1, 0, 0, 0))
    for label in labels:
        b = label.encode()
        out.append(len(b))
        out.extend(b)
    out.extend(b"\x00" + struct.pack(">HH", TYPE_A, CLASS_IN))
    return bytes(out)


def _skip_name(data, i):
    while True:
        if i >= len(data):
            raise DnsError("DNS reply: name runs past the end at byte %d" % i)
        n = data[i]
        if n & 0xC0 == 0xC0:  # a pointer ends the name (§4.1.4)
            return i + 2
        if n == 0:
            return i + 1
        i += 1 + n


def first_address(txid, data):
    """The first IPv4 address ("a.b.c.d") in a reply to query ``txid``. Raises DnsError
    for a reply to another query, an error code, no A record, or malformed bytes."""
    if len(data) < 12:
        raise DnsError("DNS reply: expected a 12-byte header, found %d bytes" % len(data))
    rid, flags, qd, an = struct.unpack_from(">HHHH", data)
    if rid != txid & 0xFFFF or not flags & 0x8000:
        raise DnsError("DNS reply: expected a response to id %d, found id %d flags 0x%04x"
                              % (txid & 0xFFFF, rid, flags))
    if flags & 0x000F:
        raise DnsError("DNS reply: server answered rcode %d" % (flags & 0x000F))
    i = 12
    for _ in range(qd):
        i = _skip_name(data, i) + 4
    for _ in range(an):
        i = _skip_name(data, i)
        if i + 10 > len(data):
            raise DnsError("DNS reply: answer record cut short at byte %d" % i)
        rtype, rclass, _ttl, rdlen = struct.unpack_from(">HHIH", data, i)
        i += 10
        if i + rdlen > len(data):
            raise DnsError("DNS reply: record data cut short at byte %d" % i)
        if rtype == TYPE_A and rclass == CLASS_IN and rdlen == 4:
            return "%d.%d.%d.%d" % tuple(data[i:i + 4])
        i += rdlen  # a CNAME or another type: the A record follows
    raise DnsError("DNS reply: expected an A record, found %d answers without one" % an)


def is_ipv4(host):
    """True for a dotted-quad address (no lookup needed)."""
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and 0 <= int(p) <= 255 for p in parts)
