"""Anthropic Messages API (what Claude Code talks to), offline.

POST /v1/messages            streaming (SSE) and non-streaming
POST /v1/messages/count_tokens
GET  /v1/models[/<id>]
anything else under /api/ or /v1/ -> a harmless 200 {} so start-up probes pass.
"""
from __future__ import annotations

import json
import time
import uuid

from . import core
from .core import Request, route

RATE_LIMIT_MSG = ("This request would exceed the rate limit for your organization "
                  "(e2e-org) of 50 input tokens per minute. For details, refer to: "
                  "https://docs.anthropic.com/en/api/rate-limits.")
CREDIT_MSG = ("Your credit balance is too low to access the Anthropic API. "
              "Please go to Plans & Billing to upgrade or purchase credits.")


def _texts(body: dict) -> list[str]:
    out = []
    for m in body.get("messages") or []:
        if m.get("role") != "user":
            continue
        c = m.get("content")
        if isinstance(c, list):
            # skip tool results and system reminders that Claude Code injects
            for p in c:
                if isinstance(p, dict) and p.get("type") == "text":
                    t = p.get("text") or ""
                    if not t.startswith("<system-reminder>"):
                        out.append(t)
        elif isinstance(c, str):
            out.append(c)
    return out


def _last_is_tool_result(body: dict) -> bool:
    msgs = body.get("messages") or []
    if not msgs:
        return False
    c = msgs[-1].get("content")
    return isinstance(c, list) and any(isinstance(p, dict) and p.get("type") == "tool_result"
                                       for p in c)


def _tool_names(body: dict) -> list[str]:
    return [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]


def _usage(req: Request) -> dict:
    u = core.usage_for(req.user_texts, req.body_size)
    usage = {
        "input_tokens": u["input"],
        "cache_creation_input_tokens": u["cache_write"],
        "cache_read_input_tokens": u["cache_read"],
        "output_tokens": u["output"],
        "service_tier": "standard",
    }
    req.usage = usage
    return usage


def _rfc3339(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _limit_headers(reset_in: int | None = None) -> dict:
    reset_in = core.retry_after() if reset_in is None else reset_in
    ts = core.reset_epoch(reset_in)
    return {
        "retry-after": str(reset_in),
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": _rfc3339(ts),
        "anthropic-ratelimit-input-tokens-limit": "50",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": _rfc3339(ts),
        "anthropic-ratelimit-tokens-limit": "50",
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": _rfc3339(ts),
        "request-id": "req_e2e_" + uuid.uuid4().hex[:16],
    }


def _content_for(req: Request, body: dict) -> tuple[list[dict], str]:
    """Blocks to answer with and the stop_reason."""
    names = _tool_names(body)
    if req.mode == "tool" and not _last_is_tool_result(body) and names:
        if "Bash" in names:
            blk = {"type": "tool_use", "id": "toolu_e2e_" + uuid.uuid4().hex[:12],
                   "name": "Bash",
                   "input": {"command": core.TOOL_COMMAND,
                             "description": "Create the e2e marker file"}}
        elif "Write" in names:
            blk = {"type": "tool_use", "id": "toolu_e2e_" + uuid.uuid4().hex[:12],
                   "name": "Write",
                   "input": {"file_path": core.TOOL_FILE, "content": "e2e\n"}}
        else:
            blk = None
        if blk:
            return ([{"type": "text", "text": "I'll run a command."}, blk], "tool_use")
    text = core.reply_text_for(req.user_texts)
    if _last_is_tool_result(body):
        text = "Done: the command ran."
    return ([{"type": "text", "text": text}], "end_turn")


@route("POST", r"^/v1/messages/count_tokens")
def count_tokens(req: Request):
    req.api = "anthropic.count_tokens"
    body = req.json or {}
    req.model = body.get("model")
    req.user_texts = _texts(body)
    return req.send_json(200, {"input_tokens": max(1, req.body_size // 4)})


@route("POST", r"^/v1/messages(\?.*)?$")
def messages(req: Request):
    req.api = "anthropic"
    body = req.json or {}
    req.model = body.get("model")
    req.user_texts = _texts(body)
    req.extra = {"stream": bool(body.get("stream")), "tools": len(body.get("tools") or []),
                 "max_tokens": body.get("max_tokens")}
    mode = req.mode
    if mode == "429":
        return req.send_json(429, {"type": "error", "error": {
            "type": "rate_limit_error", "message": RATE_LIMIT_MSG}}, _limit_headers())
    if mode == "quota":
        return req.send_json(400, {"type": "error", "error": {
            "type": "invalid_request_error", "message": CREDIT_MSG}},
            {"request-id": "req_e2e_" + uuid.uuid4().hex[:16]})
    blocks, stop = _content_for(req, body)
    usage = _usage(req)
    msg_id = "msg_e2e_" + uuid.uuid4().hex[:20]
    model = req.model or "claude-sonnet-4-5"
    if not body.get("stream"):
        if mode == "hang":
            return core.hang(req)
        if mode == "slow":
            time.sleep(core.SLOW_SECONDS)
        return req.send_json(200, {
            "id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage})

    req.start_sse(200, {"request-id": "req_e2e_" + uuid.uuid4().hex[:16]})
    start_usage = dict(usage, output_tokens=1)
    req.sse({"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}}, "message_start")
    req.sse({"type": "ping"}, "ping")
    if mode == "hang":
        return core.hang(req)
    # pieces of the stream; slow mode spreads them over SLOW_SECONDS
    pieces = []
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            words = b["text"].split(" ")
            if mode == "slow":
                words = ("Thinking slowly, one word at a time, so the busy UI shows: "
                         + b["text"]).split(" ")
            pieces.append(("start", i, {"type": "text", "text": ""}))
            for j, w in enumerate(words):
                pieces.append(("delta", i, {"type": "text_delta",
                                            "text": (w if j == 0 else " " + w)}))
            pieces.append(("stop", i, None))
        else:
            pieces.append(("start", i, {"type": "tool_use", "id": b["id"], "name": b["name"],
                                        "input": {}}))
            pieces.append(("delta", i, {"type": "input_json_delta",
                                        "partial_json": json.dumps(b["input"])}))
            pieces.append(("stop", i, None))
    delay = core.SLOW_SECONDS / max(1, len(pieces)) if mode == "slow" else 0.0
    for kind, i, data in pieces:
        if kind == "start":
            ok = req.sse({"type": "content_block_start", "index": i, "content_block": data},
                         "content_block_start")
        elif kind == "delta":
            ok = req.sse({"type": "content_block_delta", "index": i, "delta": data},
                         "content_block_delta")
        else:
            ok = req.sse({"type": "content_block_stop", "index": i}, "content_block_stop")
        if not ok:
            return
        if delay:
            time.sleep(delay)
    req.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
             "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta")
    req.sse({"type": "message_stop"}, "message_stop")


@route("GET", r"^/v1/models/(?P<id>[^/?]+)")
def model_get(req: Request):
    req.api = "anthropic.models"
    mid = req.path.split("/v1/models/", 1)[1].split("?")[0]
    return req.send_json(200, {"type": "model", "id": mid, "display_name": mid,
                               "created_at": "2025-01-01T00:00:00Z"})


MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001"]


@route("GET", r"^/v1/models")
def models(req: Request):
    req.api = "anthropic.models"
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in MODELS]
    return req.send_json(200, {"data": data, "has_more": False, "first_id": MODELS[0],
                               "last_id": MODELS[-1]})


@route("GET", r"^/api/")
def api_get(req: Request):
    req.api = "anthropic.misc"
    return req.send_json(200, {})


@route("POST", r"^/api/")
def api_post(req: Request):
    req.api = "anthropic.misc"
    return req.send_json(200, {})
