"""bench/run's tls case: percored's TLS listeners against Debian's nginx,
the same OpenSSL 3 (libssl3) under both, one worker each on the server
CPU. Also used by bench/tests/test_bench.py.

Certificates are made at run time in a temporary directory (ECDSA P-256
and RSA-2048, self-signed for "localhost") and removed after the case;
no key is ever written into the tree.

nginx runs its `stream` module (libnginx-mod-stream), not HTTP, so that
both servers do the same work per connection and nothing else:

- handshake rows: `listen ... ssl; return "";` — nginx finishes the
  handshake, sends its session tickets and closes. percored's echo
  listener with TLS does the same and closes when the client's
  close_notify comes. percore-bench sends no data (`--size 0`): a TLS 1.3
  handshake is done when the server's first ticket arrives (it is sent
  after the server checked the client's Finished), TLS 1.2 when the
  server's Finished does. HTTP would add request parsing and response
  headers to nginx's side only; `proxy_pass` to an echo server would add
  a second connection per handshake to nginx's side only.
- echo rows: nginx cannot echo by itself, so there it terminates TLS (or
  not, for its cleartext row) and proxies to bench-epoll-echo on the
  same CPU. Its CPU per message includes relaying each message twice,
  so these rows are a reference for what TLS adds (TLS minus cleartext),
  not a comparison of echo servers; percored's own rows are the target.

nginx is started with `master_process on` and `worker_processes 1`: the
worker does all the work and is the process measured (its PID from
/proc/MASTER/task/MASTER/children); the master's CPU time over the run
is recorded too, to show it does nothing meanwhile.
"""

import os
import subprocess
import tempfile

import peers  # nginx, its worker, a process's CPU time
from peers import NGINX

STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
CONCURRENCY = 32  # handshakes in progress at once
ECHO_CONNECTIONS = 100
CERTS = (("ecdsa", "ECDSA P-256",
          ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
         ("rsa", "RSA-2048",
          ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]))
# (certificate, TLS version, resumed): every row for both servers.
HANDSHAKES = (("ecdsa", "1.3", False), ("rsa", "1.3", False),
              ("ecdsa", "1.2", False), ("ecdsa", "1.3", True),
              ("ecdsa", "1.2", True))


def make_certs(directory):
    """{kind: (label, cert path, key path)}: fresh self-signed pairs for
    localhost, made with the openssl tool."""
    out = {}
    for kind, label, algo in CERTS:
        key = os.path.join(directory, f"{kind}.key")
        cert = os.path.join(directory, f"{kind}.pem")
        subprocess.run(["openssl", "genpkey", *algo, "-out", key],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-x509", "-new", "-key", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"],
                       check=True, capture_output=True)
        os.chmod(key, 0o600)
        out[kind] = (label, cert, key)
    return out


NGINX_STREAM = """\
stream {{
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    # Tickets, as percored's tls_session_cache = on; the rest OpenSSL's
    # and nginx's defaults (ciphers HIGH:!aNULL:!MD5, curves auto).
    ssl_session_tickets on;
    server {{
        listen 127.0.0.1:{port}{ssl};
        {content}
    }}
}}
"""


def nginx_conf(directory, port, cert, key, upstream=None, tls=True):
    """Writes nginx.conf into directory: TLS (or not) on 127.0.0.1:port,
    then either nothing more (`return ""`: the handshake rows) or a proxy
    to the echo server on `upstream`. Returns its path."""
    content = (f"proxy_pass 127.0.0.1:{upstream};" if upstream
               else 'return "";')
    return peers.nginx_conf(
        directory, "tlsbench.py",
        NGINX_STREAM.format(cert=cert, key=key, port=port,
                            ssl=" ssl" if tls else "", content=content),
        modules=(STREAM_MODULE,))


def have_nginx():
    """nginx and its stream module with TLS, or why not."""
    if not os.access(NGINX, os.X_OK):
        return f"{NGINX} is missing (apt-get install nginx)"
    if not os.path.exists(STREAM_MODULE):
        return "nginx's stream module is missing " \
               "(apt-get install libnginx-mod-stream)"
    v = subprocess.run([NGINX, "-V"], capture_output=True, text=True)
    if "--with-stream_ssl_module" not in v.stderr:
        return "this nginx has no stream_ssl_module"
    return None


NO_TLS = "percored has no TLS yet"


def percored_tls_args(cert, key, name="echo"):
    return ["--set", f"{name}.tls_certificate={cert}",
            "--set", f"{name}.tls_key={key}"]


def percored_has_tls(percored, cert, key):
    """None if this percored takes TLS listener keys, else its complaint."""
    port = 1  # -t binds nothing
    p = subprocess.run([percored, "-t", "--listen", f"echo@127.0.0.1:{port}",
                        *percored_tls_args(cert, key)],
                       capture_output=True, text=True, timeout=30)
    if p.returncode == 0:
        return None
    return ("percored takes no TLS listener keys yet (percored -t: " +
            (p.stderr or p.stdout).strip().splitlines()[-1][:200] + ")")


# ---- the case ----------------------------------------------------------------

class Case(peers.Case):
    def __init__(self, suite):
        # self.d, the suite's --duration (10 s): about four minutes in all.
        super().__init__(suite, "pcb-tls-")
        self.rate = self.o.tls_rate
        self.certs = make_certs(self.dir)
        self.nginx_missing = have_nginx()
        if self.nginx_missing and not self.o.no_install:
            # need() apt-gets a package when its file is not an executable
            # on PATH: true of the module (a .so) until it is installed.
            suite.need(NGINX, "nginx")
            if not os.path.exists(STREAM_MODULE):
                suite.need(STREAM_MODULE, "libnginx-mod-stream")
            self.nginx_missing = have_nginx()
        _, cert, key = self.certs["ecdsa"]
        self.percored_missing = percored_has_tls(suite.percored, cert, key)

    def timed(self):
        return ["-d", self.d, "-w", self.s.warmup]

    def percored(self, cert, key, tls=True):
        extra = percored_tls_args(cert, key) if tls else []
        return lambda p: self.s.percored_argv(p, *extra, workers=1)

    def run_nginx(self, name, conf_of, bench_args):
        """Starts nginx with the config conf_of(port, dir) writes, runs
        percore-bench at its worker, returns the result."""
        ngdir = tempfile.mkdtemp(prefix="nginx-", dir=self.dir)

        def argv(port):
            return peers.nginx_argv(ngdir, conf_of(port, ngdir))
        srv, failed = peers.start(self.s, name, argv)
        if failed:
            return failed
        with srv:
            try:
                w = peers.Worker(srv)
            except RuntimeError as e:
                return {"error": str(e)[-300:]}
            m0 = peers.cpu_s(srv.pid)
            r = self.s.run_bench(bench_args[0], w, *bench_args[1:])
            m1 = peers.cpu_s(srv.pid)
            if m0 is not None and m1 is not None:
                r["nginx_master_cpu_s"] = round(m1 - m0, 3)
        return r

    def handshakes(self):
        rows = []
        for kind, version, resume in HANDSHAKES:
            label, cert, key = self.certs[kind]
            what = (f"{'resumed' if resume else 'full'}, {label}, "
                    f"TLS {version}")
            args = ["-c", CONCURRENCY, "--tls-version", version,
                    *(["--resume"] if resume else []), *self.timed()]
            for name in ("percored", "nginx"):
                self.s.say(f"tls handshakes {what}: {name}")
                row = {"kind": "handshake", "server": name, "cert": label,
                       "version": version, "resume": resume,
                       "workload": what}
                if name == "percored":
                    row["result"] = self.run_percored(
                        self.percored(cert, key), "handshake", args)
                elif self.nginx_missing:
                    row["result"] = {"error": self.nginx_missing}
                else:
                    row["result"] = self.run_nginx(
                        name, lambda p, d, c=cert, k=key:
                        nginx_conf(d, p, c, k), ["handshake", *args])
                rows.append(row)
        return rows

    def run_percored(self, argv_of, mode, args, tls=True):
        if tls and self.percored_missing:
            return {"error": NO_TLS}
        srv, failed = peers.start(self.s, "percored", argv_of)
        if failed:
            return failed
        with srv:
            return self.s.run_bench(mode, srv, *args)

    def echoes(self):
        """64 B and 4 KiB at a fixed offered load, with and without TLS
        (ECDSA, TLS 1.3), alternating; then nginx's reference rows."""
        rows = []
        _, cert, key = self.certs["ecdsa"]
        for size in (64, 4096):
            args = ["-c", ECHO_CONNECTIONS, "-s", size, "-r", self.rate,
                    *self.timed()]
            for rnd in range(self.rounds):
                for tls in (False, True):
                    self.s.say(f"tls echo {size} B, {'TLS' if tls else 'clear'}"
                               f", round {rnd + 1}: percored")
                    rows.append({
                        "kind": "echo", "server": "percored", "tls": tls,
                        "size": size, "rate": self.rate, "round": rnd + 1,
                        "result": self.run_percored(
                            self.percored(cert, key, tls), "echo",
                            args + (["--tls"] if tls else []), tls=tls)})
            for tls in (False, True):
                self.s.say(f"tls echo {size} B, {'TLS' if tls else 'clear'}: "
                           "nginx proxying to epoll")
                row = {"kind": "echo", "server": "nginx → epoll", "tls": tls,
                       "size": size, "rate": self.rate, "round": 1}
                if self.nginx_missing:
                    row["result"] = {"error": self.nginx_missing}
                else:
                    row["result"] = self.nginx_echo(cert, key, tls, args)
                rows.append(row)
        return rows

    def nginx_echo(self, cert, key, tls, args):
        up, failed = peers.start(self.s, "epoll upstream",
                                 lambda p: [self.s.epoll, str(p)])
        if failed:
            return failed
        with up:
            return self.run_nginx(
                "nginx", lambda p, d: nginx_conf(d, p, cert, key,
                                                 upstream=up.port, tls=tls),
                ["echo", *args, *(["--tls"] if tls else [])])

def case_tls(suite):
    case = Case(suite)
    try:
        return {"rate": case.rate, "duration_s": case.d,
                "concurrency": CONCURRENCY, "connections": ECHO_CONNECTIONS,
                "percored_tls": case.percored_missing is None,
                "percored_tls_error": case.percored_missing,
                "rows": case.handshakes() + case.echoes()}
    finally:
        case.remove()
