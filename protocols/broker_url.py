"""Broker URLs: ``mqtt://host[:port]`` (plain TCP) and ``mqtts://host[:port]`` (TLS).

One parser for every process that connects to a broker: the Linux agent, the gateway's
ingest and upkeep, the demo. Sans-IO, and MicroPython has no ``urllib``: written by hand.
The default ports are MQTT's registered ones (1883 plain, 8883 TLS; MQTT 3.1.1 §4.2).
"""
from edgeledger.protocols.errors import DecodeError


class BrokerUrlError(DecodeError):
    """A broker URL that is not mqtt://host[:port] or mqtts://host[:port] (broker_url.py)."""


DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# A host name is at most 253 characters (RFC 1035 §2.3.4); an IPv6 literal in brackets fits too.
MAX_URL_LEN = 300


def parse(url):
    """``(tls, host, port)`` of a broker URL. Raises BrokerUrlError (a ValueError) for any
    other scheme, a missing host, a port that is not 1..65535, or a path or user part."""
    if not isinstance(url, str) or len(url) > MAX_URL_LEN:
        raise BrokerUrlError("broker URL must be mqtt://host:port or mqtts://host:port, got %r" % (url,))
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in DEFAULT_PORTS:
        raise BrokerUrlError("broker URL must be mqtt://host:port or mqtts://host:port, got %r" % (url,))
    rest = rest.rstrip("/")
    if not rest or "/" in rest or "@" in rest or "?" in rest or "#" in rest:
        raise BrokerUrlError("broker URL must be %s://host[:port] with nothing after the port, got %r"
                             % (scheme, url))
    if rest.startswith("["):  # IPv6 literal
        end = rest.find("]")
        if end < 0:
            raise BrokerUrlError("broker URL has an unclosed IPv6 address: %r" % (url,))
        host, tail = rest[1:end], rest[end + 1:]
    else:
        host, colon, port_text = rest.partition(":")
        tail = colon + port_text
    if not host:
        raise BrokerUrlError("broker URL names no host: %r" % (url,))
    port = DEFAULT_PORTS[scheme]
    if tail:
        if tail[0] != ":" or not tail[1:].isdigit():
            raise BrokerUrlError("broker URL port must be a number, got %r" % (url,))
        port = int(tail[1:])
        if not 1 <= port <= 65535:
            raise BrokerUrlError("broker URL port must be 1..65535, got %d" % port)
    return scheme == "mqtts", host, port
