"""OpenAI Responses API (what Codex talks to), offline.

POST /v1/responses   streaming SSE (response.created ... response.completed) and plain JSON
GET  /v1/models      a small model list (Codex may refresh it at start-up)
"""
from __future__ import annotations

import json
import time
import uuid

from . import core
from .core import Request, route

QUOTA_MSG = ("You exceeded your current quota, please check your plan and billing details. "
             "For more information on this error, read the docs: "
             "https://platform.openai.com/docs/guides/error-codes/api-errors.")
RATE_MSG = ("Rate limit reached for gpt-5 in organization org-e2e on tokens per min (TPM): "
            "Limit 30000, Used 30000, Requested 1200. Please try again in 20s.")


def _texts(body: dict) -> list[str]:
    out = []
    inp = body.get("input")
    if isinstance(inp, str):
        return [inp]
    for item in inp or []:
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        for t in core.text_of_content(item.get("content")):
            # Codex injects <environment_context>/<user_instructions> as user items
            if t.lstrip().startswith(("<environment_context>", "<user_instructions>",
                                      "# AGENTS.md", "<permissions")):
                continue
            out.append(t)
    return out


def _last_is_tool_output(body: dict) -> bool:
    inp = body.get("input")
    if not isinstance(inp, list) or not inp:
        return False
    return isinstance(inp[-1], dict) and inp[-1].get("type", "").endswith("call_output")


def _tool_call(body: dict) -> dict | None:
    """A function_call item for whatever shell-ish tool the client offers."""
    tools = {}
    for t in body.get("tools") or []:
        if isinstance(t, dict):
            tools[t.get("name") or t.get("type")] = t
    call_id = "call_e2e_" + uuid.uuid4().hex[:12]
    cmd = core.TOOL_COMMAND
    if "shell_command" in tools:
        name, args = "shell_command", {"command": cmd}
    elif "exec_command" in tools:
        # require_escalated makes Codex ask for approval even inside its sandbox
        name, args = "exec_command", {"cmd": cmd, "sandbox_permissions": "require_escalated",
                                      "justification": "Create the e2e marker file?"}
    elif "shell" in tools:
        name, args = "shell", {"command": ["bash", "-lc", cmd]}
    elif "local_shell" in tools:
        return {"type": "local_shell_call", "id": "lsh_" + call_id, "call_id": call_id,
                "status": "completed",
                "action": {"type": "exec", "command": ["bash", "-lc", cmd]}}
    else:
        return None
    return {"type": "function_call", "id": "fc_" + call_id, "call_id": call_id,
            "name": name, "arguments": json.dumps(args), "status": "completed"}


def _usage(req: Request) -> dict:
    u = core.usage_for(req.user_texts, req.body_size)
    usage = {
        "input_tokens": u["input"],
        "input_tokens_details": {"cached_tokens": u["cache_read"]},
        "output_tokens": u["output"],
        "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": u["input"] + u["output"],
    }
    req.usage = usage
    return usage


def _limit_headers(reset_in: int | None = None) -> dict:
    reset_in = core.retry_after() if reset_in is None else reset_in
    return {
        "retry-after": str(reset_in),
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{reset_in}s",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": f"{reset_in}s",
        "x-request-id": "req_e2e_" + uuid.uuid4().hex[:16],
    }


@route("POST", r"^/v1/responses(\?.*)?$")
def responses(req: Request):
    req.api = "openai.responses"
    body = req.json or {}
    req.model = body.get("model")
    req.user_texts = _texts(body)
    tools = [t.get("name") or t.get("type") for t in body.get("tools") or []
             if isinstance(t, dict)]
    req.extra = {"stream": bool(body.get("stream")), "tools": tools}
    mode = req.mode
    if mode == "429":
        return req.send_json(429, {"error": {"message": RATE_MSG, "type": "requests",
                                             "param": None, "code": "rate_limit_exceeded"}},
                             _limit_headers())
    if mode == "quota":
        return req.send_json(429, {"error": {"message": QUOTA_MSG, "type": "insufficient_quota",
                                             "param": None, "code": "insufficient_quota"}},
                             {"x-request-id": "req_e2e_" + uuid.uuid4().hex[:16]})
    items = []
    if mode == "tool" and not _last_is_tool_output(body):
        call = _tool_call(body)
        if call:
            items.append(call)
    text = None
    if not items:
        text = core.reply_text_for(req.user_texts)
        if _last_is_tool_output(body):
            text = "Done: the command ran."
        if mode == "slow":
            text = "Thinking slowly, one word at a time, so the busy UI shows: " + text
    usage = _usage(req)
    resp_id = "resp_e2e_" + uuid.uuid4().hex[:20]
    model = req.model or "gpt-5"
    msg_id = "msg_e2e_" + uuid.uuid4().hex[:12]
    msg_item = None
    if text is not None:
        msg_item = {"type": "message", "id": msg_id, "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}
        items.append(msg_item)
    base = {"id": resp_id, "object": "response", "created_at": int(time.time()),
            "model": model, "status": "in_progress", "output": []}
    if not body.get("stream"):
        if mode == "hang":
            return core.hang(req)
        if mode == "slow":
            time.sleep(core.SLOW_SECONDS)
        return req.send_json(200, dict(base, status="completed", output=items, usage=usage))

    req.start_sse(200, {"x-request-id": "req_e2e_" + uuid.uuid4().hex[:16]})
    seq = iter(range(1_000_000))
    def ev(name, data):
        data = dict(data, type=name, sequence_number=next(seq))
        return req.sse(data, name)
    ev("response.created", {"response": base})
    ev("response.in_progress", {"response": base})
    if mode == "hang":
        return core.hang(req)
    pieces = []
    for idx, it in enumerate(items):
        if it["type"] == "message":
            words = it["content"][0]["text"].split(" ")
            pieces.append(("response.output_item.added",
                           {"output_index": idx, "item": dict(it, status="in_progress",
                                                              content=[])}))
            pieces.append(("response.content_part.added",
                           {"output_index": idx, "item_id": it["id"], "content_index": 0,
                            "part": {"type": "output_text", "text": "", "annotations": []}}))
            for j, w in enumerate(words):
                pieces.append(("response.output_text.delta",
                               {"output_index": idx, "item_id": it["id"], "content_index": 0,
                                "delta": w if j == 0 else " " + w}))
            pieces.append(("response.output_text.done",
                           {"output_index": idx, "item_id": it["id"], "content_index": 0,
                            "text": it["content"][0]["text"]}))
            pieces.append(("response.content_part.done",
                           {"output_index": idx, "item_id": it["id"], "content_index": 0,
                            "part": it["content"][0]}))
        else:
            pieces.append(("response.output_item.added", {"output_index": idx, "item": it}))
        pieces.append(("response.output_item.done", {"output_index": idx, "item": it}))
    delay = core.SLOW_SECONDS / max(1, len(pieces)) if mode == "slow" else 0.0
    for name, data in pieces:
        if not ev(name, data):
            return
        if delay:
            time.sleep(delay)
    ev("response.completed", {"response": dict(base, status="completed", output=items,
                                               usage=usage)})


MODELS = ["gpt-5", "gpt-5-codex", "gpt-5.1-codex", "o4-mini"]


@route("GET", r"^/v1/models")
def models(req: Request):
    req.api = "openai.models"
    return req.send_json(200, {"object": "list", "data": [
        {"id": m, "object": "model", "created": 1735689600, "owned_by": "openai"}
        for m in MODELS]})
