"""Host-side tools for the boards (CPython): the image build and ROMFS packing
(``image.py``), running an image on MicroPython's unix port (``unix_port.py``), the
32-bit MicroPython harness (``micropython32.py``) and the ``firmware build`` command
(``cmd.py``). What goes onto a board lives in ``firmware/``, ``agent/`` and ``protocols/``.
"""
