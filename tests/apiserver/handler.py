"""The HTTP layer: one request in, one kube-apiserver-shaped response out.

Order of work for a request, as in the real server's filter chain: authentication (401),
statistics, fault injection, then routing: /_test/ admin, non-resource paths (/version,
discovery, health), resources (plain-text 404 for anything not routed).

Response framing follows Go's net/http over HTTP/1.1, which clients see:
  - every answer carries Audit-Id, Cache-Control: no-cache, private, Content-Type,
    the priority-and-fairness X-Kubernetes-Pf-* ids and Date (no Server header);
  - a body up to 2 KiB gets Content-Length; a larger one is sent chunked (Go stops
    buffering there), gzip-encoded above 128 KiB when the client accepts gzip, as the
    apiserver's response compression does; watches are always chunked, one chunk per event;
  - connections are kept alive between requests.
"""

import gzip
import hmac
import json
import socket
import ssl
import sys
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import admin
import discovery
import listing
import listoptions
import render
import resources
import wire
from watch import Stream
from wire import ApiError

CHUNK_THRESHOLD = 2048          # Go's http.Server buffers this much before chunking
GZIP_THRESHOLD = 128 * 1024     # k8s.io/apiserver defaultGzipThresholdBytes
FLOWSCHEMA_UID = str(uuid.uuid4())
PRIORITY_LEVEL_UID = str(uuid.uuid4())


class Reset(Exception):
    """Close the connection without answering (an injected fault)."""


class RequestInfo:
    """What a request targets, like k8s' RequestInfo: verb and resource (None if neither).

    A watch with sendInitialEvents=true is a watch-list: its verb stays "watch" (RBAC and the
    routing see a watch) but statistics and fault rules know it as "watchlist".
    """

    def __init__(self, method, path, params, installed):
        self.route = None
        self.verb = method.lower()
        self.resource = None
        self.watch_list = False
        try:
            self.route = resources.route(path, installed)
        except resources.NotRouted:
            return
        r = self.route
        self.resource = r.resource.plural
        if method == "GET":
            if r.name:
                self.verb = "get"
            elif r.legacy_watch or listoptions.go_bool(params.get("watch", "false")):
                self.verb = "watch"
                self.watch_list = listoptions.go_bool(params.get("sendInitialEvents", "false"))
            else:
                self.verb = "list"
        elif method == "POST":
            self.verb = "create"
        elif method == "PUT":
            self.verb = "update"
        elif method == "DELETE":
            self.verb = "delete" if r.name else "deletecollection"

    @property
    def counted_verb(self):
        """The verb statistics and fault rules go by."""
        return "watchlist" if self.watch_list else self.verb


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    app = None                      # set on the server class by make_server

    # http.server plumbing --------------------------------------------------------------

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, fmt, *args):
        pass                          # one line per request is logged by _handle

    def send_response(self, code, message=None):
        """Like the base class, but Go's net/http sends no Server header."""
        self.send_response_only(code, message)
        self.code = code

    # Response writing --------------------------------------------------------------------

    def _common_headers(self, content_type, extra=None):
        self.send_header("Audit-Id", self.audit_id)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", content_type)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if self.authenticated:
            self.send_header("X-Kubernetes-Pf-Flowschema-Uid", FLOWSCHEMA_UID)
            self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", PRIORITY_LEVEL_UID)
        self.send_header("Date", self.date_time_string())

    def send_body(self, code, body, content_type="application/json", extra=None):
        self.send_response(code)
        extra = dict(extra or {})
        if len(body) > GZIP_THRESHOLD and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, 1)
            extra["Content-Encoding"] = "gzip"
        self._common_headers(content_type, extra)
        if len(body) > CHUNK_THRESHOLD:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def send_json(self, code, obj, sort_keys=False, extra=None):
        self.send_body(code, wire.encode(obj, self.pretty, sort_keys), extra=extra)

    def send_error_status(self, err):
        if err.status is None:
            # Go's http.Error: text/plain and nosniff.
            self.send_body(err.code, err.plain.encode(), "text/plain; charset=utf-8",
                           dict(err.headers, **{"X-Content-Type-Options": "nosniff"}))
        else:
            self.send_json(err.code, err.status, extra=err.headers)

    def start_chunked(self, code):
        self.send_response(code)
        self._common_headers("application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")

    # Request handling --------------------------------------------------------------------

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _authenticate(self, path):
        token = self.app.config.token
        header = self.headers.get("Authorization")
        if token is None:
            self.authenticated = True
            return
        if header is None and (path == "/version" or path in discovery.HEALTH_PATHS):
            return                     # public info, readable without credentials
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 token.encode()):
            raise wire.unauthorized()
        self.authenticated = True

    def _handle(self):
        start = time.monotonic()
        # Like the real server, echo a client-chosen Audit-ID so logs can be correlated.
        self.audit_id = self.headers.get("Audit-ID") or str(uuid.uuid4())
        self.code = None
        self.authenticated = False
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        params = {k: v[0] for k, v in
                  urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        ua = self.headers.get("User-Agent", "")
        self.pretty = params.get("pretty") in ("1", "true") or ua.startswith(("curl", "Wget"))
        app = self.app
        info = RequestInfo(self.command, path, params, app.installed)
        is_admin = path.startswith("/_test/")
        try:
            body = self._read_body()
            self._authenticate(path)
            stream_fault = None
            if not is_admin:
                app.stats.request(info.resource, info.counted_verb)
                stream_fault = self._inject_fault(path, info)
            self._serve(path, params, body, info, stream_fault)
        except ApiError as e:
            self.send_error_status(e)
        except Reset:
            self.close_connection = True
            self.connection.close()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:         # a bug here: answer like a panicking handler does
            traceback.print_exc()
            self.close_connection = True
            if self.code is None:
                self.send_error_status(wire.from_code(500, f"Internal error occurred: {e!r}"))
        finally:
            if self.code is not None and not is_admin:
                app.stats.answered(self.code)
            if not app.config.quiet:
                sys.stderr.write(f"{self.command} {self.path} {self.code or '-'} "
                                 f"{time.monotonic() - start:.3f}s\n")
                sys.stderr.flush()

    def _inject_fault(self, path, info):
        """Apply the fault rule matching this request; a mid-stream one is returned for the
        watch to apply (faults.py)."""
        rule = self.app.faults.take(path, info.counted_verb, info.resource,
                                    self.headers.get("User-Agent", ""))
        if rule is None:
            return None
        if rule.delay_ms:
            time.sleep(rule.delay_ms / 1000)
        if rule.after_events is not None:
            return rule
        if rule.reset:
            raise Reset()
        if rule.status == 403 and info.route and not rule.message:
            r = info.route
            raise wire.forbidden(self.app.config.user, info.verb, r.resource.plural,
                                 r.resource.group, r.namespace, r.name)
        if rule.status is not None:
            raise wire.from_code(rule.status, rule.message, rule.retry_after, rule.plain)
        return None

    def _serve(self, path, params, body, info, stream_fault=None):
        app = self.app
        if path.startswith("/_test/"):
            code, obj = admin.handle(app, self.command, path, params, body)
            self.send_json(code, obj)
            return
        if path in discovery.HEALTH_PATHS:
            self.send_body(200, b"ok", "text/plain; charset=utf-8",
                           {"X-Content-Type-Options": "nosniff"})
            return
        if info.route is None:
            if self.command == "GET":
                doc = discovery.answer(path, app.installed, app.config.server_address,
                                       app.config.watch_list)
                if doc is not None:
                    self.send_json(200, doc)
                    return
            raise wire.page_not_found()
        self._serve_resource(info.route, info.verb, params, body, stream_fault)

    def _json_body(self, body):
        try:
            return json.loads(body or b"null")
        except ValueError as e:
            raise wire.bad_request(f"couldn't get version/kind; json parse error: {e}") from None

    def _serve_resource(self, route, verb, params, body, stream_fault=None):
        reg, res = self.app.registry, route.resource
        manager = params.get("fieldManager") or \
            self.headers.get("User-Agent", "unknown").split("/")[0] or "unknown"
        strict = params.get("strict") in ("1", "true") or \
            params.get("fieldValidation") == "Strict"
        crd = not res.builtin
        if verb in ("watch", "list"):
            opts = listoptions.parse(params, self.app.config.watch_list)
        if verb == "watch":
            Stream(self, self.app, route, params, opts, stream_fault).run()
        elif verb == "list":
            result = listing.list_objects(self.app.store, route, params)
            if self.pretty:
                self.send_json(200, result.as_dict(), sort_keys=crd)
            else:
                self.send_body(200, render.list_json(self.app.store, res, result.meta,
                                                     result.entries))
        elif verb == "get":
            self.send_json(200, reg.get(res, route.namespace, route.name), sort_keys=crd)
        elif verb == "create":
            # Objects of a namespaced resource are only created under /namespaces/NS/.
            if route.name or (res.namespaced and route.namespace is None):
                raise wire.method_not_allowed()
            obj = reg.create(res, route.namespace, self._json_body(body), manager, strict)
            self.send_json(201, obj, sort_keys=crd)
        elif verb == "update":
            if not route.name:
                raise wire.method_not_allowed()
            obj = reg.update(res, route.namespace, route.name, self._json_body(body),
                             route.subresource, manager, strict)
            self.send_json(200, obj, sort_keys=crd)
        elif verb == "patch":
            if not route.name:
                raise wire.method_not_allowed()
            obj = reg.patch(res, route.namespace, route.name, self._json_body(body),
                            self.headers.get("Content-Type"), route.subresource, manager,
                            strict)
            self.send_json(200, obj, sort_keys=crd)
        elif verb == "delete":
            if route.subresource:
                raise wire.method_not_allowed()
            options = self._json_body(body) if body else None
            self.send_json(200, reg.delete(res, route.namespace, route.name, options),
                           sort_keys=crd)
        elif verb == "deletecollection":
            flt = listing.make_filter(route, params)
            self.send_json(200, reg.delete_collection(res, flt), sort_keys=crd)
        else:
            raise wire.method_not_allowed()


class Server(ThreadingHTTPServer):
    """A thread per connection; TLS handshakes happen in that thread, not in accept()."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, handler_class, ssl_context=None, family=None, sock=None):
        """sock: serve this already listening socket (e.g. one in another network
        namespace, see netns.py) instead of binding address."""
        if family is not None:
            self.address_family = family
        self.ssl_context = ssl_context
        super().__init__(address, handler_class, bind_and_activate=sock is None)
        if sock is not None:
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()

    def finish_request(self, request, client_address):
        # Go sets TCP_NODELAY on every connection; without it, a response written in two
        # pieces (headers, body) waits out the client's delayed ACK: 40 ms per request.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        try:
            request.settimeout(10)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            return                     # a failed handshake: the client has been told
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        # Clients vanishing mid-request are routine for a test server; stay quiet.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)
