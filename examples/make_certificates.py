"""Make a test CA, a server certificate and client certificates carrying Modbus roles.

    python examples/make_certificates.py certs/ [--role operator --role engineer] [--host localhost]

Modbus/TCP Security carries the client's *role* in its certificate: the
extension with OID 1.3.6.1.4.1.50316.802.1 holding one ASN.1 UTF8String.
This writes, into the directory given:

* ``ca.pem``, ``ca.key``: a certificate authority (trust it on both sides);
* ``server.pem``, ``server.key``: the server's certificate, for *--host*
  (``localhost``, ``127.0.0.1`` and ``::1`` by default);
* ``<role>.pem``, ``<role>.key`` for each ``--role``: a client certificate
  with that role (``operator`` and ``engineer`` by default);
* ``no-role.pem``, ``no-role.key``: a client certificate without a role.

For tests and labs: keys are unencrypted and valid for 30 days.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MODBUS_ROLE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.50316.802.1")
VALIDITY = datetime.timedelta(days=30)


def role_extension(role: str) -> x509.UnrecognizedExtension:
    """The role extension: its value is the DER encoding of one UTF8String."""
    return x509.UnrecognizedExtension(MODBUS_ROLE_OID, asn1.encode_der(role))


def _builder(subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _write(directory: Path, name: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (directory / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path = directory / f"{name}.key"
    key_path.write_bytes(key_bytes)
    key_path.chmod(0o600)


def make_certificates(directory: Path, roles: list[str], hosts: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modbuskit example CA")])
    ca = (
        _builder("modbuskit example CA", ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign and crl_sign
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory, "ca", ca, ca_key)

    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        _builder(hosts[0], ca_name, server_key.public_key())
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory, "server", server, server_key)

    for role in [*roles, None]:
        client_key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(f"modbus client ({role or 'no role'})", ca_name, client_key.public_key())
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        if role is not None:
            builder = builder.add_extension(role_extension(role), critical=False)
        _write(directory, role or "no-role", builder.sign(ca_key, hashes.SHA256()), client_key)


def main() -> None:
    parser = argparse.ArgumentParser(description="Make a CA, a server certificate and client certificates with roles.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--role", action="append", help="a client role (repeatable; default: operator, engineer)")
    parser.add_argument("--host", action="append", help="a server name or address (default: localhost, 127.0.0.1, ::1)")
    args = parser.parse_args()
    roles = args.role or ["operator", "engineer"]
    hosts = args.host or ["localhost", "127.0.0.1", "::1"]
    make_certificates(args.directory, roles, hosts)
    print(f"wrote ca, server, {', '.join(roles)} and no-role certificates to {args.directory}")


if __name__ == "__main__":
    main()
