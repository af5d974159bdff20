"""TLS for the gRPC port, from TF Serving's `--ssl_config_file`, read as TF Serving reads it.

The file is a text-format `tensorflow.serving.SSLConfig` (tensorflow_serving/config/
ssl_config.proto) with the PEM text inline:

    server_key: "-----BEGIN PRIVATE KEY-----\\n..."
    server_cert: "-----BEGIN CERTIFICATE-----\\n..."
    custom_ca: "-----BEGIN CERTIFICATE-----\\n..."   # the CA client certificates must chain to
    client_verify: true                              # mutual TLS: no certificate, no answer

and becomes the server credentials that TF Serving's BuildServerCredentialsFromSSLConfigFile
builds (server.cc): a client certificate is required and verified when `client_verify` is
set, and not asked for otherwise. The `tensorflow-serving-api` package does not ship
ssl_config_pb2, so the message is declared here from the same four fields, numbers and
package: text_format then reads and refuses a file exactly as TF Serving's parser does (an
unknown field is an error naming it). Unlike TF Serving, which aborts on a bad key, the zoo
checks at start that the key and the certificate are a pair and says which file is wrong.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from zoo.errors import ConfigError


def _ssl_config_class():
    proto = descriptor_pb2.FileDescriptorProto(
        name="zoo/tensorflow_serving/config/ssl_config.proto", package="tensorflow.serving", syntax="proto3")
    message = proto.message_type.add(name="SSLConfig")
    for number, (name, kind) in enumerate(
            [("server_key", "TYPE_STRING"), ("server_cert", "TYPE_STRING"), ("custom_ca", "TYPE_STRING"),
             ("client_verify", "TYPE_BOOL")], start=1):
        message.field.add(name=name, number=number, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                          type=getattr(descriptor_pb2.FieldDescriptorProto, kind))
    pool = descriptor_pool.DescriptorPool()  # its own pool: never clashes with a real ssl_config_pb2
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.SSLConfig"))


SSLConfig = _ssl_config_class()


def load_ssl_config(path: Path):
    """The SSLConfig in a text-proto file, its PEM key and certificate checked."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--ssl_config_file: cannot read {path}: {error.strerror or error}") from None
    config = SSLConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ConfigError(f"--ssl_config_file {path}: not an SSLConfig text proto: {error}") from None
    check_key_pair(config.server_key.encode(), config.server_cert.encode(), where=f"--ssl_config_file {path}")
    if config.custom_ca:
        _certificate(config.custom_ca.encode(), f"--ssl_config_file {path}: custom_ca")
    elif config.client_verify:
        raise ConfigError(f"--ssl_config_file {path}: client_verify needs custom_ca, the CA that signs the "
                          "client certificates")
    return config


def server_credentials(config) -> grpc.ServerCredentials:
    """gRPC server credentials as TF Serving builds them from an SSLConfig."""
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify,
    )


def check_key_pair(key_pem: bytes, cert_pem: bytes, *, where: str) -> None:
    """Raise a ConfigError unless `key_pem` is the private key of `cert_pem`'s public key."""
    if not key_pem.strip():
        raise ConfigError(f"{where}: server_key is empty")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: server_key is not a readable, unencrypted PEM private key ({error})") from None
    certificate = _certificate(cert_pem, f"{where}: server_cert")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.PEM, public) != \
            certificate.public_key().public_bytes(serialization.Encoding.PEM, public):
        raise ConfigError(f"{where}: server_cert does not match server_key (the certificate is for another key)")


def _certificate(pem: bytes, where: str) -> x509.Certificate:
    if not pem.strip():
        raise ConfigError(f"{where} is empty")
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise ConfigError(f"{where} is not a PEM certificate ({error})") from None
