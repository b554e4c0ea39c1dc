"""Tests of modbus_sync (a package, so that its module names cannot clash with other test directories)."""
