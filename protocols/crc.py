"""Check sequences used by the field buses: CRC-16 (reflected 0x8005) and XOR BCC.

Both CRC-16 variants here share one polynomial, 0x8005, processed least
significant bit first (so the shift register uses the reflected form 0xA001),
and one 256-entry table; they differ only in the initial value:

* CRC-16/MODBUS, init 0xFFFF: Modbus over Serial Line v1.02 §2.5.1.2 and
  §6.2.2; the CRC is appended to the frame low byte first.
* CRC-16/ARC, init 0x0000: DSMR P1 companion standard 5.0.2 §6.2 (CRC16,
  x^16+x^15+x^2+1, LSB first); the telegram prints it as four upper-case hex
  digits after ``!``.

Check values (the CRC of ASCII ``123456789``) from the CRC catalogue
(reveng): CRC-16/MODBUS 0x4B37, CRC-16/ARC 0xBB3D.

The XOR block check character is IEC 62056-21 §6.3.3 / §6.4: the XOR of every
byte after STX (or SOH) up to and including ETX (or EOT).
"""


def _make_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            if c & 1:
                c = (c >> 1) ^ 0xA001
            else:
                c >>= 1
        table.append(c)
    return tuple(table)


_TABLE = _make_table()


def crc16_update(crc, data):
    """Fold ``data`` into a running reflected-0x8005 CRC and return it."""
    table = _TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def crc16_modbus(data):
    """CRC-16/MODBUS of ``data`` (init 0xFFFF); append it low byte first."""
    return crc16_update(0xFFFF, data)


def crc16_arc(data):
    """CRC-16/ARC of ``data`` (init 0x0000), as used by DSMR P1 v4/v5."""
    return crc16_update(0x0000, data)


def bcc_xor(data):
    """IEC 62056-21 block check character: XOR of all bytes of ``data``."""
    bcc = 0
    for b in data:
        bcc ^= b
    return bcc
