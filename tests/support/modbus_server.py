"""Real pymodbus 3.x servers for the field-bus tests, each in its own event loop thread:
an RTU server on a serial line (a pty) and a Modbus TCP server on loopback.

``devices`` maps unit id -> {"ir": [...], "hr": [...]}: input and holding registers from
wire address 0. pymodbus 3.16 answers unknown units with an exception despite
ignore_missing_devices, so tests make absent devices by other means (a relay that drops
their requests).
"""
import asyncio
import threading

# How long a server may take to start listening on a loaded machine before the test fails.
START_TIMEOUT_S = 60


def server_context(devices):
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext

    ctx = {}
    for unit, regs in devices.items():
        # a pymodbus data block starting at address N answers wire address N-1
        ctx[unit] = ModbusDeviceContext(
            ir=ModbusSequentialDataBlock(1, list(regs.get("ir", [0]))),
            hr=ModbusSequentialDataBlock(1, list(regs.get("hr", [0]))),
        )
    return ModbusServerContext(devices=ctx, single=False)


class _ServerThread:
    """Runs ``make_server()`` (a pymodbus server) in a loop of its own until ``close``."""

    def __init__(self, make_server, where):
        self.loop = asyncio.new_event_loop()
        self.server = None
        self._ready = threading.Event()

        async def main():
            self.server = make_server()
            # listening means the port is open: only then may a master talk to it
            await self.server.serve_forever(background=True)
            self._ready.set()
            await self.server.serving

        def run():
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(main())
            except Exception:  # shutdown cancels serve_forever
                pass

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self._ready.wait(START_TIMEOUT_S), "pymodbus server did not start listening on %s within %d s" % (
            where, START_TIMEOUT_S)

    def close(self):
        """Stop the server (closing its connections); a second call does nothing."""
        if self.server is not None:
            fut = asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop)
            self.server = None
            try:
                fut.result(5)
            except Exception:
                pass
        self.thread.join(5)


class ModbusServerThread(_ServerThread):
    """A pymodbus RTU server on the serial line ``port``."""

    def __init__(self, port, devices, baud=9600):
        from pymodbus.server import ModbusSerialServer

        super().__init__(lambda: ModbusSerialServer(server_context(devices), port=port, baudrate=baud,
                                                    ignore_missing_devices=True), port)


class ModbusTcpServerThread(_ServerThread):
    """A pymodbus Modbus TCP server on 127.0.0.1:``port``. ``mangle(adu) -> bytes``, if
    given, rewrites each reply ADU before it is sent (hostile replies from a real server)."""

    def __init__(self, port, devices, mangle=None):
        from pymodbus.server import ModbusTcpServer

        def trace(sending, data):
            return mangle(data) if sending and mangle is not None else data

        super().__init__(lambda: ModbusTcpServer(server_context(devices), address=("127.0.0.1", port),
                                                 ignore_missing_devices=True, trace_packet=trace),
                         "127.0.0.1:%d" % port)
        self.port = port
