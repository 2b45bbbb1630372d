"""nginx for the tests and the benchmark: the shipped site (deploy/nginx/mapservice.conf)
adapted to loopback ports — the upstream's servers, the HTTPS server's port and certificate
(made here; or plain HTTP), this checkout for /srv/mapservice — run unprivileged in a
throw-away folder, as :mod:`tests.pgcluster` runs PostgreSQL. Every rewrite must match the
shipped file as expected, so a change there that the adaptation misses fails loudly."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.pgcluster import free_port

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "mapservice.conf"


def _blocks(text: str) -> list[str]:
    """The top-level statements of an nginx file (comments dropped): ``upstream …{…}``,
    ``server {…}``."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1].strip())
                start = i + 1
    assert depth == 0, "unbalanced braces in the shipped site"
    return out


def _sub(pattern: str, repl: str, text: str, count: int) -> str:
    new, n = re.subn(pattern, repl, text)
    assert n == count, f"the shipped site changed: {pattern!r} matched {n} times, not {count}"
    return new


def adapt_site(ports: list[int], listen: int, cert: Path | None, key: Path | None) -> str:
    """The shipped site with the upstream on ``ports``, the HTTPS server on 127.0.0.1:``listen``
    with our certificate (None: plain HTTP there), and /srv/mapservice this checkout. The
    HTTP redirect and the catch-all server (ports 80/443) are left out; everything else is as
    shipped."""
    blocks = _blocks(SITE.read_text())
    upstream = next(b for b in blocks if b.startswith("upstream mapservice_app"))
    https = next(b for b in blocks if "listen 443 ssl http2;" in b)
    params = re.search(r"server 127\.0\.0\.1:\d+ ([^;]*);", upstream)
    assert params is not None
    servers = "\n    ".join(f"server 127.0.0.1:{p} {params.group(1)};" for p in ports)
    upstream = _sub(r"server 127\.0\.0\.1:\d+ [^;]*;", "@SERVERS@", upstream, 2)
    upstream = upstream.replace("@SERVERS@", servers, 1).replace("\n    @SERVERS@", "")
    tls = "ssl http2" if cert is not None else ""
    https = _sub(r"listen 443 ssl http2;", f"listen 127.0.0.1:{listen} {tls};", https, 1)
    https = _sub(r"listen \[::\]:443 ssl http2;\n", "", https, 1)
    https = _sub(r"server_name map\.example\.org;", "server_name 127.0.0.1;", https, 1)
    if cert is not None and key is not None:
        https = _sub(r"ssl_certificate /\S+;", f"ssl_certificate {cert};", https, 1)
        https = _sub(r"ssl_certificate_key /\S+;", f"ssl_certificate_key {key};", https, 1)
    else:  # plain HTTP (the benchmark: the load client's own TLS would cost as much as nginx)
        https = _sub(r"\n\s*ssl_[a-z_]+ [^;]*;", "", https, 7)
        https = _sub(r"\n\s*add_header Strict-Transport-Security [^;]*;", "", https, 1)
    https = _sub(r"/srv/mapservice/", f"{ROOT}/", https, 7)
    return f"{upstream}\n\n{https}\n"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the clients trust exactly it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    port: int
    folder: Path
    keep: Path | None = None

    def access(self) -> list[dict[str, str]]:
        lines = (self.folder / "access.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.keep is not None:  # the logs, for a failure's reader
            for name in ("error.log", "access.log", "nginx.conf"):
                if (self.folder / name).exists():
                    shutil.copy(self.folder / name, self.keep / f"nginx-{name}")
        shutil.rmtree(self.folder, ignore_errors=True)


# What the test reads back from nginx: where each request went and what came back.
LOG_FORMAT = (
    'log_format city escape=json \'{"method":"$request_method","uri":"$request_uri",'
    '"status":"$status","upstream":"$upstream_addr","upstream_status":"$upstream_status"}\';'
)


def start_nginx(upstream_ports: list[int], tls: bool = True) -> Nginx:
    """nginx from Debian, unprivileged (``nobody`` when run as root, in a folder of its own
    as the PostgreSQL cluster's), with the adapted site; its master in the foreground. Its
    access log says, per request, which instances nginx tried (``Nginx.access``)."""
    exe = find_nginx()
    assert exe, "nginx is missing: `make system-deps` installs it"
    folder = Path(tempfile.mkdtemp(prefix="mapservice-nginx-"))
    os.chmod(folder, 0o755)
    cert, key = make_certificate(folder) if tls else (None, None)
    for attempt in range(3):
        port = free_port()
        conf = folder / "nginx.conf"
        conf.write_text(
            f"""daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    {LOG_FORMAT}
    access_log {folder}/access.log city;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{adapt_site(upstream_ports, port, cert, key)}
}}
"""
        )
        cmd = [exe, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(conf)]
        if os.geteuid() == 0:
            shutil.chown(folder, user="nobody")
            for path in folder.iterdir():
                shutil.chown(path, user="nobody")
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline and proc.poll() is None:
            try:
                if cert is not None:
                    conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                        "127.0.0.1", port, context=client_context(cert), timeout=2
                    )
                else:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    conn.request("GET", "/healthz")
                finally:
                    conn.close()
                return Nginx(proc, port, folder)
            except OSError:
                time.sleep(0.1)
        proc.kill()
        proc.wait()
        log = (folder / "error.log").read_text(errors="replace")
        if attempt == 2 or "in use" not in log:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"nginx did not start: {log[-2000:]}")
    raise AssertionError("unreachable")


def client_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    return context
