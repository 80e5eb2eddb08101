"""The annotation tool's client keeps its token out of every message (the tool itself: make feedback-check)."""

import http.server
import threading

import pytest

from rlhf_core.feedback.label_studio import LabelStudio, LabelStudioError

TOKEN = "0123456789abcdef0123456789abcdef01234567"


class EchoHeaders(http.server.BaseHTTPRequestHandler):
    """Refuses every request and quotes its headers back, as a misbehaving proxy might."""

    def do_GET(self):
        body = str(self.headers).encode()
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_errors_and_repr_never_show_the_token():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHeaders)
    server.daemon_threads, server.block_on_close = True, False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tool = LabelStudio(f"http://127.0.0.1:{server.server_port}", TOKEN)
        with pytest.raises(LabelStudioError) as refused:
            tool.users()
        assert "HTTP 401" in str(refused.value) and "Authorization: Token <token>" in str(refused.value)
        assert TOKEN not in str(refused.value) and TOKEN not in repr(tool)
    finally:
        server.shutdown()
        server.server_close()  # the port is free again: nothing answers there
    with pytest.raises(LabelStudioError) as unreachable:
        LabelStudio(f"http://127.0.0.1:{server.server_port}", TOKEN).users()
    assert "cannot reach the server" in str(unreachable.value) and TOKEN not in str(unreachable.value)
