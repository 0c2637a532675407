"""rediss://: engines talk to a redis-server that only speaks TLS and wants client
certificates, all issued by a throwaway CA made here with the openssl CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from starmesh import EngineType, Settings, create_messagebus_client
from starmesh.core.errors import BusUnavailableError
from starmesh.testing import RedisServer, TlsFiles
from tests.helpers import Collector


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(name: str, ca: str, cwd: Path) -> None:
    """A key and a certificate for 127.0.0.1 signed by ``ca``."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", "/CN=127.0.0.1", cwd=cwd)  # fmt: skip
    (cwd / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", "san.ext",
            cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("tls")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                "-out", f"{ca}.crt", "-days", "1", "-subj", f"/CN={ca}", cwd=tmp_path)  # fmt: skip
    issue("server", "ca", tmp_path)
    issue("engine", "ca", tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def tls_redis(certificates: Path) -> Iterator[RedisServer]:
    files = TlsFiles(
        certificates / "server.crt", certificates / "server.key", certificates / "ca.crt"
    )
    server = RedisServer(tls=files).start()
    try:
        yield server
    finally:
        server.stop()


def tls_settings(prefix: str, certs: Path, ca: str = "ca", client_cert: bool = True) -> Settings:
    return Settings(
        key_prefix=prefix,
        redis_tls_ca_file=certs / f"{ca}.crt",
        redis_tls_cert_file=certs / "engine.crt" if client_cert else None,
        redis_tls_key_file=certs / "engine.key" if client_cert else None,
    )


async def test_engines_talk_over_tls_with_client_certificates(
    tls_redis: RedisServer, certificates: Path, key_prefix: str
) -> None:
    assert tls_redis.url.startswith("rediss://")
    settings = tls_settings(key_prefix, certificates)
    risk = create_messagebus_client(EngineType.RISK, url=tls_redis.url, settings=settings)
    strategy = create_messagebus_client(EngineType.STRATEGY, url=tls_redis.url, settings=settings)
    alerts = Collector()
    await strategy.subscribe("risk.alert.*", alerts)
    async with risk, strategy:
        await risk.publish("risk.alert.var", {"n": 1})
        (message,) = await alerts.wait_for(1)
        assert message.payload == {"n": 1}


@pytest.mark.parametrize(
    ("what", "ca", "client_cert", "plain"),
    [
        ("no client certificate", "ca", False, False),
        ("a server signed by an unknown CA", "other-ca", True, False),
        ("plain TCP to a TLS port", "ca", True, True),
    ],
)
async def test_without_the_right_certificates_nothing_connects(
    tls_redis: RedisServer, certificates: Path, key_prefix: str,
    what: str, ca: str, client_cert: bool, plain: bool,
) -> None:  # fmt: skip
    settings = tls_settings(key_prefix, certificates, ca, client_cert)
    url = tls_redis.url.replace("rediss://", "redis://") if plain else tls_redis.url
    client = create_messagebus_client(EngineType.RISK, url=url, settings=settings)
    with pytest.raises(BusUnavailableError, match="cannot reach Redis"):
        await client.start()
