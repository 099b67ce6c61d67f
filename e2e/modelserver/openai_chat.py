"""OpenAI Chat Completions (what aider talks to through litellm), offline.

POST /v1/chat/completions   streaming (SSE chat.completion.chunk ... [DONE]) and plain JSON
(GET /v1/models is served by openai_responses.py.)

aider has no tool calls: its "tool" is plain text.  In `tool` mode the reply
proposes a shell command in a ```bash block (aider then asks
"Run shell command?") and names a file that is not in the chat (aider asks
"Add file to the chat?").  Modes 429 / quota answer with OpenAI's real error
bodies and x-ratelimit-* headers.
"""
from __future__ import annotations

import time
import uuid

from . import core
from .core import Request, route

QUOTA_MSG = ("You exceeded your current quota, please check your plan and billing details. "
             "For more information on this error, read the docs: "
             "https://platform.openai.com/docs/guides/error-codes/api-errors.")


def _rate_msg(reset_s: int) -> str:
    return ("Rate limit reached for gpt-4o in organization org-e2e on requests per min (RPM): "
            f"Limit 3, Used 3, Requested 1. Please try again in {reset_s}s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.")

# aider's system/reminder texts arrive as role=system; its repo map and
# "I added these files" turns arrive as user/assistant pairs: keep the user
# texts that are not aider's own scaffolding.
_SCAFFOLD_PREFIXES = ("Here are summaries of some files", "I have *added these files",
                      "I am not sharing any files", "I spotted these files",
                      "Here are the files", "I switched to a new code base")


def _texts(body: dict) -> list[str]:
    out = []
    for m in body.get("messages") or []:
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        for t in core.text_of_content(m.get("content")):
            if not t.lstrip().startswith(_SCAFFOLD_PREFIXES):
                out.append(t)
    return out


def _usage(req: Request, out_tokens: int) -> dict:
    u = core.usage_for(req.user_texts, req.body_size)
    usage = {
        "prompt_tokens": u["input"],
        "completion_tokens": out_tokens,
        "total_tokens": u["input"] + out_tokens,
        "prompt_tokens_details": {"cached_tokens": u["cache_read"], "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }
    req.usage = usage
    return usage


def _limit_headers() -> dict:
    return {
        "retry-after": str(core.retry_after()),
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{core.retry_after()}s",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "28774",
        "x-ratelimit-reset-tokens": "2.452s",
        "x-request-id": "req_e2e_" + uuid.uuid4().hex[:16],
    }


def _tool_text(texts: list[str]) -> str:
    return ("To do that, run this command:\n\n"
            f"```bash\n{core.TOOL_COMMAND}\n```\n\n"
            f"Then I would also need to edit `{core.TOOL_FILE}`; please add it to the chat.")


def _reply(req: Request, body: dict) -> str:
    mode = req.mode
    # the last message is the user's; aider's follow-ups after a shell command
    # ("I ran this command: ...") also come as user messages
    last = req.user_texts[-1] if req.user_texts else ""
    if mode == "tool" and not last.lstrip().startswith(("I ran this command", "I added these")):
        return _tool_text(req.user_texts)
    text = core.reply_text_for(req.user_texts)
    if mode == "slow":
        text = "Thinking slowly, one word at a time, so the busy UI shows: " + text
    return text


@route("POST", r"^/v1/chat/completions(\?.*)?$")
def chat_completions(req: Request):
    req.api = "openai.chat"
    body = req.json or {}
    req.model = body.get("model")
    req.user_texts = _texts(body)
    stream = bool(body.get("stream"))
    req.extra = {"stream": stream}
    mode = req.mode
    if mode == "429":
        return req.send_json(429, {"error": {"message": _rate_msg(core.retry_after()), "type": "requests",
                                             "param": None, "code": "rate_limit_exceeded"}},
                             _limit_headers())
    if mode == "quota":
        return req.send_json(429, {"error": {"message": QUOTA_MSG, "type": "insufficient_quota",
                                             "param": None, "code": "insufficient_quota"}},
                             {"x-request-id": "req_e2e_" + uuid.uuid4().hex[:16]})
    text = _reply(req, body)
    out_tokens = max(5, len(text) // 4)
    usage = _usage(req, out_tokens)
    cid = "chatcmpl-e2e" + uuid.uuid4().hex[:20]
    model = req.model or "gpt-4o"
    created = int(time.time())
    fp = "fp_e2e0001"
    if not stream:
        if mode == "hang":
            return core.hang(req)
        if mode == "slow":
            time.sleep(core.SLOW_SECONDS)
        return req.send_json(200, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": fp,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                 "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage}, {"x-request-id": "req_e2e_" + uuid.uuid4().hex[:16]})

    req.start_sse(200, {"x-request-id": "req_e2e_" + uuid.uuid4().hex[:16]})
    def chunk(delta, finish=None, **kw):
        return dict({"id": cid, "object": "chat.completion.chunk", "created": created,
                     "model": model, "system_fingerprint": fp,
                     "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                  "finish_reason": finish}]}, **kw)
    if not req.sse(chunk({"role": "assistant", "content": "", "refusal": None})):
        return
    if mode == "hang":
        return core.hang(req)
    # split on spaces but keep newlines inside pieces so fenced blocks survive
    words = text.split(" ")
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    delay = core.SLOW_SECONDS / max(1, len(pieces)) if mode == "slow" else 0.0
    for p in pieces:
        if not req.sse(chunk({"content": p})):
            return
        if delay:
            time.sleep(delay)
    req.sse(chunk({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        req.sse({"id": cid, "object": "chat.completion.chunk", "created": created,
                 "model": model, "system_fingerprint": fp, "choices": [], "usage": usage})
    req.sse("[DONE]")
