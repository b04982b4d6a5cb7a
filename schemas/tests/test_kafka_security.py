"""The one place Kafka clients get their security settings from."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from fundtrail_schemas.kafka_security import KafkaSecurity, client_security


def test_plaintext_by_default_adds_nothing_but_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    security = KafkaSecurity(_env_file=None)  # type: ignore[call-arg]
    assert client_security("kafka-python", security) == {"security_protocol": "PLAINTEXT"}
    assert client_security("aiokafka", security) == {"security_protocol": "PLAINTEXT"}
    assert client_security("faust", security) == {}


def test_sasl_from_the_shared_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "bureau-440705")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(password))
    security = KafkaSecurity(_env_file=None)  # type: ignore[call-arg]
    assert client_security("kafka-python", security) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "bureau-440705", "sasl_plain_password": "s3cret",
    }
    creds = client_security("faust", security)["broker_credentials"]
    assert (creds.username, creds.password, creds.mechanism.value) == ("bureau-440705", "s3cret", "SCRAM-SHA-512")
    assert "s3cret" not in security.describe() and "bureau-440705" in security.describe()


def test_tls_gives_aiokafka_a_verifying_context_and_kafka_python_the_ca_file(tmp_path: Path) -> None:
    security = KafkaSecurity(security_protocol="SASL_SSL", sasl_username="gateway", sasl_password="pw")
    context = client_security("aiokafka", security)["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    with_ca = security.model_copy(update={"ssl_cafile": tmp_path / "ca.pem"})
    assert client_security("kafka-python", with_ca)["ssl_cafile"] == str(tmp_path / "ca.pem")


def test_sasl_without_a_user_or_password_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        KafkaSecurity(security_protocol="SASL_SSL", sasl_password="pw")
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD"):
        KafkaSecurity(security_protocol="SASL_SSL", sasl_username="gateway")


def _self_signed_ca(path: Path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_the_ca_file_from_the_environment_reaches_every_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """KAFKA_SSL_CAFILE (deploy/compose.yaml: /run/secrets/kafka_ca.pem) is what each client trusts."""
    ca = tmp_path / "kafka_ca.pem"
    _self_signed_ca(ca)
    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    for name, value in {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "gateway",
                        "KAFKA_SASL_PASSWORD_FILE": str(password), "KAFKA_SSL_CAFILE": str(ca)}.items():
        monkeypatch.setenv(name, value)
    security = KafkaSecurity(_env_file=None)  # type: ignore[call-arg]
    assert client_security("kafka-python", security)["ssl_cafile"] == str(ca)
    for context in (client_security("aiokafka", security)["ssl_context"],
                    client_security("faust", security)["broker_credentials"].ssl_context):
        # Only the CA file is trusted (not the system's roots), and host names are checked.
        assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test CA"),),)]
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
