"""Modbus/TCP Security pieces that need no network: roles, rules, contexts."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from modbus_anyio import ROLE_OID, AccessRule, RolePolicy, client_role, server_ssl_context
from modbus_core import (
    Diagnostics,
    FileRecordReference,
    MaskWriteRegister,
    ReadCoils,
    ReadDeviceIdentification,
    ReadDiscreteInputs,
    ReadFifoQueue,
    ReadFileRecord,
    ReadHoldingRegisters,
    ReadInputRegisters,
    ReadWriteMultipleRegisters,
    Request,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

from .anyio_support import IssueClient, role_value


def test_role_oid_is_the_specifications() -> None:
    assert ROLE_OID == "1.3.6.1.4.1.50316.802.1"


def test_client_role_reads_the_extension(issue_client: IssueClient) -> None:
    assert client_role(issue_client(role="operator").der) == "operator"
    assert client_role(issue_client(role="Ingénieur").der) == "Ingénieur"


def test_client_role_none_without_certificate_or_extension(issue_client: IssueClient, ca: trustme.CA) -> None:
    assert client_role(None) is None
    assert client_role(issue_client().der) is None
    leaf = ca.issue_cert("client@example.com")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_bytes(serialization.Encoding.DER)
    assert client_role(der) is None


def test_client_role_refuses_two_role_extensions(issue_client: IssueClient) -> None:
    certificate = issue_client(role="operator", roles=(role_value("admin"),))
    with pytest.raises(ValueError, match="more than one"):
        client_role(certificate.der)


def test_client_role_refuses_a_value_that_is_not_utf8string(issue_client: IssueClient) -> None:
    printable = b"\x13\x08operator"  # PrintableString
    with pytest.raises(ValueError, match="UTF8String"):
        client_role(issue_client(roles=(printable,)).der)
    with pytest.raises(ValueError, match="UTF8String"):
        client_role(issue_client(roles=(b"\x0c\x08oper",)).der)  # truncated


def test_client_role_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="unreadable"):
        client_role(b"\x30\x03\x02\x01\x01")


def test_server_ssl_context_is_tls12_mutual(tmp_path: Path, server_cert: trustme.LeafCert, ca: trustme.CA) -> None:
    cert = tmp_path / "server.pem"
    key = tmp_path / "server.key"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    context = server_ssl_context(cert, key, cafile=cafile)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.options & ssl.OP_NO_COMPRESSION
    optional = server_ssl_context(str(cert), str(key), cafile=str(cafile), require_client_certificate=False)
    assert optional.verify_mode == ssl.CERT_OPTIONAL


def test_server_ssl_context_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        server_ssl_context(tmp_path / "missing.pem", tmp_path / "missing.key")


# ---------------------------------------------------------------------------
# rules


def req(pdu: object, unit: int = 1) -> Request:
    return Request(pdu, unit)  # type: ignore[arg-type]


def test_access_rule_defaults_allow_everything() -> None:
    rule = AccessRule()
    assert rule.matches(req(ReadCoils(0, 10)))
    assert rule.matches(req(Diagnostics(0, b"\x12\x34"), unit=200))


def test_access_rule_functions_and_units() -> None:
    rule = AccessRule(functions=frozenset({3, 4}), units=frozenset({1, 2}))
    assert rule.matches(req(ReadHoldingRegisters(0, 1)))
    assert rule.matches(req(ReadInputRegisters(0, 1), unit=2))
    assert not rule.matches(req(ReadHoldingRegisters(0, 1), unit=3))
    assert not rule.matches(req(WriteSingleRegister(0, 1)))


@pytest.mark.parametrize(
    ("pdu", "allowed"),
    [
        (ReadCoils(10, 10), True),
        (ReadCoils(10, 11), False),  # 10..20 runs past 19
        (ReadDiscreteInputs(9, 1), False),
        (ReadHoldingRegisters(100, 125), True),
        (ReadInputRegisters(224, 2), False),
        (ReadInputRegisters(199, 2), True),
        (WriteSingleCoil(19, True), True),
        (WriteSingleRegister(20, 1), False),
        (WriteMultipleCoils(10, (True,) * 10), True),
        (WriteMultipleRegisters(15, (1,) * 6), False),
        (MaskWriteRegister(150, 0, 0), True),
        (ReadFifoQueue(100), True),
        (ReadWriteMultipleRegisters(100, 5, 10, (1, 2)), True),
        (ReadWriteMultipleRegisters(100, 5, 30, (1,)), False),
        # no table addresses: an address-limited rule does not match
        (Diagnostics(0, b"\x00\x00"), False),
        (ReadDeviceIdentification(1, 0), False),
        (ReadFileRecord((FileRecordReference(1, 0, 1),)), False),
    ],
)
def test_access_rule_addresses(pdu: object, allowed: bool) -> None:
    rule = AccessRule(addresses=((10, 19), (100, 224)))
    assert rule.matches(req(pdu)) is allowed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"functions": [0]}, "functions"),
        ({"functions": [128]}, "functions"),
        ({"functions": "3"}, "functions"),
        ({"units": [256]}, "units"),
        ({"units": [True]}, "units"),
        ({"addresses": [(5, 4)]}, "empty"),
        ({"addresses": [(0, 65536)]}, "address"),
        ({"addresses": [(1, 2, 3)]}, "pairs"),
    ],
)
def test_access_rule_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AccessRule(**kwargs)  # type: ignore[arg-type]


def test_access_rule_merges_adjacent_ranges() -> None:
    rule = AccessRule(addresses=((20, 29), (10, 19), (25, 40)))
    assert rule.addresses == ((10, 40),)
    assert rule.matches(req(ReadHoldingRegisters(15, 20)))


def test_role_policy_roles_no_role_and_default() -> None:
    policy = RolePolicy(
        {
            "operator": [AccessRule(functions=frozenset({3}))],
            "engineer": [AccessRule()],
            None: [AccessRule(functions=frozenset({4}))],
        }
    )
    read = req(ReadHoldingRegisters(0, 1))
    write = req(WriteSingleRegister(0, 1))
    assert policy.allows("operator", read)
    assert not policy.allows("operator", write)
    assert policy.allows("engineer", write)
    assert policy.allows(None, req(ReadInputRegisters(0, 1)))
    assert not policy.allows(None, read)
    assert not policy.allows("stranger", read)  # default: nothing
    assert not RolePolicy({}).allows(None, read)
    assert RolePolicy({}, default=[AccessRule()]).allows("stranger", read)
    assert RolePolicy.allow_all().allows(None, write)
    assert "operator" in repr(policy)


def test_role_policy_from_mapping() -> None:
    policy = RolePolicy.from_mapping(
        {
            "roles": {
                "operator": [{"functions": [3, 4], "units": [1], "addresses": [[0, 99]]}],
                "engineer": [{}],
            },
            "no_role": [{"functions": [4]}],
            "default": [{"functions": [7]}],
        }
    )
    assert policy.allows("operator", req(ReadHoldingRegisters(0, 100)))
    assert not policy.allows("operator", req(ReadHoldingRegisters(0, 101)))
    assert not policy.allows("operator", req(ReadHoldingRegisters(0, 1), unit=2))
    assert policy.allows("engineer", req(WriteSingleCoil(0, True)))
    assert policy.allows(None, req(ReadInputRegisters(5, 1)))
    assert not policy.allows(None, req(ReadHoldingRegisters(5, 1)))
    assert len(policy.rules_for("someone else")) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "mapping"),
        ({"rolez": {}}, "unknown role policy keys"),
        ({"roles": []}, "roles"),
        ({"roles": {"x": {"functions": [3]}}}, r"roles\.x"),
        ({"roles": {"x": [{"function": [3]}]}}, r"roles\.x\[0\]: unknown rule keys"),
        ({"no_role": [{"units": [300]}]}, r"no_role\[0\]: units"),
        ({"default": [{"addresses": 5}]}, r"default\[0\]: addresses"),
        ({"default": [5]}, r"default\[0\]"),
    ],
)
def test_role_policy_from_mapping_errors(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RolePolicy.from_mapping(data)  # type: ignore[arg-type]


def test_role_policy_refuses_bad_entries() -> None:
    with pytest.raises(ValueError, match="roles are strings"):
        RolePolicy({3: [AccessRule()]})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="AccessRule"):
        RolePolicy({"x": [{"functions": [3]}]})  # type: ignore[list-item]
