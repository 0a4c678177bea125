"""Scraping an agent's Prometheus endpoint (--prometheus-serve-addr) from its node."""

import re
import subprocess

METRICS_PORT = 19962
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics_flag(port=METRICS_PORT):
    return f"--prometheus-serve-addr=127.0.0.1:{port}"


def http(agent, path="/metrics", method="GET", port=METRICS_PORT):
    """(status code, body) of a request to the agent's metrics port, made in its node."""
    r = subprocess.run(["nsenter", f"--net=/var/run/netns/{agent.node.netns}", "curl", "-s",
                        "-X", method, "-o", "-", "-w", "\n%{http_code}", "--max-time", "5",
                        f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, text=True, timeout=10)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def parse(text):
    """{(name, ((label, value), ...)): value}; checks every line is well formed."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            family, kind = line.split()[2:4]
            typed.add(family)
            if kind == "histogram":
                typed |= {family + "_bucket", family + "_sum", family + "_count"}
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"malformed sample line: {line!r}"
        name, labels, value = m.groups()
        assert name in typed, f"{name} has no # TYPE line before it"
        pairs = tuple(sorted((k, v.encode().decode("unicode_escape"))
                             for k, v in LABEL.findall(labels or "")))
        out[(name, pairs)] = float(value)
    return out


def scrape(agent, port=METRICS_PORT):
    code, body = http(agent, port=port)
    assert code == 200, f"GET /metrics: {code} {body[:200]}"
    return parse(body)


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))
