"""Eastron SDM72D-M three-phase energy meter: input registers.

Source: B+G e-tech / Eastron "SDM72D-M User Manual V1.5", part 3 "Modbus
Protocol", input registers (function code 04, each value a 32-bit IEEE 754
float in two registers, most significant register first); the same table is
Eastron's "SDM72D-M Modbus Protocol V1.1". Data-sheet register 3xxxx = wire
address xxxx - 1. That table lists power and energy only (the later SDM72D-M-2
also measures voltages and currents; this map was checked against the SDM72D-M
table only). Energy is converted from kWh to J (RFC 8428 §12.1).
"""
from edgeledger.agent.registermaps import KWH

MAP = {
    "name": "sdm72d_m",
    "function": 4,
    # "Each request for data must be restricted to 30 parameters or less" (user
    # manual, part 3): 30 floats are 60 registers.
    "max_block": 60,
    # The manual's table has only these registers: read nothing in between.
    "max_gap": 0,
    "entries": (
        # (address, type, word order, scale, unit, name)     data sheet register
        (0x0034, "f32", "big", 1, "W", "power"),  # 30053 Total system power
        (0x0048, "f32", "big", KWH, "J", "energy_import"),  # 30073 Total Import kWh
        (0x004A, "f32", "big", KWH, "J", "energy_export"),  # 30075 Total Export kWh
        (0x0156, "f32", "big", KWH, "J", "energy_total"),  # 30343 Total kWh (import + export)
        (0x0500, "f32", "big", 1, "W", "power_import"),  # 31281 Total import active power
        (0x0502, "f32", "big", 1, "W", "power_export"),  # 31283 Total export active power
    ),
}
