"""``python -m modbus_anyio`` is ``modbuskit``."""

import sys

from ._cli import main

sys.exit(main())
