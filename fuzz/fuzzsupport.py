"""Plumbing shared by the atheris targets: input decoding and the entry point.

This module imports neither atheris nor modbus_core at import time, so that a
target can instrument modbus_core before anything loads it, and so that the
targets' ``check`` functions run under plain pytest without atheris.

A fuzz input is read front to back by a :class:`Reader`: a few header bytes
choose the configuration, then a sequence of :class:`Op` records says what
arrives when.  The same formats are written by ``make_corpus.py`` through
:func:`op_bytes`, so the seeds and the harnesses cannot drift apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager


class Reader:
    """Consumes a fuzz input from the front; past the end every read gives zeros."""

    __slots__ = ("_data", "_position")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._position

    def u8(self) -> int:
        if self._position >= len(self._data):
            return 0
        value = self._data[self._position]
        self._position += 1
        return value

    def u16(self) -> int:
        return self.u8() << 8 | self.u8()

    def take(self, count: int) -> bytes:
        chunk = self._data[self._position : self._position + count]
        self._position += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.take(self.remaining)


# --------------------------------------------------------------------------
# stream operations: what arrives on a transport, and when

OP_DELAY_MASK = 0x1F  # bits 0-4: index into the target's delay table
OP_TIMEOUT_FIRST = 0x20  # call handle_timeout at next_deadline() before this op
OP_WRAP = 0x40  # the data is unit + PDU (MBAP: tid, unit, PDU): add the framing
OP_EXTRA = 0x80  # target-specific: split the chunk (servers) or send a request (client)


@dataclasses.dataclass(frozen=True, slots=True)
class Op:
    """One step of a stream target.

    On the wire: ``ctrl``, ``size``, then ``arg`` when ``ctrl & OP_EXTRA``,
    then ``size`` data bytes (fewer if the input ends).
    """

    delay: int
    timeout_first: bool
    wrap: bool
    extra: bool
    arg: int
    data: bytes


def read_ops(reader: Reader) -> Iterator[Op]:
    """The ops of the rest of the input."""
    while reader.remaining:
        ctrl = reader.u8()
        size = reader.u8()
        extra = bool(ctrl & OP_EXTRA)
        arg = reader.u8() if extra else 0
        yield Op(
            delay=ctrl & OP_DELAY_MASK,
            timeout_first=bool(ctrl & OP_TIMEOUT_FIRST),
            wrap=bool(ctrl & OP_WRAP),
            extra=extra,
            arg=arg,
            data=reader.take(size),
        )


def op_bytes(
    data: bytes,
    *,
    delay: int = 0,
    timeout_first: bool = False,
    wrap: bool = False,
    extra: bool = False,
    arg: int = 0,
) -> bytes:
    """The encoding :func:`read_ops` reads back as one :class:`Op` (for seeds)."""
    if len(data) > 0xFF:
        raise ValueError(f"an op carries at most 255 bytes, got {len(data)}")
    if not 0 <= delay <= OP_DELAY_MASK:
        raise ValueError(f"delay index must be 0..{OP_DELAY_MASK}")
    ctrl = delay | (OP_TIMEOUT_FIRST if timeout_first else 0) | (OP_WRAP if wrap else 0) | (OP_EXTRA if extra else 0)
    return bytes((ctrl, len(data))) + (bytes((arg,)) if extra else b"") + data


# Gaps between ops on a serial line: multiples of the character time around
# t1.5 and t3.5, then absolute times around the fixed 750/1750 us timers,
# the 20 ms tolerant gap of RtuFramer and the 1 s ASCII timeout.
_CHARACTER_GAPS = (0.0, 0.5, 1.0, 1.4, 1.5, 1.6, 2.0, 2.5, 3.0, 3.4, 3.5, 3.6, 4.0, 4.5, 5.0, 8.0, 16.0, 64.0)
_ABSOLUTE_GAPS = (0.0005, 0.00075, 0.0008, 0.00175, 0.0018, 0.016, 0.0199, 0.02, 0.0201, 0.1, 0.9999, 1.0, 1.0001, 10.0)
assert len(_CHARACTER_GAPS) + len(_ABSOLUTE_GAPS) == OP_DELAY_MASK + 1


def serial_delay(index: int, char_time: float) -> float:
    """Seconds between two serial ops, for delay *index* (0..31)."""
    if index < len(_CHARACTER_GAPS):
        return _CHARACTER_GAPS[index] * char_time
    return _ABSOLUTE_GAPS[index - len(_CHARACTER_GAPS)]


# Gaps between ops on a TCP stream (MBAP frame_timeout is in seconds).
STREAM_DELAYS = (
    0.0,
    0.0001,
    0.001,
    0.01,
    0.1,
    0.25,
    0.4999,
    0.5,
    0.5001,
    0.9999,
    1.0,
    1.0001,
    2.0,
    5.0,
    9.999,
    10.0,
    10.001,
    30.0,
    60.0,
    3600.0,
    *(0.0,) * 12,
)
assert len(STREAM_DELAYS) == OP_DELAY_MASK + 1

# Where the clock starts: monotonic clocks start anywhere, and at 1e9 s a
# double keeps only ~0.1 us, close to the character time at high baud rates.
START_TIMES = (0.0, 0.25, 86400.125, 1e9)


# --------------------------------------------------------------------------
# findings reported to the owner of modbus_core and not fixed yet


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """A bug the fuzzers found, as reported to the owner of modbus_core.

    While it is open (*fixed* empty) the fuzzers step over inputs that show
    it, so that they keep looking for other bugs, and the corpus replay
    tolerates it.  Its minimized inputs stay in
    ``crashes-found/<target>/<key>-<hash>`` for good: expected failures
    while it is open, regression inputs once *fixed* names the change.
    """

    key: str
    summary: str
    pattern: str  # searched in "ExceptionType: message"
    fixed: str = ""

    def matches(self, error: BaseException) -> bool:
        return re.search(self.pattern, f"{type(error).__name__}: {error}", re.DOTALL) is not None


FINDINGS: tuple[Finding, ...] = (
    Finding(
        "exception-to-code-0",
        "a request with function code 0x00 or 0x80 is answered with ExceptionResponse(function_code=0), "
        "which the ExceptionResponse constructor refuses and no ClientConnection can decode",
        r"built ExceptionResponse\(function_code=0,",
        fixed="ed7a1b0 (no answer at all to function code 0x00/0x80, by design)",
    ),
    Finding(
        "mbap-datagram-several-adus",
        "MbapFramer(datagram=True) takes a second ADU out of one datagram instead of dropping the leftover",
        r"one datagram gave several ADUs",
        fixed="d472781",
    ),
    Finding(
        "mbap-datagrams-merged",
        "MbapFramer(datagram=True) appends a datagram to the unread rest of the previous one when the adapter "
        "feeds two datagrams before reading events, and builds an ADU out of both",
        r"an ADU was put together from datagrams",
        fixed="d472781",
    ),
    Finding(
        "mbap-frame-timeout-busy-stream",
        "MbapFramer(frame_timeout=...) times the partial ADU from when the buffer was last empty, so a "
        "pipelining client whose reads end mid-ADU is disconnected although every ADU completes at once",
        r"partial MBAP frame incomplete after .* though the partial ADU began at",
        fixed="d472781",
    ),
    Finding(
        "rtu-silence-frame-skipped",
        "on a shared line, a request to us that only silence delimits (08/00, unknown or custom codes) is "
        "dropped without a trace when it follows a request to another unit (it is framed as a response)",
        r"a frame for unit \d+ that reads as a request, .*, was skipped",
        fixed="a746603",
    ),
    Finding(
        "diagnostics-response-length",
        "decode_response accepts an 08 response whose data is not 2 bytes for sub-functions other than 00, "
        "which the RTU length rule (5 bytes) frames differently: MBAP and ASCII clients accept it, RTU cannot",
        r"response 08.* decodes, but the RTU length rule says 5, not",
        fixed="a746603",
    ),
    Finding(
        "client-malformed-request-count",
        "ClientConnection.next_event raises AttributeError when a bit-read response (FC01/02) answers a "
        "MalformedRequest the client sent (a gateway forwarding what it received): _match reads request.pdu.count",
        r"AttributeError: 'MalformedRequest' object has no attribute 'count'",
        fixed="a746603",
    ),
    Finding(
        "oversize-pdu-decode",
        "decode_request (documented never to raise) and decode_response take PDUs over 253 bytes: they raise "
        "LocalProtocolError for an unknown function or FC43 with another MEI type (RawPdu refuses the data), "
        "and build PDUs their own constructors refuse (08/00 echoing over 250 bytes)",
        r"decode_(request|response)\([0-9a-f]{508,}\) (raised LocalProtocolError|built )",
        fixed="d472781",
    ),
    Finding(
        "oversize-pdu-encode",
        "ClientConnection.send (and ServerConnection.send) frame a PDU over 253 bytes (a MalformedRequest or a "
        "custom PDU) without complaint: MBAP writes a length over 254 that the peer must reject",
        r"send\(\) framed a \d+-byte PDU, over 253",
        fixed="d472781",
    ),
    Finding(
        "ascii-timeout-drops-complete-frame",
        "AsciiFramer drops its whole buffer as INCOMPLETE (inter-character timeout) when data arrives after the "
        "timeout or handle_timeout fires, complete frames not yet read by next_event included (RtuFramer keeps them)",
        r"a valid frame 3a[0-9a-f]* that arrived on an idle link came out as drop INCOMPLETE",
        fixed="a746603",
    ),
    Finding(
        "ascii-broadcast-delimiter",
        "08/03 by broadcast changes ServerDiagnostics.ascii_delimiter but not the AsciiFramer's input "
        "delimiter (the connection only changes it when it sends a 08/03 answer)",
        r"the framer ends frames with 0x.., the diagnostics say",
        fixed="d472781",
    ),
)


OPEN_ISSUES = tuple(finding for finding in FINDINGS if not finding.fixed)


def open_issue(error: BaseException) -> Finding | None:
    """The open issue *error* shows, if any."""
    return next((issue for issue in OPEN_ISSUES if issue.matches(error)), None)


def tolerant(check: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """*check*, except that failures showing an open issue pass."""

    def tolerant_check(data: bytes) -> None:
        try:
            check(data)
        except Exception as error:
            if open_issue(error) is None:
                raise

    return tolerant_check


# --------------------------------------------------------------------------
# running under atheris


def instrumented(active: bool) -> AbstractContextManager[object]:
    """``atheris.instrument_imports()`` for modbus_core when *active*, else nothing.

    Wrap the import of modbus_core in it: ``with instrumented(__name__ == "__main__"):``.
    """
    if not active:
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["modbus_core"])  # type: ignore[no-any-return]


def fuzz(check: Callable[[bytes], None]) -> None:
    """Hand *check* (tolerating open issues) to atheris with the command line's libFuzzer options."""
    import atheris

    # The dispatcher logs every failing request with its traceback: at
    # thousands of inputs a second that is all the fuzzer would do.
    logging.disable(logging.CRITICAL)
    # libFuzzer's -merge, -fork and -minimize_crash re-run argv[0] through a
    # shell: make it "python script", the script itself is not executable.
    command = f"{shlex.quote(sys.executable)} {shlex.quote(sys.argv[0])}"
    atheris.Setup([command, *sys.argv[1:]], tolerant(check))
    atheris.Fuzz()
