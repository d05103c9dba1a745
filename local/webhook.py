"""`make webhook` / `python -m local.webhook`: a local stand-in for a Slack incoming webhook.

It answers each POST as Slack does (`200 ok`, or `--status` to rehearse failures: 404, 429,
500...), checks the body against Slack's message format (local/slack_format.py) and prints
what an SDR would read; `--out FILE` keeps each message as a JSON line. Point `make serve` at
it and the local stack's API destination posts there exactly what EventBridge would post to
Slack:

    make webhook                                   # ready url=http://127.0.0.1:9000/slack
    make serve SLACK_WEBHOOK_URL=http://127.0.0.1:9000/slack

(`SlackWebhookUrl` takes only https URLs in AWS; the local stack does not check the pattern.)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local.slack_format import problems

DEFAULT_PORT = 9000
PATH = "/slack"
_MARKUP = re.compile(r"<(@[UW][A-Z0-9]+|!date\^\d+\^[^|>]+\|([^>]+)|[^<>|]+\|([^<>]+))>")


def readable(text: str) -> str:
    """mrkdwn as a terminal shows it: mentions as `@U…`, dates and links by their label."""
    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("@"):
            return inner
        return match.group(2) or match.group(3) or inner

    return _MARKUP.sub(one, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def render(message: Any) -> str:
    """The message as lines: its header, its section, its context; then any format problems."""
    lines: list[str] = []
    blocks = message.get("blocks") if isinstance(message, dict) else None
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "header":
            lines.append(f"# {block.get('text', {}).get('text', '')}")
        elif block.get("type") == "section":
            lines += [f"  {line}" for line in readable(str(block.get("text", {}).get("text", ""))).splitlines()]
        elif block.get("type") == "context":
            lines.append("  " + " ".join(readable(str(e.get("text", ""))) for e in block.get("elements") or []))
    if not lines and isinstance(message, dict):
        lines.append(readable(str(message.get("text", ""))))
    found = problems(message)
    lines.append("  (Slack's format: ok)" if not found else "  NOT VALID FOR SLACK: " + "; ".join(found))
    return "\n".join(lines)


class Receiver:
    """The webhook on `host:port` (0: a free port), in a thread: every request kept in
    `requests` (path, headers, body, the parsed message or None, the answer)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, status: int = 200,
                 log: Callable[[str], None] | None = None, out: Path | None = None) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self.log = log or (lambda line: None)
        self.out = out
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                receiver._take(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}{PATH}"
        self._thread: threading.Thread | None = None

    def _take(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        status = self.status if message is not None else 400  # Slack: invalid_payload
        with self.lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers), "body": body,
                                  "message": message, "status": status})
            if message is not None:
                self.log(render(message))
                if self.out is not None:
                    with self.out.open("a", encoding="utf-8") as file:
                        file.write(json.dumps(message, ensure_ascii=False) + "\n")
            else:
                self.log(f"!! not JSON ({len(body)} bytes): answered 400 invalid_payload")
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.end_headers()
        handler.wfile.write(b"ok" if status == 200 else b"invalid_payload" if status == 400 else b"error")

    def messages(self) -> list[Any]:
        with self.lock:
            return [r["message"] for r in self.requests if r["message"] is not None]

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.webhook", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free one")
    parser.add_argument("--status", type=int, default=200, help="the HTTP status to answer (default 200, as Slack)")
    parser.add_argument("--out", type=Path, help="append each message to this file as a JSON line")
    args = parser.parse_args(argv)
    receiver = Receiver(args.host, args.port, args.status, log=lambda line: print(line + "\n", flush=True),
                        out=args.out)
    print(f"ready url={receiver.url}", flush=True)
    try:
        receiver.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
