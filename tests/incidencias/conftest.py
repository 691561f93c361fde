"""A real Dovecot IMAP server for the poller's tests (`.ci/run` installs `dovecot-imapd`).

One server per test session, configured in a temporary folder: a plain listener (which also
offers STARTTLS) and an IMAPS listener on free loopback ports, with a certificate signed by a
throwaway CA. Any user name logs in with `DOVECOT_PASSWORD` and gets its own empty Maildir, so
every test works in a mailbox of its own.
"""

import contextlib
import datetime
import grp
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from imapclient import IMAPClient

DOVECOT = Path("/usr/sbin/dovecot")
DOVECOT_PASSWORD = "clave-de-prueba"


@dataclass
class Dovecot:
    host: str
    port: int  # plain IMAP, STARTTLS offered
    tls_port: int  # IMAPS
    cafile: Path  # the CA that signed the server's certificate
    password: str = DOVECOT_PASSWORD


@dataclass
class Buzon:
    """One user's mailbox on the test server, reached directly (not through the poller)."""

    servidor: Dovecot
    user: str

    @contextlib.contextmanager
    def imap(self, carpeta: str | None = None):
        with IMAPClient(self.servidor.host, port=self.servidor.port, ssl=False, timeout=10) as c:
            c.login(self.user, self.servidor.password)
            if carpeta is not None:
                c.select_folder(carpeta)
            yield c

    def append(self, raw: bytes, carpeta: str = "INBOX", flags=()) -> None:
        with self.imap() as c:
            if not c.folder_exists(carpeta):
                c.create_folder(carpeta)
            c.append(carpeta, raw, flags=flags)

    def flags(self, carpeta: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """UID → flags of every message in the folder."""
        with self.imap(carpeta) as c:
            uids = c.search("ALL")
            return {uid: d[b"FLAGS"] for uid, d in c.fetch(uids, ["FLAGS"]).items()} if uids else {}

    def cuerpos(self, carpeta: str = "INBOX") -> list[bytes]:
        with self.imap(carpeta) as c:
            uids = c.search("ALL")
            datos = c.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [datos[uid][b"BODY[]"] for uid in sorted(datos)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificates(folder: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 and localhost; returns the CA's file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test IMAP CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "ca.pem"


def _config(folder: Path, port: int, tls_port: int) -> str:
    if os.geteuid() == 0:
        # Dovecot drops privileges to these users, which its package creates.
        internal, login = "dovecot", "dovenull"
    else:
        internal = login = pwd.getpwuid(os.getuid()).pw_name
    mail_user = pwd.getpwnam(internal)
    mail_group = grp.getgrgid(mail_user.pw_gid).gr_name
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
info_log_path = {folder}/dovecot.log
default_internal_user = {internal}
default_internal_group = {mail_group}
default_login_user = {login}
first_valid_uid = {min(mail_user.pw_uid, 500)}
first_valid_gid = {min(mail_user.pw_gid, 500)}
auth_mechanisms = plain
disable_plaintext_auth = no
ssl = yes
ssl_cert = <{folder}/cert.pem
ssl_key = <{folder}/key.pem
mail_location = maildir:{folder}/mail/%u
passdb {{
  driver = static
  args = password={DOVECOT_PASSWORD}
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={folder}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
"""


@pytest.fixture(scope="session")
def dovecot():
    if not DOVECOT.exists():
        pytest.skip("needs Dovecot (apt-get install dovecot-imapd)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("dovecot")
            pwd.getpwnam("dovenull")
        except KeyError:
            pytest.skip("needs the dovecot and dovenull users of the dovecot-core package")
    # Not pytest's tmp_path: it is private to root, and Dovecot's processes run as `dovecot`.
    folder = Path(tempfile.mkdtemp(prefix="dovecot-"))
    folder.chmod(0o755)
    mail = folder / "mail"
    mail.mkdir()
    if os.geteuid() == 0:
        usuario = pwd.getpwnam("dovecot")
        os.chown(mail, usuario.pw_uid, usuario.pw_gid)
    cafile = _certificates(folder)
    port, tls_port = _free_port(), _free_port()
    (folder / "dovecot.conf").write_text(_config(folder, port, tls_port))
    proceso = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(folder / "dovecot.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_banner(proceso, port, folder)
        yield Dovecot(host="127.0.0.1", port=port, tls_port=tls_port, cafile=cafile)
    finally:
        proceso.terminate()
        try:
            proceso.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proceso.kill()
            proceso.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_banner(proceso: subprocess.Popen, port: int, folder: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proceso.poll() is not None:
            salida = proceso.stdout.read().decode(errors="replace")
            log = folder / "dovecot.log"
            log_text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"Dovecot exited ({proceso.returncode}): {salida}\n{log_text}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("Dovecot did not answer within 15 s")


@pytest.fixture
def buzon(dovecot) -> Buzon:
    """A new, empty mailbox (its own user) on the test server."""
    return Buzon(servidor=dovecot, user=f"u{uuid.uuid4().hex[:12]}")


@pytest.fixture
def otro_buzon(dovecot) -> Buzon:
    return Buzon(servidor=dovecot, user=f"u{uuid.uuid4().hex[:12]}")
