"""Gemini API (generativelanguage v1beta, what Gemini CLI talks to), offline.

POST /v1beta/models/<model>:generateContent          plain JSON
POST /v1beta/models/<model>:streamGenerateContent?alt=sse   SSE, one GenerateContentResponse per event
POST /v1beta/models/<model>:countTokens               {"totalTokens": N}
GET  /v1beta/models[/<model>]                         model list / one model

Gemini CLI (API-key auth) sends these with `x-goog-api-key` to
GOOGLE_GEMINI_BASE_URL.  Modes: text, tool (a run_shell_command functionCall,
which makes the CLI ask permission), 429 (per-minute RESOURCE_EXHAUSTED with a
RetryInfo retryDelay), quota (per-day RESOURCE_EXHAUSTED), hang, slow.
Side requests that ask for JSON (the CLI's next-speaker check, model router)
get a schema-shaped JSON answer instead of prose.
"""
from __future__ import annotations

import json
import re
import time
import uuid

from . import core
from .core import Request, route

RATE_DELAY_S = 27
MODEL_VERSION = "gemini-2.5-flash"
MODELS = ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
          "gemini-3-pro-preview", "gemini-3-flash-preview"]

# Gemini CLI prepends environment/context turns as "user" contents; skip them.
_CONTEXT_PREFIXES = ("<session_context>", "This is the Gemini CLI", "<state_snapshot>",
                     "<environment_context>", "<system-reminder>")


def _model_of(path: str) -> str:
    m = re.match(r"^/v1(?:beta|alpha)?/models/([^:/?]+)", path)
    return m.group(1) if m else MODEL_VERSION


def _texts(body: dict) -> list[str]:
    out = []
    for c in body.get("contents") or []:
        if not isinstance(c, dict) or c.get("role") not in (None, "user"):
            continue
        for p in c.get("parts") or []:
            t = p.get("text") if isinstance(p, dict) else None
            if isinstance(t, str) and not t.lstrip().startswith(_CONTEXT_PREFIXES):
                out.append(t)
    return out


def _last_is_function_response(body: dict) -> bool:
    contents = body.get("contents") or []
    if not contents or not isinstance(contents[-1], dict):
        return False
    return any(isinstance(p, dict) and "functionResponse" in p
               for p in contents[-1].get("parts") or [])


def _tool_names(body: dict) -> list[str]:
    names = []
    for t in body.get("tools") or []:
        for fd in (t or {}).get("functionDeclarations") or []:
            if isinstance(fd, dict) and fd.get("name"):
                names.append(fd["name"])
    return names


def _json_schema(body: dict):
    gc = body.get("generationConfig") or body.get("config") or {}
    if gc.get("responseMimeType") == "application/json":
        return gc.get("responseJsonSchema") or gc.get("responseSchema") or {}
    return None


def _fill(schema: dict, key: str = ""):
    """A plausible value for a JSON schema (enough for the CLI's side calls)."""
    if not isinstance(schema, dict):
        return "e2e"
    t = str(schema.get("type", "object")).lower()
    if "enum" in schema and schema["enum"]:
        enum = schema["enum"]
        if key == "next_speaker" and "user" in enum:
            return "user"
        if key == "model_choice" and "flash" in enum:
            return "flash"
        return enum[0]
    if t == "object":
        props = schema.get("properties") or {}
        return {k: _fill(v, k) for k, v in props.items()}
    if t == "array":
        return []
    if t in ("integer", "number"):
        return 1
    if t == "boolean":
        return False
    if key == "next_speaker":
        return "user"
    if key == "model_choice":
        return "flash"
    return "e2e: " + key


def _usage(req: Request, out_tokens: int) -> dict:
    u = core.usage_for(req.user_texts, req.body_size)
    meta = {
        "promptTokenCount": u["input"],
        "candidatesTokenCount": out_tokens,
        "totalTokenCount": u["input"] + out_tokens + 24,
        "thoughtsTokenCount": 24,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u["input"]}],
    }
    if u["cache_read"]:
        meta["cachedContentTokenCount"] = u["cache_read"]
        meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": u["cache_read"]}]
    req.usage = meta
    return meta


def _resource_exhausted(model: str, daily: bool) -> dict:
    if daily:
        metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
        quota_id = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        limit, delay = "250", "20412s"
    else:
        metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
        quota_id = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
        limit, delay = "10", f"{RATE_DELAY_S}s"
    retry_in = "5h40m12.337s" if daily else f"{RATE_DELAY_S}.418791237s"
    msg = ("You exceeded your current quota, please check your plan and billing details. "
           "For more information on this error, head to: "
           "https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, "
           "head to: https://ai.dev/usage?tab=rate-limit. \n"
           f"* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}\n"
           f"Please retry in {retry_in}.")
    return {"error": {
        "code": 429,
        "message": msg,
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
             "violations": [{"quotaMetric": metric, "quotaId": quota_id,
                             "quotaDimensions": {"location": "global", "model": model},
                             "quotaValue": limit}]},
            {"@type": "type.googleapis.com/google.rpc.Help",
             "links": [{"description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
        ]}}


def _candidate(parts: list[dict], finish: str | None) -> dict:
    c = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        c["finishReason"] = finish
    return c


def _plan(req: Request, body: dict):
    """(parts, out_tokens) of the reply for this request."""
    schema = _json_schema(body)
    if schema is not None:
        text = json.dumps(_fill(schema))
        req.extra["json_side_call"] = True
        return [{"text": text}], 12
    mode = req.mode
    if mode == "tool" and not _last_is_function_response(body):
        names = _tool_names(body)
        if "run_shell_command" in names:
            call = {"name": "run_shell_command",
                    "args": {"command": core.TOOL_COMMAND,
                             "description": "Create the e2e marker file."}}
        elif "write_file" in names:
            call = {"name": "write_file",
                    "args": {"file_path": core.TOOL_FILE, "content": "written by e2e\n"}}
        else:
            call = None
        if call:
            req.extra["function_call"] = call["name"]
            return [{"functionCall": call}], 21
    text = core.reply_text_for(req.user_texts)
    if _last_is_function_response(body):
        text = "Done: the command ran."
    if mode == "slow":
        text = "Thinking slowly, one word at a time, so the busy UI shows: " + text
    return [{"text": text}], 17


@route("POST", r"^/v1(?:beta|alpha)?/models/[^:/?]+:(?:stream)?[gG]enerateContent")
def generate(req: Request):
    req.api = "gemini"
    body = req.json or {}
    model = _model_of(req.path)
    req.model = model
    req.user_texts = _texts(body)
    stream = ":streamGenerateContent" in req.path
    req.extra = {"stream": stream, "tools": len(_tool_names(body))}
    mode = req.mode
    if mode in ("429", "quota"):
        return req.send_json(429, _resource_exhausted(model, daily=(mode == "quota")))
    parts, out_tokens = _plan(req, body)
    usage = _usage(req, out_tokens)
    resp_id = uuid.uuid4().hex[:22]
    base = {"modelVersion": model, "responseId": resp_id}
    if not stream:
        if mode == "hang":
            return core.hang(req)
        if mode == "slow":
            time.sleep(core.SLOW_SECONDS)
        return req.send_json(200, dict(base, candidates=[_candidate(parts, "STOP")],
                                       usageMetadata=usage))
    req.start_sse(200)
    if mode == "hang":
        return core.hang(req)
    chunks = []
    if "text" in parts[0]:
        words = parts[0]["text"].split(" ")
        n = 8 if mode == "slow" else 2
        step = max(1, -(-len(words) // n))
        groups = [" ".join(words[i:i + step]) for i in range(0, len(words), step)]
        for i, g in enumerate(groups):
            chunks.append([{"text": g if i == 0 else " " + g}])
    else:
        chunks.append(parts)
    delay = core.SLOW_SECONDS / max(1, len(chunks)) if mode == "slow" else 0.0
    for i, p in enumerate(chunks):
        last = i == len(chunks) - 1
        ev = dict(base, candidates=[_candidate(p, "STOP" if last else None)])
        # every real chunk carries usageMetadata; the last has the final figures
        ev["usageMetadata"] = usage if last else {
            "promptTokenCount": usage["promptTokenCount"],
            "totalTokenCount": usage["promptTokenCount"],
            "promptTokensDetails": usage["promptTokensDetails"]}
        if delay:
            time.sleep(delay)
        if not req.sse(ev):
            return


@route("POST", r"^/v1(?:beta|alpha)?/models/[^:/?]+:countTokens")
def count_tokens(req: Request):
    req.api = "gemini.countTokens"
    body = req.json or {}
    req.model = _model_of(req.path)
    req.user_texts = _texts(body)
    n = core.usage_for(req.user_texts, req.body_size)["input"]
    return req.send_json(200, {"totalTokens": n,
                               "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]})


def _model_obj(name: str) -> dict:
    return {"name": f"models/{name}", "version": "001", "displayName": name,
            "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1, "topP": 0.95, "topK": 64, "thinking": True}


@route("GET", r"^/v1(?:beta|alpha)?/models/[^:/?]+")
def get_model(req: Request):
    req.api = "gemini.models"
    name = _model_of(req.path)
    req.model = name
    return req.send_json(200, _model_obj(name))


@route("GET", r"^/v1(?:beta|alpha)?/models(\?.*)?$")
def list_models(req: Request):
    req.api = "gemini.models"
    return req.send_json(200, {"models": [_model_obj(m) for m in MODELS]})
