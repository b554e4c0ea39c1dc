"""modbus_sync: Modbus servers on blocking sockets, threads and pyserial."""
