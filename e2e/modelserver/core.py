"""Core of the e2e model server: route registry, request log, scenario modes.

Plug-in interface (for anthropic.py, openai_responses.py, gemini.py, openai_chat.py):

    from .core import route, Request, scenario_mode, usage_for, reply_text_for, TOOL_COMMAND

    @route("POST", r"^/v1/messages(\\?.*)?$")
    def messages(req: Request):
        req.api = "anthropic"                       # name used in the log line
        req.user_texts = [...]                      # user message texts you extracted
        req.model = body.get("model")
        mode = req.mode                             # text|tool|429|quota|hang|slow
        ...
        req.usage = {...}                           # usage you handed out (logged)
        return req.send_json(200, {...})            # or req.send_sse(...) / req.start_sse()

* `route(method, path_regex)` registers a handler; the first registered match
  wins (regex is matched with re.match against the full path incl. query).
  Handlers get a `Request` (see below) and write the response through it.
* Modes, as anthropic.py / openai_responses.py implement them:
    text  "OK: <first 40 chars of the last user text>" (after a tool result: "Done: the command ran.")
    tool  a shell tool call that needs permission (Claude: Bash `touch e2e-tool-ran`;
          Codex: exec_command with sandbox_permissions=require_escalated), once per turn
    429   HTTP 429, rate-limit body, retry-after + provider reset headers (retry_after())
    quota Anthropic 400 "credit balance is too low" / OpenAI 429 insufficient_quota
    hang  streaming: headers + first event(s), then silence until the client hangs up;
          non-streaming: no answer at all
    slow  the answer streamed word by word over SLOW_SECONDS
* `req.mode` is the scenario mode, read per request from
  `<control-dir>/mode` (one word; default "text") or set by
  `POST /_control {"mode": "..."}` (which writes the same file).
  `GET /_control` returns the current mode.
* Every request is appended as one JSON line to the log file after the
  handler returns: time, method, path, api, model, user_texts (first 300 chars),
  user_text_sha256 (of each full text), user_text_sha256_unwrapped, body_size,
  mode, status, usage (whatever the handler put in req.usage), extra.
* Helpers shared by all providers:
    - `reply_text_for(texts)`  -> "OK: <first 40 chars of the last user text>"
    - `usage_for(texts)`        -> dict(input, output, cache_read, cache_write)
                                   deterministic, realistic-looking numbers
    - `TOOL_COMMAND`            -> shell command the `tool` mode asks to run
    - `hang(req)`               -> block until the client goes away (mode hang)
    - `SLOW_SECONDS`            -> how long `slow` streams take in total
    - `retry_after()`           -> seconds for retry-after/reset headers
                                   (<control-dir>/retry_after, default 20)
    - `reset_epoch(seconds)`    -> unix time `seconds` from now, for headers
* Modules are imported by __main__ (optional ones inside try/except), so a
  provider module only needs to exist and use @route.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROUTES: list[tuple[str, re.Pattern, callable]] = []
MODES = ("text", "tool", "429", "quota", "hang", "slow")
TOOL_COMMAND = "touch e2e-tool-ran"
TOOL_FILE = "e2e-tool-file.txt"
SLOW_SECONDS = 10.0

_log_lock = threading.Lock()
CONFIG = {"log": None, "control_dir": None}


def route(method: str, path_regex: str):
    def deco(fn):
        ROUTES.append((method.upper(), re.compile(path_regex), fn))
        return fn
    return deco


def current_mode() -> str:
    d = CONFIG["control_dir"]
    if d:
        try:
            with open(os.path.join(d, "mode")) as f:
                m = f.read().strip()
            if m:
                return m
        except OSError:
            pass
    return "text"


def control_value(name: str, default: str) -> str:
    """Another knob from <control-dir>/<name> (e.g. retry_after), else default."""
    d = CONFIG["control_dir"]
    if d:
        try:
            with open(os.path.join(d, name)) as f:
                v = f.read().strip()
            if v:
                return v
        except OSError:
            pass
    return default


def retry_after() -> int:
    """Seconds for retry-after / reset headers (<control-dir>/retry_after, default 20)."""
    return int(control_value("retry_after", "20"))


def set_mode(mode: str) -> None:
    d = CONFIG["control_dir"]
    if not d:
        raise RuntimeError("no control dir")
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, ".mode.tmp")
    with open(tmp, "w") as f:
        f.write(mode + "\n")
    os.replace(tmp, os.path.join(d, "mode"))


def reply_text_for(texts: list[str]) -> str:
    last = texts[-1] if texts else ""
    last = " ".join(last.split())
    return "OK: " + last[:40]


def usage_for(texts: list[str], body_size: int = 0) -> dict:
    """Deterministic, plausible token figures derived from the prompt size."""
    chars = sum(len(t) for t in texts) + body_size
    inp = max(12, chars // 4)
    return {
        "input": inp,
        "output": 17,
        "cache_read": (inp // 2) // 64 * 64,
        "cache_write": 128,
    }


def reset_epoch(seconds: int) -> int:
    return int(time.time()) + seconds


def hang(req: "Request", max_seconds: float = 3600.0) -> None:
    """Stall: keep the connection open without sending anything more."""
    end = time.time() + max_seconds
    sock = req.handler.connection
    while time.time() < end:
        time.sleep(0.5)
        try:
            sock.settimeout(0.01)
            if sock.recv(1, 0x02) == b"":  # MSG_PEEK: closed by client
                break
        except (BlockingIOError, TimeoutError, OSError) as e:  # noqa: PERF203
            if isinstance(e, (BlockingIOError, TimeoutError)) or "timed out" in str(e):
                continue
            break
    req.closed = True


def text_of_content(content) -> list[str]:
    """Texts from a content that is a str or a list of {type:text,text} parts."""
    if isinstance(content, str):
        return [content]
    out = []
    if isinstance(content, list):
        for p in content:
            if isinstance(p, dict):
                if isinstance(p.get("text"), str) and p.get("type") in (None, "text", "input_text"):
                    out.append(p["text"])
    return out


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler, method: str, body: bytes):
        self.handler = handler
        self.method = method
        self.path = handler.path
        self.headers = handler.headers
        self.raw = body
        self.body_size = len(body)
        try:
            self.json = json.loads(body) if body else {}
        except ValueError:
            self.json = None
        self.mode = current_mode()
        self.api = "?"
        self.model = None
        self.user_texts: list[str] = []
        self.usage = None
        self.status = None
        self.extra: dict = {}
        self.closed = False
        self._sse = False

    # --- responses -------------------------------------------------------
    def send_json(self, status: int, obj, headers: dict | None = None):
        data = json.dumps(obj).encode()
        h = self.handler
        self.status = status
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, str(v))
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    def start_sse(self, status: int = 200, headers: dict | None = None):
        h = self.handler
        self.status = status
        self._sse = True
        h.send_response(status)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("connection", "close")
        for k, v in (headers or {}).items():
            h.send_header(k, str(v))
        h.end_headers()
        h.close_connection = True

    def sse(self, data, event: str | None = None):
        """Write one SSE event; data may be a dict (JSON-encoded) or str."""
        if self.closed:
            return False
        payload = data if isinstance(data, str) else json.dumps(data)
        chunk = ""
        if event:
            chunk += f"event: {event}\n"
        chunk += f"data: {payload}\n\n"
        try:
            self.handler.wfile.write(chunk.encode())
            self.handler.wfile.flush()
            return True
        except OSError:
            self.closed = True
            return False

    def send_sse(self, events, headers: dict | None = None, delay: float = 0.0):
        """events: iterable of (event_name_or_None, data)."""
        self.start_sse(200, headers)
        for ev, data in events:
            if not self.sse(data, ev):
                break
            if delay:
                time.sleep(delay)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "orch-e2e-modelserver/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _dispatch(self, method: str):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        req = Request(self, method, body)
        t0 = time.time()
        err = None
        try:
            if self.path.startswith("/_control"):
                self._control(req)
            else:
                for m, rx, fn in ROUTES:
                    if m == method and rx.match(self.path):
                        fn(req)
                        break
                else:
                    req.api = "unknown"
                    req.send_json(404, {"error": {"type": "not_found_error",
                                                  "message": f"no route {method} {self.path}"}})
        except (BrokenPipeError, ConnectionResetError) as e:
            err = repr(e)
        except Exception as e:  # pragma: no cover - reported in log
            err = repr(e)
            try:
                req.send_json(500, {"error": {"type": "api_error", "message": repr(e)}})
            except OSError:
                pass
        finally:
            if CONFIG["control_dir"] and req.raw and req.api not in ("control", "?"):
                # the last body per API, to see what a CLI sends (tools, schemas)
                try:
                    with open(os.path.join(CONFIG["control_dir"], f"last-{req.api}.json"),
                              "wb") as f:
                        f.write(req.raw)
                except OSError:
                    pass
            write_log({
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
                "t": round(t0, 3),
                "duration": round(time.time() - t0, 3),
                "method": method,
                "path": self.path,
                "api": req.api,
                "model": req.model,
                "user_texts": [t[:300] + (f"...[{len(t)} chars]" if len(t) > 300 else "")
                               for t in req.user_texts],
                # full texts are too big to log; the e2e run compares these byte-exact
                "user_text_sha256": [_sha(t) for t in req.user_texts],
                # the same, of the text inside a CLI's own paste wrapper (Claude Code's
                # <pasted_content id=…>) where there is one
                "user_text_sha256_unwrapped": [_sha(_unwrap(t)) for t in req.user_texts],
                "body_size": req.body_size,
                "mode": req.mode,
                "status": req.status,
                "usage": req.usage,
                "user_agent": self.headers.get("user-agent"),
                **({"extra": req.extra} if req.extra else {}),
                **({"error": err} if err else {}),
            })

    def _control(self, req: Request):
        req.api = "control"
        if req.method == "POST":
            mode = (req.json or {}).get("mode")
            if mode not in MODES:
                return req.send_json(400, {"error": f"mode must be one of {MODES}"})
            set_mode(mode)
            if "retry_after" in (req.json or {}):
                with open(os.path.join(CONFIG["control_dir"], "retry_after"), "w") as f:
                    f.write(str(int(req.json["retry_after"])))
        return req.send_json(200, {"mode": current_mode()})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")


_PASTE_WRAPPER = re.compile(r'\s*<pasted_content id="([^"\n]+)">\n(.*)\n</pasted_content id="\1">\s*',
                            re.S)


def _unwrap(text: str) -> str:
    m = _PASTE_WRAPPER.fullmatch(text)
    return m.group(2) if m else text


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def write_log(obj: dict) -> None:
    path = CONFIG["log"]
    if not path:
        return
    line = json.dumps(obj, ensure_ascii=False)
    with _log_lock, open(path, "a") as f:
        f.write(line + "\n")


def load_providers() -> list[str]:
    """Import provider modules; optional ones may be missing."""
    import importlib
    loaded = []
    for name in ("anthropic", "openai_responses", "gemini", "openai_chat"):
        try:
            importlib.import_module(f"{__package__}.{name}")
            loaded.append(name)
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{name}":
                raise
    return loaded


def make_server(port: int, log: str | None, control_dir: str | None) -> ThreadingHTTPServer:
    CONFIG["log"] = log
    CONFIG["control_dir"] = control_dir
    if control_dir:
        os.makedirs(control_dir, exist_ok=True)
    load_providers()
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    return srv
