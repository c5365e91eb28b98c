"""Read the hex test vectors out of docs/wire-format.md (the doc is the source of truth)."""
import os
import re

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "wire-format.md")


def load(path=DOC):
    with open(path) as f:
        text = f.read()
    found = {}
    for name, body in re.findall(r"^vector: ([\w-]+).*?\n```hex\n(.*?)\n```", text, re.M | re.S):
        found[name] = bytes.fromhex("".join(body.split()))
    return found


def refusals(path=DOC):
    """{vector name: the canonical-form rule it is refused as}, from the lines
    ``vector: refused-<case> — refused as `<rule>`: ...``."""
    with open(path) as f:
        text = f.read()
    return dict(re.findall(r"^vector: (refused-[\w-]+) — refused as `(\w+)`", text, re.M))
