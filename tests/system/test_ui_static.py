"""test_ui_static.py - the dashboard's files as the api serves them (the
browser test is tests/ui/run): embedded bytes equal the sources, the
Content-Security-Policy and the other headers, no auth for the files while
/v1 still needs a token, /ui redirects, unknown files are 404, and the
page's code never hands data to innerHTML or inline handlers.
"""
import http.client
import os
import re
import tempfile
import unittest

import harness
from harness import start_api, stop_api

http_req = harness.http

UI_DIR = os.path.join(harness.SOURCE_DIR, "services", "api", "ui")


class UiStaticTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = harness.RedisServer()
        cls.tmp = tempfile.mkdtemp(prefix="jm-ui-")
        tokens = os.path.join(cls.tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("ui-token\n")
        cls.api, cls.base = start_api(cls.redis.url, env={"JOBMILL_API_TOKENS_FILE": tokens})

    @classmethod
    def tearDownClass(cls):
        stop_api(cls.api, cls.redis)

    def test_every_file_is_served_as_written_with_a_strict_csp_and_no_auth(self):
        names = sorted(os.listdir(UI_DIR))
        self.assertEqual(names, ["app.css", "app.js", "index.html"])
        types = {"app.css": "text/css", "app.js": "text/javascript", "index.html": "text/html"}
        for name in names:
            with self.subTest(name=name):
                path = "/ui/" if name == "index.html" else "/ui/" + name
                st, h, body = http_req("GET", self.base + path, raw=True)
                self.assertEqual(st, 200)
                with open(os.path.join(UI_DIR, name), encoding="utf-8") as f:
                    self.assertEqual(body, f.read())
                self.assertTrue(h["content-type"].startswith(types[name]), h)
                csp = h["content-security-policy"]
                self.assertIn("default-src 'none'", csp)
                self.assertIn("script-src 'self'", csp)
                self.assertNotIn("unsafe-inline", csp)
                self.assertNotIn("unsafe-eval", csp)
                self.assertEqual(h["x-content-type-options"], "nosniff")
                self.assertEqual(h["x-frame-options"], "DENY")
        # the data still needs the token
        self.assertEqual(http_req("GET", self.base + "/v1/queues")[0], 401)
        st, _, _ = http_req("GET", self.base + "/v1/queues",
                        headers={"Authorization": "Bearer ui-token"})
        self.assertEqual(st, 200)

    def test_redirect_and_unknown_files(self):
        c = http.client.HTTPConnection("127.0.0.1", int(self.base.rsplit(":", 1)[1]), timeout=10)
        c.request("GET", "/ui")
        r = c.getresponse()
        r.read()
        self.assertEqual((r.status, r.getheader("Location")), (301, "ui/"))
        c.close()
        for path in ("/ui/nope.js", "/ui/..%2F..%2Fetc%2Fpasswd", "/ui/app.js/x"):
            with self.subTest(path=path):
                st, _, body = http_req("GET", self.base + path)
                # an encoded slash is refused before routing (400, docs/api.md)
                self.assertEqual(st, 400 if "%2F" in path else 404, body)
        self.assertEqual(http_req("POST", self.base + "/ui/app.js", b"")[0], 405)

    def test_the_page_builds_its_dom_from_text_only(self):
        with open(os.path.join(UI_DIR, "app.js"), encoding="utf-8") as f:
            js = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)  # code, not comments
        for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                    "new Function", "javascript:"):
            self.assertNotIn(bad, js)
        with open(os.path.join(UI_DIR, "index.html"), encoding="utf-8") as f:
            html = f.read()
        self.assertIsNone(re.search(r"<script>|<script(?![^>]*\bsrc=)|\son\w+=|style=", html))
        self.assertNotRegex(html + js, r"https?://(?!www\.w3\.org/2000/svg)")


if __name__ == "__main__":
    unittest.main()
