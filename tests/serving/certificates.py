"""A throwaway PKI for the TLS tests: a CA, a server certificate for 127.0.0.1/localhost, a
client certificate signed by the CA, and one signed by a stranger's CA (the `cryptography`
package; nothing is fetched)."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclasses.dataclass(frozen=True)
class Pem:
    """A certificate and its private key, as PEM bytes."""

    cert: bytes
    key: bytes

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        """(certificate file, key file) written under `folder`."""
        cert, key = folder / f"{name}.crt", folder / f"{name}.key"
        cert.write_bytes(self.cert)
        key.write_bytes(self.key)
        return cert, key


@dataclasses.dataclass(frozen=True)
class Pki:
    """What the tests need: the CA, the server's pair, a good client and a stranger's client."""

    ca: Pem
    server: Pem
    client: Pem
    stranger: Pem


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key, issuer: Pem | None, issuer_key, *, ca: bool = False,
                 server: bool = False) -> bytes:
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name = x509.load_pem_x509_certificate(issuer.cert).subject if issuer else _name(subject)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    elif server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _signed(subject: str, ca: Pem, ca_key, **kind) -> Pem:
    key = _key()
    return Pem(_certificate(subject, key, ca, ca_key, **kind), _key_pem(key))


def make_pki() -> Pki:
    """A fresh CA with a server and a client certificate, and a client from another CA."""
    ca_key, other_key = _key(), _key()
    ca = Pem(_certificate("zoo test CA", ca_key, None, ca_key, ca=True), _key_pem(ca_key))
    other = Pem(_certificate("someone else's CA", other_key, None, other_key, ca=True), _key_pem(other_key))
    return Pki(ca=ca, server=_signed("127.0.0.1", ca, ca_key, server=True),
               client=_signed("a zoo client", ca, ca_key), stranger=_signed("a stranger", other, other_key))


def ssl_config_text(pki: Pki, *, client_verify: bool) -> str:
    """An SSLConfig text proto as TF Serving's --ssl_config_file takes it (PEM strings inline)."""
    def quoted(pem: bytes) -> str:
        return '"' + pem.decode().replace("\n", "\\n") + '"'

    return (f"server_key: {quoted(pki.server.key)}\nserver_cert: {quoted(pki.server.cert)}\n"
            f"custom_ca: {quoted(pki.ca.cert)}\nclient_verify: {'true' if client_verify else 'false'}\n")
