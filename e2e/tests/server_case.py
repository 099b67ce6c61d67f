"""The fixture both model-server test modules share: a server on a free port for the class, and
a way to post JSON to it and switch its mode."""
import json
import os
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

from e2e.modelserver.core import make_server


class ModelServerCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.log = os.path.join(cls.dir, "log.jsonl")
        cls.srv = make_server(0, cls.log, os.path.join(cls.dir, "ctl"))
        cls.url = f"http://127.0.0.1:{cls.srv.server_address[1]}"
        threading.Thread(target=cls.srv.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, json.dumps(body).encode(),
                                     {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def mode(self, m):
        self.assertEqual(self.post("/_control", {"mode": m})[0], 200)
