"""What the TLS checks run to look at a site from outside it.

``HTTP_PROBE`` is a self-contained Python script run at the vantage point (another lab host, or the
controller): it speaks HTTP or HTTPS to the host's address with the site's name (SNI, Host header),
verifies the chain against the expected CA, and prints what it saw as JSON. ``handshake`` runs on
the controller with sslyze's OpenSSL builds (nassl): its legacy build can still offer SSL 2.0/3.0,
TLS 1.0/1.1 and weak suites, which a Debian host's own OpenSSL no longer can, so a server that
accepts them is caught. One handshake per question ("is any of these accepted?") instead of one per
suite keeps a scan under a second and under the firewall's per-client connection rate.
"""

from __future__ import annotations

import json
from typing import Any

HTTP_PROBE = r'''
import datetime, http.client, json, socket, ssl, sys, time
spec = json.loads(sys.argv[1])
out = []
def connect():
    sock = socket.create_connection((spec["address"], spec["port"]), timeout=10)
    info = {}
    if spec["tls"]:
        ctx = ssl.create_default_context(cadata=spec["cadata"] or None)
        if not spec["cadata"]:
            ctx.load_default_certs()
        try:
            sock = ctx.wrap_socket(sock, server_hostname=spec["name"])
        except ssl.SSLError as exc:
            return None, {"error": "TLS: %s" % exc}
        cert = sock.getpeercert()
        info = {"subject": cert.get("subject"), "issuer": cert.get("issuer"),
                "not_after": cert.get("notAfter"), "version": sock.version(), "cipher": sock.cipher()[0],
                "days_left": (ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()) / 86400}
    conn = http.client.HTTPConnection(spec["name"], spec["port"], timeout=10)
    conn.sock = sock
    return conn, info
conn, info = connect()
if conn is None:
    print(json.dumps({"tls": info, "responses": []}))
    sys.exit(0)
def send(req, link):
    """One request on link[0] (a keep-alive connection, replaced when the server closes it)."""
    try:
        link[0].sock.settimeout(req.get("timeout", 10))
        link[0].putrequest(req.get("method", "GET"), req["path"], skip_host=True)
        link[0].putheader("Host", spec["name"])
        for key, value in req.get("headers", {}).items():
            link[0].putheader(key, value)
        link[0].endheaders()
        resp = link[0].getresponse()
        resp.read()
        got = {"path": req["path"], "status": resp.status, "headers": dict(resp.getheaders())}
        if resp.will_close:
            link[0].close()
            link[0] = connect()[0]
        return got
    except (OSError, http.client.HTTPException) as exc:
        link[0].close()
        link[0] = connect()[0]
        return {"path": req["path"], "status": 0, "error": str(exc)}
def burst(req):
    """req["repeat"] requests at once over req["parallel"] connections: a busy vantage point still
    sends faster than a per-client rate limit allows."""
    import threading
    got, lock = [], threading.Lock()
    def worker(count):
        link = [connect()[0]]
        for _ in range(count):
            answer = send(req, link)
            with lock:
                got.append(answer)
    n, total = req["parallel"], req["repeat"]
    threads = [threading.Thread(target=worker, args=(total // n + (1 if i < total % n else 0),)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got
link = [conn]
for req in spec["requests"]:
    if req.get("parallel"):
        out += burst(req)
        continue
    for _ in range(req.get("repeat", 1)):
        got = send(req, link)
        # Another check from this vantage point may have used up the per-client rate just now:
        # wait for the bucket to drain, unless the 429 is what this request looks for.
        for _ in range(20):
            if got["status"] != 429 or req.get("expect_429"):
                break
            time.sleep(0.5)
            got = send(req, link)
        out.append(got)
print(json.dumps({"tls": info, "responses": out}))
'''


def site(hostvars: dict[str, Any]) -> tuple[str, str]:
    """The host's address and the site's primary name."""
    return str(hostvars.get("ansible_host") or hostvars["inventory_hostname"]), hostvars["tls_server_names"][0]


def http(probe: Any, hostvars: dict[str, Any], requests: list[dict[str, Any]], tls: bool = True,
         name: str | None = None) -> dict[str, Any]:
    """Send ``requests`` over one (keep-alive) connection from the probe's vantage point."""
    address, primary = site(hostvars)
    spec = {"address": address, "name": name or primary, "port": 443 if tls else 80, "tls": tls,
            "cadata": hostvars.get("tls_trusted_ca_cert", ""), "requests": requests}
    rc, output = probe.run("python3 -c %s %s", HTTP_PROBE, json.dumps(spec))
    assert rc == 0, f"the HTTP probe at {probe.where} failed: {output[-1500:]}"
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


_RESUMPTION: dict[tuple[str, str], Any] = {}
LEGACY = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1")
ALL_SUITES = "ALL:COMPLEMENTOFALL"


def _location(hostvars: dict[str, Any]) -> tuple[Any, Any]:
    from sslyze import ServerNetworkConfiguration, ServerNetworkLocation

    address, name = site(hostvars)
    return (ServerNetworkLocation(hostname=name, port=443, ip_address=address),
            ServerNetworkConfiguration(tls_server_name_indication=name, network_max_retries=1))


def handshake(hostvars: dict[str, Any], version: str, suites: str | None = ALL_SUITES) -> str | None:
    """One handshake from the controller offering ``suites`` with protocol ``version`` ("TLS 1.2"):
    the suite the server chose, or None when it refused. SSL 2.0 to TLS 1.1 use sslyze's legacy
    OpenSSL, which still has them (and their weak suites)."""
    from sslyze import TlsVersionEnum
    from sslyze.connection_helpers.tls_connection import SslConnection
    from sslyze.errors import ServerRejectedTlsHandshake

    enum = {"SSL 2.0": TlsVersionEnum.SSL_2_0, "SSL 3.0": TlsVersionEnum.SSL_3_0, "TLS 1.0": TlsVersionEnum.TLS_1_0,
            "TLS 1.1": TlsVersionEnum.TLS_1_1, "TLS 1.2": TlsVersionEnum.TLS_1_2,
            "TLS 1.3": TlsVersionEnum.TLS_1_3}[version]
    location, config = _location(hostvars)
    conn = SslConnection(server_location=location, network_configuration=config, tls_version=enum,
                         should_ignore_client_auth=True)
    if suites and version != "TLS 1.3":
        # The modern OpenSSL refuses weak suites below security level 0; the legacy one has no levels.
        conn.ssl_client.set_cipher_list(suites + (":@SECLEVEL=0" if version == "TLS 1.2" else ""))
    try:
        conn.connect(should_retry_connection=False)
        return str(conn.ssl_client.get_current_cipher_name())
    except ServerRejectedTlsHandshake:  # anything else (unreachable, timeout) is an error, not a pass
        return None
    finally:
        conn.close()


def tls12_suites_except(keep: Any) -> str:
    """Every TLS 1.2 suite the scanning OpenSSL knows for which ``keep(name)`` is false, as a cipher list."""
    from nassl.ssl_client import OpenSslVersionEnum, SslClient

    client = SslClient(ssl_version=OpenSslVersionEnum.TLSV1_2)
    client.set_cipher_list(ALL_SUITES + ":@SECLEVEL=0")
    return ":".join(name for name in client.get_cipher_list() if not name.startswith("TLS_") and not keep(name))


def resumption(hostvars: dict[str, Any]) -> Any:
    """sslyze's session resumption scan (session IDs and TLS tickets), once per host."""
    from sslyze import ScanCommand, Scanner, ServerScanRequest, ServerScanStatusEnum

    key = site(hostvars)
    if key not in _RESUMPTION:
        location, config = _location(hostvars)
        scanner = Scanner()
        scanner.queue_scans([ServerScanRequest(server_location=location, network_configuration=config,
                                               scan_commands={ScanCommand.SESSION_RESUMPTION})])
        result = next(iter(scanner.get_results()))
        assert result.scan_status == ServerScanStatusEnum.COMPLETED, \
            f"sslyze could not reach {key[1]} at {key[0]}:443: {result.connectivity_error_trace}"
        attempt = result.scan_result.session_resumption
        assert attempt.result is not None, attempt.error_trace
        _RESUMPTION[key] = attempt.result
    return _RESUMPTION[key]
