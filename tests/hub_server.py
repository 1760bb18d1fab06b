"""A stand-in for the Hub's HTTP API on 127.0.0.1, for push tests that must not reach the network.

It answers the calls `huggingface_hub.HfApi` makes to push a folder (whoami, create a repo, create a branch, the
model card's metadata check, the preupload check, the commit) and records each request; files are accepted as
"regular" (base64 inside the commit), so the commit request carries every byte. Any other request gets 404 and is
recorded too.

    with StandInHub(token="hf_test") as server:       # HF_ENDPOINT=server.endpoint, HF_TOKEN=hf_test
        ...
        server.commits[0]["files"]                   # {path in repo: bytes}; a Space's repo_id: "spaces/USER/NAME"
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

USER = "tester"


class StandInHub:
    def __init__(self, token: str = "hf_test"):
        self.token = token
        self.requests: list[tuple[str, str]] = []
        self.repos: dict[str, dict] = {}  # model repos
        self.spaces: dict[str, dict] = {}  # Space repos: {"private", "sdk"}
        self.branches: list[tuple[str, str]] = []
        self.commits: list[dict] = []
        self.validated_cards: list = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> StandInHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------------------------------------ routes
    def _route(self, method: str, path: str, headers, body: bytes):
        self.requests.append((method, path))
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "Invalid credentials in Authorization header"}
        if method == "GET" and path == "/api/whoami-v2":
            return 200, {"type": "user", "name": USER, "auth": {"accessToken": {"role": "write"}}}
        if method == "POST" and path == "/api/repos/create":
            settings = json.loads(body)
            repo_id = f"{settings.get('organization') or USER}/{settings['name']}"
            # huggingface_hub 1.x sends `private`, 2.x `visibility`.
            private = settings.get("private") is True or settings.get("visibility") == "private"
            if settings.get("type") == "space":
                self.spaces[repo_id] = {"private": private, "sdk": settings.get("sdk")}
            else:
                self.repos[repo_id] = {"private": private}
            return 200, {"url": f"{self.endpoint}/{repo_id}", "name": repo_id}
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body)["content"])
        match = re.fullmatch(r"/api/(models|spaces)/([^/]+/[^/]+)/(branch|preupload|commit)/(.+)", path.split("?")[0])
        if method == "POST" and match:
            kind, repo_id, action, revision = match.groups()
            return getattr(self, f"_{action}")(repo_id if kind == "models" else f"spaces/{repo_id}", revision, body)
        return 404, {"error": f"the stand-in Hub does not serve {method} {path}"}

    def _validate_yaml(self, content: str):
        """The card's metadata must be a YAML mapping (the real Hub checks more: model-index, licences)."""
        metadata = yaml.safe_load(content.split("---")[1]) if content.startswith("---") else None
        self.validated_cards.append(metadata)
        if not isinstance(metadata, dict):
            return 400, {"errors": [{"message": "no YAML metadata block"}]}
        return 200, {"errors": [], "warnings": []}

    def _branch(self, repo_id, revision, body):
        self.branches.append((repo_id, revision))
        return 200, {}

    def _preupload(self, repo_id, revision, body):
        files = json.loads(body)["files"]
        return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}

    def _commit(self, repo_id, revision, body):
        header, files, other = None, {}, []
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                header = item["value"]
            elif item["key"] == "file" and item["value"].get("encoding") == "base64":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            else:
                other.append(item)
        self.commits.append({"repo_id": repo_id, "revision": revision, "header": header, "files": files,
                             "other": other})  # fmt: skip
        oid = f"{len(self.commits):040x}"
        return 200, {"commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                # A route answers (status, JSON payload) or (status, payload, extra headers); bytes are a file.
                status, payload, *extra = hub._route(method, self.path, headers, body)
                is_file = isinstance(payload, bytes)
                data = payload if is_file else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/octet-stream" if is_file else "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def do_HEAD(self):
                self._answer("HEAD")

            def log_message(self, *args):  # quiet
                pass

        return Handler
