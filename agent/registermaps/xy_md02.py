"""XY-MD02 (SHT20) RS-485 temperature and humidity transmitter.

Source: the vendor's "XY-MD02 temperature and humidity transmitter" manual
(Modbus-RTU protocol section): function 04 "read input register", register
0x0001 temperature as a signed 16-bit value in 0.1 degC (0xFF33 = -20.5 degC),
register 0x0002 relative humidity in 0.1 %RH; default 9600 8N1, address 1.
"""

MAP = {
    "name": "xy_md02",
    "function": 4,
    "max_block": 2,
    "entries": (
        (0x0001, "i16", "big", 0.1, "Cel", "temperature"),
        (0x0002, "u16", "big", 0.1, "%RH", "humidity"),
    ),
}
