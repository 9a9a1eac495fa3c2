"""The tracking server check, against real sockets: a server that answers, and one that is not
there."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from model_trainer.errors import ConfigurationError
from model_trainer.hooks import check_tracking_server


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args) -> None:
        pass


def test_a_server_that_answers_health_passes_and_a_local_store_is_not_checked():
    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        check_tracking_server(f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()
    check_tracking_server("sqlite:///nowhere/mlflow.db")


def test_a_closed_port_is_a_configuration_error_naming_the_uri():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigurationError, match=f"http://127.0.0.1:{port}") as caught:
        check_tracking_server(f"http://127.0.0.1:{port}", timeout=2)
    assert "mlflow server" in caught.value.remediation
