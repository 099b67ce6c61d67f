"""Light tests of the e2e model server (not part of `make test`).

Run: python -m pytest e2e/tests -q   (or python -m unittest e2e.tests.test_modelserver)
"""
import json
import unittest

from e2e.tests.server_case import ModelServerCase


class ModelServerTest(ModelServerCase):
    def last_log(self, path="/v1/messages"):
        import time
        for _ in range(40):  # the server logs after it has answered
            with open(self.log) as f:
                rec = json.loads(f.readlines()[-1])
            if rec["path"] == path:
                return rec
            time.sleep(0.05)
        return rec

    def test_anthropic_text_and_usage(self):
        self.mode("text")
        st, _, body = self.post("/v1/messages", {"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]}]})
        self.assertEqual(st, 200)
        msg = json.loads(body)
        self.assertEqual(msg["content"][0]["text"], "OK: hello there")
        self.assertGreater(msg["usage"]["input_tokens"], 0)
        rec = self.last_log()
        self.assertEqual(rec["user_texts"], ["hello there"])
        self.assertEqual(rec["usage"], msg["usage"])

    def test_user_texts_hashed_in_full_and_unwrapped(self):
        import hashlib
        big = "line\n" * 100
        wrapped = f'\n\n<pasted_content id="ab12">\n{big}\n</pasted_content id="ab12">\n'
        self.mode("text")
        self.post("/v1/messages", {"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": wrapped}]}]})
        rec = self.last_log()
        sha = lambda t: hashlib.sha256(t.encode()).hexdigest()  # noqa: E731
        self.assertEqual(rec["user_text_sha256"], [sha(wrapped)])
        self.assertEqual(rec["user_text_sha256_unwrapped"], [sha(big)])
        self.assertTrue(rec["user_texts"][0].endswith(f"...[{len(wrapped)} chars]"))

    def test_chat_429_takes_retry_after_from_the_control_dir(self):
        self.post("/_control", {"mode": "429", "retry_after": 3})
        st, h, body = self.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [
            {"role": "user", "content": "x"}]})
        self.assertEqual(st, 429)
        self.assertEqual({k.lower(): v for k, v in h.items()}["retry-after"], "3")
        self.assertIn("Please try again in 3s", body)
        self.post("/_control", {"mode": "text", "retry_after": 20})

    def test_anthropic_stream_tool(self):
        self.mode("tool")
        st, _, body = self.post("/v1/messages", {"model": "m", "stream": True,
                                                 "tools": [{"name": "Bash"}],
                                                 "messages": [{"role": "user", "content": "x"}]})
        self.assertEqual(st, 200)
        self.assertIn('"name": "Bash"', body)
        self.assertIn("event: message_stop", body)
        self.mode("text")

    def test_limits(self):
        self.mode("429")
        st, h, body = self.post("/v1/messages", {"messages": []})
        self.assertEqual(st, 429)
        self.assertIn("retry-after", {k.lower() for k in h})
        self.assertIn("rate_limit_error", body)
        st, h, body = self.post("/v1/responses", {"input": "x"})
        self.assertEqual(st, 429)
        self.assertIn("x-ratelimit-reset-requests", {k.lower() for k in h})
        self.mode("quota")
        st, _, body = self.post("/v1/messages", {"messages": []})
        self.assertEqual(st, 400)
        self.assertIn("credit balance is too low", body)
        st, _, body = self.post("/v1/responses", {"input": "x"})
        self.assertIn("insufficient_quota", body)
        self.mode("text")

    def test_responses_stream(self):
        self.mode("text")
        st, _, body = self.post("/v1/responses", {"model": "gpt-5", "stream": True, "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi codex"}]}]})
        self.assertEqual(st, 200)
        self.assertIn("response.output_text.delta", body)
        self.assertIn("OK: hi codex", body)
        self.assertIn('"type": "response.completed"', body)


if __name__ == "__main__":
    unittest.main()
