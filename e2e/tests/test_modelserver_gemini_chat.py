"""Light tests of the Gemini and Chat Completions routes of the e2e model server.

Run: python -m unittest e2e.tests.test_modelserver_gemini_chat
"""
import json
import unittest

from e2e.tests.server_case import ModelServerCase


class GeminiChatTest(ModelServerCase):
    GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
    STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    USER = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
            "tools": [{"functionDeclarations": [{"name": "run_shell_command"}]}]}

    def test_gemini_text_stream_and_usage(self):
        self.mode("text")
        st, _, body = self.post(self.STREAM, self.USER)
        self.assertEqual(st, 200)
        events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
        text = "".join(p["text"] for e in events for p in e["candidates"][0]["content"]["parts"])
        self.assertEqual(text, "OK: hello there")
        last = events[-1]
        self.assertEqual(last["candidates"][0]["finishReason"], "STOP")
        self.assertGreater(last["usageMetadata"]["promptTokenCount"], 0)

    def test_gemini_tool_call_then_done(self):
        self.mode("tool")
        st, _, body = self.post(self.GEN, self.USER)
        part = json.loads(body)["candidates"][0]["content"]["parts"][0]
        self.assertEqual(part["functionCall"]["name"], "run_shell_command")
        after = dict(self.USER, contents=self.USER["contents"] + [
            {"role": "model", "parts": [part]},
            {"role": "user", "parts": [{"functionResponse": {"name": "run_shell_command",
                                                             "response": {"output": ""}}}]}])
        st, _, body = self.post(self.GEN, after)
        self.assertEqual(json.loads(body)["candidates"][0]["content"]["parts"][0]["text"],
                         "Done: the command ran.")

    def test_gemini_json_side_call(self):
        self.mode("text")
        body = {"contents": self.USER["contents"], "generationConfig": {
            "responseMimeType": "application/json", "responseJsonSchema": {
                "type": "object", "properties": {
                    "reasoning": {"type": "string"},
                    "model_choice": {"type": "string", "enum": ["pro", "flash"]}}}}}
        st, _, out = self.post(self.GEN, body)
        obj = json.loads(json.loads(out)["candidates"][0]["content"]["parts"][0]["text"])
        self.assertEqual(obj["model_choice"], "flash")

    def test_gemini_429_and_quota(self):
        self.mode("429")
        st, _, body = self.post(self.GEN, self.USER)
        err = json.loads(body)["error"]
        self.assertEqual((st, err["status"]), (429, "RESOURCE_EXHAUSTED"))
        retry = [d for d in err["details"] if d["@type"].endswith("RetryInfo")]
        self.assertEqual(retry[0]["retryDelay"], "27s")
        self.mode("quota")
        st, _, body = self.post(self.GEN, self.USER)
        quota = json.loads(body)["error"]["details"][0]["violations"][0]["quotaId"]
        self.assertIn("PerDay", quota)
        self.mode("text")

    CHAT = "/v1/chat/completions"
    MSGS = {"model": "gpt-4o", "messages": [{"role": "system", "content": "sys"},
                                            {"role": "user", "content": "hello there"}]}

    def test_chat_plain_and_stream_usage(self):
        self.mode("text")
        st, _, body = self.post(self.CHAT, self.MSGS)
        msg = json.loads(body)
        self.assertEqual(msg["choices"][0]["message"]["content"], "OK: hello there")
        self.assertGreater(msg["usage"]["prompt_tokens"], 0)
        st, _, body = self.post(self.CHAT, dict(self.MSGS, stream=True,
                                                stream_options={"include_usage": True}))
        datas = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
        self.assertEqual(datas[-1], "[DONE]")
        chunks = [json.loads(d) for d in datas[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        self.assertEqual(text, "OK: hello there")
        self.assertIn("usage", chunks[-1])

    def test_chat_tool_mode_proposes_a_shell_command(self):
        self.mode("tool")
        st, _, body = self.post(self.CHAT, self.MSGS)
        self.assertIn("```bash\ntouch e2e-tool-ran\n```",
                      json.loads(body)["choices"][0]["message"]["content"])
        self.mode("text")

    def test_chat_limits(self):
        self.mode("429")
        st, headers, body = self.post(self.CHAT, self.MSGS)
        self.assertEqual((st, json.loads(body)["error"]["code"]), (429, "rate_limit_exceeded"))
        self.assertEqual(headers.get("x-ratelimit-reset-requests"), "20s")
        self.mode("quota")
        st, _, body = self.post(self.CHAT, self.MSGS)
        self.assertEqual(json.loads(body)["error"]["code"], "insufficient_quota")
        self.mode("text")


if __name__ == "__main__":
    unittest.main()
