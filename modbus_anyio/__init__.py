"""modbus_anyio: Modbus servers on anyio (asyncio or trio), and the simulator."""
