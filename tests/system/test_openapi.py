"""test_openapi.py - docs/openapi.yaml documents exactly the api's routes.

The route table is services/api/routes.c (one ROUTE("METHOD", "/path", ...)
per line); the document's paths and their methods are read with a line
scanner (no PyYAML on a fresh machine). Both sets must be equal, and equal to
what the built binary prints with its hidden --print-routes flag.
"""
import os
import re
import subprocess
import unittest

import harness

ROUTES_C = os.path.join(harness.SOURCE_DIR, "services", "api", "routes.c")
OPENAPI = os.path.join(harness.SOURCE_DIR, "docs", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def routes_from_source():
    with open(ROUTES_C) as f:
        src = f.read()
    return {(m, p) for m, p in re.findall(r'^\s*ROUTE\("([A-Z]+)",\s*"([^"]+)"', src, re.M)}


def routes_from_openapi():
    """Scans the `paths:` block: a path is a key indented once under it, a
    method a key indented once under a path."""
    out, in_paths, path, path_indent = set(), False, None, None
    with open(OPENAPI) as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            indent = len(line) - len(line.lstrip(" "))
            text = line.strip()
            if indent == 0:
                in_paths = text == "paths:"
                path = None
                continue
            if not in_paths:
                continue
            m = re.match(r"^(/[^:\s]*):\s*$", text)
            if m and (path_indent is None or indent == path_indent):
                path_indent, path = indent, m.group(1)
                continue
            m = re.match(r"^([a-z]+):", text)
            if path is not None and m and m.group(1) in METHODS and indent > path_indent:
                out.add((m.group(1).upper(), path))
    return out


class OpenApiTest(unittest.TestCase):
    def test_scanners_find_something(self):
        # guards the regexes themselves: an empty match would make the
        # comparison below vacuous
        self.assertGreaterEqual(len(routes_from_source()), 13)
        self.assertIn(("GET", "/v1/jobs/{id}"), routes_from_openapi())

    def test_openapi_paths_equal_the_route_table(self):
        src, doc = routes_from_source(), routes_from_openapi()
        self.assertEqual(sorted(doc - src), [], "documented but not routed")
        self.assertEqual(sorted(src - doc), [], "routed but not documented")

    def test_contract_routes_are_present(self):
        want = {("POST", "/v1/jobs"), ("POST", "/v1/jobs/batch"), ("GET", "/v1/jobs/{id}"),
                ("POST", "/v1/jobs/{id}/cancel"), ("POST", "/v1/jobs/{id}/retry"),
                ("GET", "/v1/queues"), ("POST", "/v1/queues/{queue}/pause"),
                ("POST", "/v1/queues/{queue}/resume"), ("GET", "/v1/queues/{queue}/jobs"),
                ("GET", "/v1/workers"), ("GET", "/healthz"), ("GET", "/readyz"),
                ("GET", "/metrics")}
        self.assertEqual(want - routes_from_source(), set())

    def test_path_parameters_are_declared(self):
        with open(OPENAPI) as f:
            doc = f.read()
        for _, path in routes_from_source():
            for name in re.findall(r"\{(\w+)\}", path):
                self.assertRegex(doc, r"name: %s\n\s+in: path" % name)

    def test_document_parses_when_pyyaml_is_there(self):
        try:
            import yaml  # noqa: PLC0415 - optional: not on a fresh machine
        except ImportError:
            self.skipTest("PyYAML not installed (the line scanner covers the routes)")
        with open(OPENAPI) as f:
            doc = yaml.safe_load(f)
        self.assertTrue(str(doc["openapi"]).startswith("3.0"))
        parsed = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops
                  if m in METHODS}
        self.assertEqual(parsed, routes_from_openapi())
        # every $ref resolves
        with open(OPENAPI) as f:
            text = f.read()
        for ref in set(re.findall(r"\$ref: '#/([^']+)'", text)):
            node = doc
            for part in ref.split("/"):
                self.assertIn(part, node, ref)
                node = node[part]

    def test_binary_prints_the_same_routes(self):
        binary = os.path.join(harness.BIN_DIR, "jobmill-api")
        if not os.path.exists(binary):
            self.skipTest("jobmill-api not built in %s" % harness.BIN_DIR)
        p = subprocess.run([binary, "--print-routes"], stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0)
        printed = {tuple(line.split(" ", 1)) for line in p.stdout.decode().splitlines() if line}
        self.assertEqual(printed, routes_from_source())


if __name__ == "__main__":
    unittest.main()
