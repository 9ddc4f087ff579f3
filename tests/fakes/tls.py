"""A throwaway certificate authority for fakes that must speak https (the PagerDuty client refuses http)."""

from __future__ import annotations

import ssl
from functools import cache
from pathlib import Path

import trustme


@cache
def test_ca() -> trustme.CA:
    return trustme.CA()


def server_context() -> ssl.SSLContext:
    """An SSL context for a server on 127.0.0.1 / localhost, signed by the test CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca().issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def write_ca_bundle(directory: Path) -> Path:
    """Write the test CA's certificate as a PEM file: hand it to the bot as CA_BUNDLE."""
    path = directory / "test-ca.pem"
    test_ca().cert_pem.write_to_path(str(path))
    return path
