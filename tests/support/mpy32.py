"""The 32-bit MicroPython of the suite: the WebAssembly port under Node, pinned in
package.json and installed by `make setup` (see gateway/boards/micropython32.py, which bench device
uses too). A test that needs it fails loudly when it is missing."""
from edgeledger.gateway.boards.micropython32 import Mpy32Error, device_files, image_files, run  # noqa: F401
