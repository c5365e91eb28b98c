"""Eastron SDM120-Modbus single-phase energy meter: input registers.

Source: Eastron "SDM120Modbus Smart Meter Modbus Protocol Implementation V2.4"
(Zhejiang Eastron Electronic; input registers, function code 04, each value a
32-bit IEEE 754 float in two registers, most significant register first).
Data-sheet register 3xxxx = wire address xxxx - 1. Only the registers the map
reads are listed; energy is converted from kWh/kvarh to the SenML primary units
J and vars (RFC 8428 §12.1, RFC 8798 §2).
"""
from edgeledger.agent.registermaps import KVARH, KWH

MAP = {
    "name": "sdm120",
    "function": 4,
    # Eastron's protocol documents limit a read to 30 values, 60 registers (the
    # SDM72D-M manual states it); this map needs two reads, of 32 and 10 registers.
    "max_block": 60,
    "entries": (
        # (address, type, word order, scale, unit, name)     data sheet register
        (0x0000, "f32", "big", 1, "V", "voltage"),  # 30001 Voltage
        (0x0006, "f32", "big", 1, "A", "current"),  # 30007 Current
        (0x000C, "f32", "big", 1, "W", "power"),  # 30013 Active power
        (0x0012, "f32", "big", 1, "VA", "apparent_power"),  # 30019 Apparent power
        (0x0018, "f32", "big", 1, "var", "reactive_power"),  # 30025 Reactive power
        (0x001E, "f32", "big", 1, "/", "power_factor"),  # 30031 Power factor
        (0x0046, "f32", "big", 1, "Hz", "frequency"),  # 30071 Frequency
        (0x0048, "f32", "big", KWH, "J", "energy_import"),  # 30073 Import active energy kWh
        (0x004A, "f32", "big", KWH, "J", "energy_export"),  # 30075 Export active energy kWh
        (0x004C, "f32", "big", KVARH, "vars", "reactive_energy_import"),  # 30077 kvarh
        (0x004E, "f32", "big", KVARH, "vars", "reactive_energy_export"),  # 30079 kvarh
    ),
}
