"""Modbus/TCP Security: the client's role, TLS contexts and role-based rules.

The MODBUS/TCP Security specification (port 802) puts TLS 1.2 or newer
under Modbus/TCP, makes mutual authentication mandatory and carries the
client's *role* in its certificate, as the extension
:data:`ROLE_OID` (one UTF8String).  What each role may do is configured by
the user (:class:`RolePolicy`), never hard-coded; a request the rules
refuse is answered with exception 01 (illegal function).

This module imports neither anyio nor asyncio: the blocking servers of
``modbus_sync`` use it too.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterable, Mapping
from os import PathLike

from cryptography import x509
from cryptography.hazmat import asn1

from modbus_core import (
    MaskWriteRegister,
    ReadCoils,
    ReadDiscreteInputs,
    ReadFifoQueue,
    ReadHoldingRegisters,
    ReadInputRegisters,
    ReadWriteMultipleRegisters,
    Request,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

__all__ = ["ROLE_OID", "AccessRule", "RolePolicy", "client_role", "server_ssl_context"]

ROLE_OID: str = "1.3.6.1.4.1.50316.802.1"
"""The certificate extension that carries the Modbus role (a UTF8String)."""

_ROLE_OID = x509.ObjectIdentifier(ROLE_OID)

StrPath = str | PathLike[str]


def client_role(der_certificate: bytes | None) -> str | None:
    """The role in the peer certificate *der_certificate* (DER bytes).

    None when there is no certificate or it carries no role extension.
    Raises :class:`ValueError` when the certificate cannot be parsed, holds
    the role extension more than once, or its value is not one UTF8String.
    """
    if der_certificate is None:
        return None
    try:
        certificate = x509.load_der_x509_certificate(der_certificate)
    except ValueError as error:
        raise ValueError(f"unreadable client certificate: {error}") from None
    try:
        extensions = certificate.extensions
    except x509.DuplicateExtension as error:
        if error.oid == _ROLE_OID:
            raise ValueError("the client certificate holds more than one Modbus role extension") from None
        raise ValueError(f"the client certificate repeats extension {error.oid.dotted_string}") from None
    try:
        extension = extensions.get_extension_for_oid(_ROLE_OID)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension):  # pragma: no cover - cryptography knows no such OID
        raise ValueError("unexpected role extension type")
    try:
        role = asn1.decode_der(str, value.value)
    except ValueError:
        raise ValueError("the Modbus role extension is not a UTF8String") from None
    if not isinstance(role, str):  # pragma: no cover - decode_der(str) returns a str
        raise ValueError("the Modbus role extension is not a UTF8String")
    return role


def server_ssl_context(
    certfile: StrPath,
    keyfile: StrPath | None = None,
    *,
    cafile: StrPath | None = None,
    password: str | bytes | None = None,
    require_client_certificate: bool = True,
) -> ssl.SSLContext:
    """A server-side :class:`ssl.SSLContext` for Modbus/TCP Security.

    TLS 1.2 or newer only, no compression, and (by default) a client
    certificate is required and verified against *cafile* (the system's
    CAs when *cafile* is None).  *keyfile* may be omitted when *certfile*
    holds the key too; *password* decrypts the key.
    """
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=None if cafile is None else str(cafile))
    except OSError as error:
        raise _naming_the_file(error, f"the CA certificates {cafile}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(certfile, keyfile, password)
    except OSError as error:
        files = f"the certificate {certfile}" + (f" and key {keyfile}" if keyfile is not None else "")
        raise _naming_the_file(error, files) from None
    context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    return context


def _naming_the_file(error: OSError, what: str) -> OSError:
    """*error* (same class) with a message that says which file could not be used: ssl's do not."""
    reason = error.strerror or str(error)
    return type(error)(error.errno, f"cannot load {what}: {reason}")


def check_server_context(context: ssl.SSLContext) -> None:
    """Refuse a user's context that would allow TLS older than 1.2."""
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(f"expected an ssl.SSLContext, got {type(context).__name__}")
    minimum = context.minimum_version
    # MINIMUM_SUPPORTED (-2) sorts below every version; MAXIMUM_SUPPORTED (-1) means "only the newest".
    if minimum != ssl.TLSVersion.MAXIMUM_SUPPORTED and minimum < ssl.TLSVersion.TLSv1_2:
        raise ValueError(
            "Modbus/TCP Security needs TLS 1.2 or newer: set ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2"
        )


def tls_server_settings(
    ssl_context: ssl.SSLContext | None,
    certfile: StrPath | None,
    keyfile: StrPath | None,
    cafile: StrPath | None,
    password: str | bytes | None,
    require_client_certificate: bool,
    policy: RolePolicy | None,
) -> tuple[ssl.SSLContext, RolePolicy | None]:
    """A TLS server's context and role policy, from its options, checked.

    Either the user's *ssl_context* (TLS 1.2 or newer) or one built by
    :func:`server_ssl_context` from *certfile* and the rest, never both.
    """
    if ssl_context is not None:
        if certfile is not None or keyfile is not None or cafile is not None:
            raise ValueError("give ssl_context or certfile/keyfile/cafile, not both")
        check_server_context(ssl_context)
    elif certfile is not None:
        ssl_context = server_ssl_context(
            certfile,
            keyfile,
            cafile=cafile,
            password=password,
            require_client_certificate=require_client_certificate,
        )
    else:
        raise ValueError("a TLS server needs ssl_context, or certfile and keyfile")
    if policy is not None and not isinstance(policy, RolePolicy):
        raise TypeError(f"policy must be a RolePolicy, got {type(policy).__name__}")
    return ssl_context, policy


# --------------------------------------------------------------------------
# rules


def _touched_addresses(request: Request) -> list[tuple[int, int]] | None:
    """The (first, last) data addresses *request* reads or writes, or None
    when it does not address the data tables (diagnostics, files, ids)."""
    pdu = request.pdu
    cls = pdu.__class__
    if cls in (ReadCoils, ReadDiscreteInputs, ReadHoldingRegisters, ReadInputRegisters):
        return [(pdu.address, pdu.address + pdu.count - 1)]  # type: ignore[attr-defined]
    if cls in (WriteSingleCoil, WriteSingleRegister, MaskWriteRegister, ReadFifoQueue):
        return [(pdu.address, pdu.address)]  # type: ignore[attr-defined]
    if cls in (WriteMultipleCoils, WriteMultipleRegisters):
        return [(pdu.address, pdu.address + len(pdu.values) - 1)]  # type: ignore[attr-defined]
    if cls is ReadWriteMultipleRegisters:
        return [
            (pdu.read_address, pdu.read_address + pdu.read_count - 1),  # type: ignore[attr-defined]
            (pdu.write_address, pdu.write_address + len(pdu.write_values) - 1),  # type: ignore[attr-defined]
        ]
    return None


def _int_set(name: str, values: Iterable[int] | None, low: int, high: int) -> frozenset[int] | None:
    if values is None:
        return None
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"{name}: expected a list of integers, got {values!r}")
    result = frozenset(values)
    for value in result:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name}: {value!r} is not an integer in {low}..{high}")
    return result


@dataclasses.dataclass(frozen=True, slots=True)
class AccessRule:
    """What a role may do: function codes, units and address ranges.

    Each field left None allows anything.  A request matches when its
    function code, its unit and every address it touches are allowed.
    *addresses* holds inclusive ``(first, last)`` ranges; a rule that limits
    addresses matches only requests that address the data tables (functions
    1-6, 15, 16, 22, 23, 24), so that diagnostics, file records and device
    identification need a rule without address limits (fail closed).
    """

    functions: frozenset[int] | None = None
    units: frozenset[int] | None = None
    addresses: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "functions", _int_set("functions", self.functions, 1, 127))
        object.__setattr__(self, "units", _int_set("units", self.units, 0, 255))
        if self.addresses is not None:
            ranges: list[tuple[int, int]] = []
            for entry in self.addresses:
                try:
                    first, last = entry
                except (TypeError, ValueError):
                    raise ValueError(f"addresses: expected [first, last] pairs, got {entry!r}") from None
                for value in (first, last):
                    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                        raise ValueError(f"addresses: {value!r} is not an address in 0..65535")
                if first > last:
                    raise ValueError(f"addresses: range {first}..{last} is empty")
                ranges.append((first, last))
            # Merge overlapping and adjacent ranges, so that a request may span them.
            merged: list[tuple[int, int]] = []
            for first, last in sorted(ranges):
                if merged and first <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], last))
                else:
                    merged.append((first, last))
            object.__setattr__(self, "addresses", tuple(merged))

    def matches(self, request: Request) -> bool:
        """Whether this rule allows *request*."""
        if self.functions is not None and request.pdu.function_code not in self.functions:
            return False
        if self.units is not None and request.unit not in self.units:
            return False
        if self.addresses is None:
            return True
        touched = _touched_addresses(request)
        if touched is None:
            return False
        return all(any(first <= low and high <= last for first, last in self.addresses) for low, high in touched)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> AccessRule:
        """From ``{"functions": [3, 4], "units": [1], "addresses": [[0, 99]]}`` (every key optional)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a rule is a mapping, got {data!r}")
        unknown = set(data) - {"functions", "units", "addresses"}
        if unknown:
            raise ValueError(f"unknown rule keys: {', '.join(sorted(map(str, unknown)))}")
        addresses = data.get("addresses")
        if addresses is not None and (isinstance(addresses, str | bytes) or not isinstance(addresses, Iterable)):
            raise ValueError(f"addresses: expected a list of [first, last] pairs, got {addresses!r}")
        return cls(
            functions=data.get("functions"),  # type: ignore[arg-type]  # validated in __post_init__
            units=data.get("units"),  # type: ignore[arg-type]
            addresses=None if addresses is None else tuple(addresses),
        )


class RolePolicy:
    """Which requests each client role may make.

    *rules* maps a role to the rules it gets (a request is allowed when any
    rule matches); the key None is the "no role" entry, for clients whose
    certificate has no role extension.  A role missing from the mapping,
    and no role when None is missing, gets *default*: nothing, unless given.
    """

    __slots__ = ("_default", "_rules")

    def __init__(self, rules: Mapping[str | None, Iterable[AccessRule]], *, default: Iterable[AccessRule] = ()) -> None:
        self._rules: dict[str | None, tuple[AccessRule, ...]] = {}
        for role, role_rules in rules.items():
            if role is not None and not isinstance(role, str):
                raise ValueError(f"roles are strings (or None for no role), got {role!r}")
            self._rules[role] = _rule_tuple(role_rules)
        self._default = _rule_tuple(default)

    def __repr__(self) -> str:
        roles = ", ".join(repr(role) for role in self._rules)
        return f"RolePolicy(roles=[{roles}], default={len(self._default)} rules)"

    def rules_for(self, role: str | None) -> tuple[AccessRule, ...]:
        """The rules that apply to *role*."""
        return self._rules.get(role, self._default)

    def allows(self, role: str | None, request: Request) -> bool:
        """Whether a client with *role* may make *request*."""
        return any(rule.matches(request) for rule in self._rules.get(role, self._default))

    @classmethod
    def allow_all(cls) -> RolePolicy:
        """A policy that allows everything to everyone (no role checks)."""
        return cls({}, default=(AccessRule(),))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RolePolicy:
        """From JSON-like configuration::

            {"roles": {"operator": [{"functions": [3, 4], "units": [1], "addresses": [[0, 99]]}],
                       "engineer": [{}]},
             "no_role": [],
             "default": []}

        Every key is optional; ``{}`` as a rule allows anything.  Raises
        :class:`ValueError` with a message naming the bad entry.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a role policy is a mapping, got {type(data).__name__}")
        unknown = set(data) - {"roles", "no_role", "default"}
        if unknown:
            raise ValueError(f"unknown role policy keys: {', '.join(sorted(map(str, unknown)))}")
        roles = data.get("roles", {})
        if not isinstance(roles, Mapping):
            raise ValueError("roles: expected a mapping of role name to a list of rules")
        rules: dict[str | None, list[AccessRule]] = {}
        for role, entries in roles.items():
            rules[str(role)] = _parse_rules(f"roles.{role}", entries)
        if "no_role" in data:
            rules[None] = _parse_rules("no_role", data["no_role"])
        default = _parse_rules("default", data.get("default", []))
        return cls(rules, default=default)


def _rule_tuple(rules: Iterable[AccessRule]) -> tuple[AccessRule, ...]:
    result = tuple(rules)
    for rule in result:
        if not isinstance(rule, AccessRule):
            raise ValueError(f"expected AccessRule, got {type(rule).__name__}")
    return result


def _parse_rules(where: str, entries: object) -> list[AccessRule]:
    if isinstance(entries, str | bytes | Mapping) or not isinstance(entries, Iterable):
        raise ValueError(f"{where}: expected a list of rules")
    result = []
    for index, entry in enumerate(entries):
        try:
            result.append(AccessRule.from_mapping(entry))
        except ValueError as error:
            raise ValueError(f"{where}[{index}]: {error}") from None
    return result
