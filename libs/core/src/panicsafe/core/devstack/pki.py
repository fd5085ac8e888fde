"""The platform's own certificate authority, for TLS between its processes and its servers.

Made once per stack folder and kept (a restart reuses it): an ECDSA P-256 CA valid ten years, and
server certificates it signs for loopback and the in-cluster names. The CA's private key stays in
the stack folder (0600); clients only get `ca.pem`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_YEARS = 10
SERVER_DAYS = 825


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class ServerCertificate:
    cert_file: Path
    key_file: Path


class CertificateAuthority:
    """`ca.pem` (public) and `ca.key` (0600) in `directory`, created on first use."""

    def __init__(self, directory: Path, name: str = "PanicSAFE bunker local CA") -> None:
        self.directory = directory
        self.cert_file = directory / "ca.pem"
        self.key_file = directory / "ca.key"
        if not (self.cert_file.exists() and self.key_file.exists()):
            self._create(name)
        self._cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.key_file} is not an EC key")
        self._key = key

    def _create(self, name: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(self.key_file, _key_pem(key), 0o600)
        _write(self.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def server_certificate(
        self, name: str, *, dns: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)
    ) -> ServerCertificate:
        """`<name>.pem` and `<name>.key` for a server, signed by this CA (reused while valid)."""
        cert_file = self.directory / f"{name}.pem"
        key_file = self.directory / f"{name}.key"
        if cert_file.exists() and key_file.exists():
            existing = x509.load_pem_x509_certificate(cert_file.read_bytes())
            if existing.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=30):
                return ServerCertificate(cert_file, key_file)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        _write(key_file, _key_pem(key), 0o600)
        _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return ServerCertificate(cert_file, key_file)
