# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""The TLS context of the device's MQTT connection (``config.json`` -> ``tls``).

Imported at start only when the broker URL is ``mqtts://`` or ``tls`` is set.
"""
from edgeledger.agent import errors


def ssl_context(tls):
    """An ssl.SSLContext verifying the broker against ``ca_file`` (and presenting
    ``cert_file``/``key_file`` for mutual TLS). Raises ConfigError."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if tls.get("ca_file"):
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=tls["ca_file"])
        elif not tls.get("insecure"):
            raise errors.ConfigError("TLS needs tls.ca_file (or tls.insecure = true for a lab broker)")
        else:
            ctx.verify_mode = ssl.CERT_NONE
            ctx.check_hostname = False
        if tls.get("cert_file"):
            ctx.load_cert_chain(tls["cert_file"], tls["key_file"])
    except (OSError, ValueError) as e:
        raise errors.ConfigError("TLS files: %s" % (e,))
    return ctx
