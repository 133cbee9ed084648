"""Material: the users, certificate, key and client CA that a reload reads and checks."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from echod.instance.checks import build, summary
from echod.instance.material import Material, Reading, read, sources
from echod.instance.users import demo_users_file
from echod.settings.config import ConfigError, Settings
from tests.support.material import htpasswd

if TYPE_CHECKING:
    from pathlib import Path


def issued(ca: trustme.CA) -> tuple[bytes, bytes]:
    """A certificate for localhost from ``ca``, and its key, in PEM."""
    leaf = ca.issue_cert("localhost")
    return leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()


def p521() -> tuple[bytes, bytes]:
    """A self-signed certificate on P-521, which OpenSSL loads and granian's TLS refuses."""
    key = ec.generate_private_key(ec.SECP521R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def files(tmp_path: Path) -> Settings:
    """Settings naming a users file, a certificate and its key, all good."""
    cert, key = issued(trustme.CA())
    (tmp_path / "users").write_bytes(htpasswd(alice="wonderland"))
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    return Settings(
        users_file=tmp_path / "users", tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem"
    )


def loaded(settings: Settings, kept: Material | None = None) -> Material:
    """The material the files of ``settings`` make now."""
    return build(settings, read(settings), kept)


class TestSources:
    def test_only_the_files_that_settings_name(self, files: Settings) -> None:
        """The demo users and the development certificate have no file to watch."""
        assert sorted(sources(files)) == ["tls_cert", "tls_key", "users"]
        assert sources(Settings()) == {}

    def test_no_certificate_without_https(self, files: Settings) -> None:
        """With --tls-port 0 the certificate is neither read nor checked."""
        settings = Settings(tls_port=0, users_file=files.users_file, tls_cert=files.tls_cert)
        assert sorted(sources(settings)) == ["users"]
        assert loaded(settings).tls_cert is None


class TestRead:
    def test_a_rewritten_file_reads_differently(self, files: Settings) -> None:
        """Other content, or another modification time, is another reading."""
        before = read(files)
        assert files.users_file is not None
        files.users_file.write_bytes(htpasswd(bob="builder"))
        assert read(files)["users"] != before["users"]
        after = read(files)
        os.utime(files.users_file, ns=(1, 1))
        assert read(files)["users"].content == after["users"].content
        assert read(files)["users"] != after["users"]

    def test_a_symlink_swap_is_a_change(self, tmp_path: Path) -> None:
        """As Kubernetes updates a Secret volume: ..data points to a new directory."""
        for version, user in (("v1", "alice"), ("v2", "bob")):
            (tmp_path / version).mkdir()
            (tmp_path / version / "users").write_bytes(htpasswd(**{user: "secret"}))
        (tmp_path / "..data").symlink_to("v1")
        (tmp_path / "users").symlink_to("..data/users")
        settings = Settings(users_file=tmp_path / "users", tls_port=0)
        before = read(settings)
        (tmp_path / "..data.new").symlink_to("v2")
        (tmp_path / "..data.new").replace(tmp_path / "..data")
        after = read(settings)
        assert after != before
        assert after["users"].path == before["users"].path
        assert b"bob:" in loaded(settings).users

    def test_a_file_that_cannot_be_read_is_a_reading_with_its_error(self, files: Settings) -> None:
        """Read errors are kept, to be reported when the material is checked."""
        assert files.tls_key is not None
        files.tls_key.unlink()
        reading = read(files)["tls_key"]
        assert reading == Reading(files.tls_key, None, None, "No such file or directory")
        with pytest.raises(ConfigError, match=r"--tls-key='.*key.pem': cannot be read: No such"):
            build(files, read(files), None)


class TestBuild:
    def test_unreadable_users_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A users file that is not UTF-8 text is refused, not crashed on."""
        path = tmp_path / "users"
        path.write_bytes(b"\xff\xfe\x00")
        settings = Settings(users_file=path, tls_port=0)
        with pytest.raises(ConfigError, match="cannot be read"):
            build(settings, read(settings), None)

    def test_good_files_are_the_material(self, files: Settings) -> None:
        """The bytes in service are the bytes of the files."""
        material = loaded(files)
        assert files.users_file is not None
        assert files.tls_cert is not None
        assert material.users == files.users_file.read_bytes()
        assert material.tls_cert == files.tls_cert.read_bytes()
        assert material.tls_client_ca is None

    @pytest.mark.parametrize(
        ("cert", "key", "reason"),
        [
            (b"not a certificate", None, "no PEM certificate in the certificate file"),
            (None, b"not a key", "the private key cannot be loaded"),
            (None, "another", "the private key is not the certificate's"),
            (*p521(), "granian's TLS cannot sign with this key"),
        ],
        ids=["garbage-cert", "garbage-key", "another-key", "p521"],
    )
    def test_a_pair_granian_cannot_serve_is_refused_naming_both_flags(
        self, files: Settings, cert: bytes | None, key: bytes | str | None, reason: str
    ) -> None:
        """Refused before any worker tries it, which would stop echod."""
        assert files.tls_cert is not None
        assert files.tls_key is not None
        if cert is not None:
            files.tls_cert.write_bytes(cert)
        if key == "another":
            key = issued(trustme.CA())[1]
        if isinstance(key, bytes):
            files.tls_key.write_bytes(key)
        with pytest.raises(ConfigError, match=rf"--tls-cert=.* with --tls-key=.*: {reason}"):
            loaded(files)

    def test_an_encrypted_key_is_refused(self, files: Settings) -> None:
        """granian is given no password: the key must be plain."""
        assert files.tls_key is not None
        key = serialization.load_pem_private_key(files.tls_key.read_bytes(), None)
        files.tls_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        with pytest.raises(ConfigError, match="the private key cannot be loaded"):
            loaded(files)

    def test_a_bad_users_line_is_refused_naming_file_and_line(self, files: Settings) -> None:
        """The message says where, as at start."""
        assert files.users_file is not None
        files.users_file.write_bytes(htpasswd(alice="wonderland") + b"bob:plaintext\n")
        with pytest.raises(ConfigError, match=r"users file .*users, line 2: .* not bcrypt"):
            loaded(files)

    def test_at_start_the_demo_users_and_a_development_certificate(self) -> None:
        """Without files: the bundled users, and a new self-signed certificate each time."""
        first, second = loaded(Settings()), loaded(Settings())
        assert first.users == demo_users_file().read_bytes()
        assert first.tls_cert is not None
        assert first.tls_cert != second.tls_cert

    def test_a_reload_keeps_the_demo_users_and_the_development_certificate(self) -> None:
        """Only files are read again: what was made at start stays as it was."""
        first = loaded(Settings())
        assert loaded(Settings(), kept=first) == first

    def test_a_client_ca_must_hold_a_certificate(self, files: Settings, tmp_path: Path) -> None:
        """Checked and kept when a file is read for it; refused when it holds none."""
        ca = trustme.CA()
        path = tmp_path / "client-ca.pem"
        ca.cert_pem.write_to_path(path)
        snapshot = read(files) | {
            "tls_client_ca": Reading(path, (0, 0, 0), path.read_bytes(), None)
        }
        assert build(files, snapshot, None).tls_client_ca == ca.cert_pem.bytes()
        snapshot["tls_client_ca"] = Reading(path, (0, 0, 0), b"garbage", None)
        with pytest.raises(ConfigError, match=r"--tls-client-ca='.*': no PEM certificate"):
            build(files, snapshot, None)


class TestDescribe:
    def test_changes_name_the_flags_of_the_files_that_differ(self, files: Settings) -> None:
        """The "reloaded" line says which files changed."""
        before = loaded(files)
        assert files.users_file is not None
        files.users_file.write_bytes(htpasswd(bob="builder"))
        assert loaded(files).changes(before) == ["--users-file"]
        assert before.changes(before) == []

    def test_summary_counts_users_and_names_the_certificate(self, files: Settings) -> None:
        """Serial in hexadecimal as openssl prints it, and the end of validity."""
        material = loaded(files)
        assert material.tls_cert is not None
        leaf = x509.load_pem_x509_certificate(material.tls_cert)
        described = summary(material)
        assert described.users == 1
        assert described.serial is not None
        assert int(described.serial, 16) == leaf.serial_number
        assert len(described.serial) % 2 == 0
        assert described.not_after == leaf.not_valid_after_utc.timestamp()
        assert described.fields()["certNotAfter"] == leaf.not_valid_after_utc.isoformat()
