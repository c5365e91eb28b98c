"""Eastron SDM630 (Modbus V2 / MID) three-phase energy meter: input registers.

Source: Eastron "SDM630 Modbus Protocol" (Eastron Electronic Co., register
table "Input Registers", function code 04, 32-bit IEEE 754 floats, most
significant register first). Data-sheet register 3xxxx = wire address
xxxx - 1. Energy is converted from kWh/kvarh to the SenML primary units J and
vars (RFC 8428 §12.1, RFC 8798 §2), power from W/VA/var stays as is.
"""
from edgeledger.agent.registermaps import KVARH, KWH

MAP = {
    "name": "sdm630",
    "function": 4,
    # The SDM630 protocol document allows up to 40 parameters (80 registers)
    # per request; 80 keeps the whole map at two requests.
    "max_block": 80,
    "max_gap": 16,
    "entries": (
        # (address, type, word order, scale, unit, name)     data sheet register
        (0x0000, "f32", "big", 1, "V", "voltage_l1"),  # 30001 Phase 1 line to neutral volts
        (0x0002, "f32", "big", 1, "V", "voltage_l2"),  # 30003
        (0x0004, "f32", "big", 1, "V", "voltage_l3"),  # 30005
        (0x0006, "f32", "big", 1, "A", "current_l1"),  # 30007 Phase 1 current
        (0x0008, "f32", "big", 1, "A", "current_l2"),  # 30009
        (0x000A, "f32", "big", 1, "A", "current_l3"),  # 30011
        (0x000C, "f32", "big", 1, "W", "power_l1"),  # 30013 Phase 1 power
        (0x000E, "f32", "big", 1, "W", "power_l2"),  # 30015
        (0x0010, "f32", "big", 1, "W", "power_l3"),  # 30017
        (0x0034, "f32", "big", 1, "W", "power"),  # 30053 Total system power
        (0x0038, "f32", "big", 1, "VA", "apparent_power"),  # 30057 Total system VA
        (0x003C, "f32", "big", 1, "var", "reactive_power"),  # 30061 Total system VAr
        (0x003E, "f32", "big", 1, "/", "power_factor"),  # 30063 Total system power factor
        (0x0046, "f32", "big", 1, "Hz", "frequency"),  # 30071 Frequency of supply voltages
        (0x0048, "f32", "big", KWH, "J", "energy_import"),  # 30073 Import active energy kWh
        (0x004A, "f32", "big", KWH, "J", "energy_export"),  # 30075 Export active energy kWh
        (0x004C, "f32", "big", KVARH, "vars", "reactive_energy_import"),  # 30077 kvarh
        (0x004E, "f32", "big", KVARH, "vars", "reactive_energy_export"),  # 30079 kvarh
    ),
}
