"""``marketbot web serve`` and ``web set-password``: refusals, permissions, the setup token."""

from __future__ import annotations

import io
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from marketbot.config import Settings
from marketbot.store.database import Database
from marketbot.store.web_auth import WebAuthRepository
from tests.support.cli import isolated_data_dir, run_cli


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "example.org", "::"])
def test_serve_when_host_not_loopback_and_no_tls_exits_1_naming_the_options(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolated_data_dir(tmp_path, monkeypatch)

    code, _out, err = run_cli(["web", "serve", "--host", host], capsys)

    assert code == 1
    assert err.startswith("error: ")
    assert "--tls-cert" in err
    assert "--tls-key" in err
    assert "--allow-insecure-remote" in err


def test_serve_when_tls_key_without_cert_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolated_data_dir(tmp_path, monkeypatch)
    key = tmp_path / "key.pem"
    key.write_text("x")

    code, _out, err = run_cli(["web", "serve", "--tls-key", str(key)], capsys)

    assert code == 1
    assert "--tls-cert and --tls-key go together" in err


def test_set_password_when_from_stdin_creates_the_admin_and_revokes_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = isolated_data_dir(tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "stdin", io.StringIO("first password\n"))
    assert run_cli(["web", "set-password", "--username", "ops", "--password-stdin"], capsys)[0] == 0
    database = Database.from_settings(Settings(data_dir=data_dir))
    auth = WebAuthRepository(database)
    user = auth.user("ops")
    assert user is not None
    auth.open_session(user.id)
    assert auth.session_count() == 1

    monkeypatch.setattr(sys, "stdin", io.StringIO("second password\n"))
    code, out, _err = run_cli(
        ["web", "set-password", "--username", "ops", "--password-stdin"], capsys
    )

    assert code == 0
    assert "signed out" in out
    assert auth.session_count() == 0
    new = auth.user("ops")
    assert new is not None
    assert new.password_hash != user.password_hash
    assert "second password" not in new.password_hash
    database.dispose()


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_set_password_when_length_outside_8_to_1024_exits_1(
    password: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_data_dir(tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))

    code, _out, err = run_cli(
        ["web", "set-password", "--username", "ops", "--password-stdin"], capsys
    )

    assert code == 1
    assert "password must have" in err
    assert password not in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_serve_when_started_prints_a_setup_token_and_keeps_files_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    port = free_port()
    env = {**os.environ, "MARKETBOT_DATA_DIR": str(data_dir)}
    env.pop("MARKETBOT_DATABASE_URL", None)
    marketbot = Path(sys.executable).with_name("marketbot")
    server = subprocess.Popen(
        [str(marketbot), "web", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stderr is not None
        token = None
        deadline = time.monotonic() + 60
        while token is None and time.monotonic() < deadline:
            line = server.stderr.readline()
            match = re.search(r"setup token (\S+)", line)
            token = match.group(1) if match else None
        assert token is not None
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health").json() == {"status": "ok"}:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with httpx.Client(base_url=base) as browser:
            made = browser.post(
                "/setup", data={"token": token, "username": "ops", "password": "p" * 12}
            )
            assert made.status_code == 303
            assert browser.get("/api/jobs/list").status_code == 200
            assert browser.get("/setup").status_code == 404
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for path in data_dir.glob("marketbot.db*"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        server.terminate()
        server.wait(timeout=30)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.slow
def test_serve_when_given_tls_answers_https_with_a_secure_cookie_and_hsts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = isolated_data_dir(tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    assert run_cli(["web", "set-password", "--username", "ops", "--password-stdin"], capsys)[0] == 0
    cert, key = self_signed(tmp_path)
    port = free_port()
    env = {**os.environ, "MARKETBOT_DATA_DIR": str(data_dir)}
    marketbot = Path(sys.executable).with_name("marketbot")
    server = subprocess.Popen(
        [str(marketbot), "web", "serve", "--port", str(port), "--tls-cert", str(cert),
         "--tls-key", str(key)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=base, verify=str(cert)) as browser:
            while True:
                try:
                    health = browser.get("/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the TLS server did not start"
                    time.sleep(0.2)
            signed = browser.post("/login", data={"username": "ops", "password": "a long password"})
        assert health.headers["strict-transport-security"] == "max-age=31536000"
        assert signed.status_code == 303
        assert "Secure" in signed.headers["set-cookie"]
        assert "HttpOnly" in signed.headers["set-cookie"]
    finally:
        server.terminate()
        server.wait(timeout=30)
