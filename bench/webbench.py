"""bench/run's web case: percored's web face against the usual peers, one
worker each on the server CPU (issue 13). Also used by
bench/tests/test_bench_chat.py and test_bench_web.py.

- WebSocket fan-out: one room of --members (1,000) members, 4 of them
  sending, `percore-bench ws` (bench/ws.c: chat mode's measurements over
  RFC 6455 frames). percored's `web` listener speaks JSON (a member claims
  a unique nick and joins the room; a line is a `say`, delivered as a
  `say` event); the peer is bench/baselines/ws_broadcast.js, Node.js with
  npm's `ws` (permessage-deflate off), where the room is every client and
  a text message goes to all of them as it came. Saturation is a closed
  loop (each sender keeps --chat-pipeline lines in flight until they come
  back to it), compared as deliveries per server CPU-second; the light
  row is an open loop at 100 lines/s, compared by p99.
- Static files: `GET` of one small file with Debian's `wrk` (one thread,
  pinned to the client CPUs with taskset like percore-bench), percored's
  `web` listener with `root` against Debian's nginx (worker_processes 1,
  access_log off, `listen ... reuseport`), requests per server
  CPU-second, the server's CPU time read from /proc/PID/stat around the
  measured wrk run.
- Where percored's CPU goes: one more run of each percored workload under
  `perf record -e cpu-clock -g -p PID` (not a measured run: perf costs
  the server some), its top symbols kept for the page.

Every process started here is stopped by its PID (Server.stop), listens
on 127.0.0.1 only, and holds about a thousand descriptors at most.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

import peers  # nginx, its worker, a process's CPU time

BASELINES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "baselines")
NODE_SERVER = os.path.join(BASELINES, "ws_broadcast.js")
SENDERS = 4
LIGHT_RATE = 100          # lines/s of the latency row
WRK_CONNECTIONS = 64
FILE_NAME = "small.html"
FILE_SIZE = 1024          # bytes: a small page, one packet with its head
PERF_SECONDS = 4
# The light rows' control: the same room and load over percored's line
# chat face (percore-bench chat), so that a p99 swollen by other work on
# a shared machine shows as such, not as the web face's.
CHAT_FACE = "percored chat face"

NGINX_HTTP = """\
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    # Debian's /etc/nginx/nginx.conf turns these on; percored writes
    # through its output queue (docs/protocols/web.md).
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
    }}
}}
"""


def web_args(root=None):
    """percored's web listener settings for the case: senders unthrottled
    (flood_rate 0: the benchmark is the flood) and, for files, a root."""
    args = ["--set", "web.flood_rate=0"]
    if root:
        args += ["--set", f"web.root={root}"]
    return args


def node_ready(suite):
    """None if node and bench/baselines/node_modules/ws are there (after
    installing what is missing), else why not."""
    if not suite.need("node", "nodejs"):
        return "node is missing (apt-get install nodejs)"
    if os.path.isdir(os.path.join(BASELINES, "node_modules", "ws")):
        return None
    if suite.o.no_install:
        return "ws is not installed (cd bench/baselines && npm ci)"
    if not suite.need("npm", "npm"):
        return "npm is missing (apt-get install npm)"
    print("bench/run: npm ci in bench/baselines (npm's ws)", flush=True)
    p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"],
                       cwd=BASELINES, capture_output=True, text=True,
                       timeout=300)
    if p.returncode:
        return "npm ci failed: " + (p.stderr or p.stdout)[-200:]
    return None


def perf_report(data, sort, limit):
    """[(percent, name)] of perf report sorted by `sort` (sym or dso)."""
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio",
                          "--no-children", "--sort", sort, "-g", "none",
                          "--percent-limit", "0.8"],
                         capture_output=True, text=True, timeout=120)
    top = []
    for line in rep.stdout.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(?:\[[.k]\]\s+)?(\S.*?)\s*$", line)
        if m and not line.lstrip().startswith("#"):
            top.append((float(m.group(1)), m.group(2)))
    return top[:limit]


def perf_top(pid, seconds, limit=12):
    """{"symbols": [(percent, symbol)], "objects": [(percent, dso)]} of a
    perf cpu-clock profile of pid, or an error string. By object says how
    much is the kernel's (on loopback a write also runs the receiver's
    TCP input, charged to the writer)."""
    if not shutil.which("perf"):
        return "perf is missing (apt-get install linux-perf)"
    with tempfile.TemporaryDirectory(prefix="pcb-perf-") as d:
        data = os.path.join(d, "perf.data")
        rec = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-g",
                              "-p", str(pid), "-o", data, "--", "sleep",
                              str(seconds)], capture_output=True, text=True,
                             timeout=seconds + 60)
        if rec.returncode or not os.path.exists(data):
            return "perf record failed: " + rec.stderr[-200:]
        top = {"symbols": perf_report(data, "sym", limit),
               "objects": perf_report(data, "dso", 5)}
    return top if top["symbols"] else "perf report found no samples"


def parse_wrk(out):
    """wrk's summary as numbers, or None."""
    m = re.search(r"(\d+) requests in ([0-9.]+)(m?s)", out)
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not m or not rps:
        return None
    lat = {}
    for pct, v, unit in re.findall(r"^\s+(50|90|99)%\s+([0-9.]+)(us|ms|s)\s*$",
                                   out, re.M):
        lat[f"p{pct}"] = float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                     r"timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(m.group(1)), "requests_per_s": float(rps.group(1)),
            "latency_us": lat,
            "socket_errors": sum(map(int, errs.groups())) if errs else 0,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


class Case(peers.Case):
    def __init__(self, suite):
        super().__init__(suite, "pcb-web-")
        self.members = self.o.members
        # nginx's worker runs as nobody: the files must be readable
        # through mkdtemp's 0700 directory.
        os.chmod(self.dir, 0o755)
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root, 0o755)
        with open(os.path.join(self.root, FILE_NAME), "w") as f:
            body = "<!doctype html><title>percore</title><p>"
            f.write(body + "x" * (FILE_SIZE - len(body) - 1) + "\n")
        self.node_missing = node_ready(suite)
        self.nginx_missing = None if suite.need(peers.NGINX, "nginx") \
            else f"{peers.NGINX} is missing (apt-get install nginx)"
        self.wrk_missing = None if suite.need("wrk", "wrk") \
            else "wrk is missing (apt-get install wrk)"
        self.have_perf = suite.need("perf", "linux-perf")

    def percored(self, root=None):
        return lambda p: self.s.percored_argv(p, *web_args(root), proto="web",
                                              workers=1)

    def chat_face(self, port):
        return self.s.percored_argv(port, "--set", "chat.flood_rate=0",
                                    "--set", "chat.default_room=",
                                    proto="chat", workers=1)

    def node(self, port):
        return ["node", NODE_SERVER, str(port)]

    # -- WebSocket fan-out --

    def ws_args(self, kind, target, seconds=None, warmup=None):
        load = (["-p", self.o.chat_pipeline] if kind == "saturation"
                else ["-r", LIGHT_RATE])
        return ["--target", target, "--members", self.members,
                "--senders", SENDERS, *load, "-d", seconds or self.d, "-w",
                self.s.warmup if warmup is None else warmup,
                "--connect-timeout", 60]

    def ws_run(self, name, kind, rnd):
        row = {"part": "ws", "server": name, "kind": kind, "round": rnd,
               "members": self.members, "senders": SENDERS}
        if kind == "light":
            row["rate"] = LIGHT_RATE
        if name == "node ws" and self.node_missing:
            row["result"] = {"error": self.node_missing}
            return row
        mode = "ws"
        if name == "percored":
            argv_of, target = self.percored(), "percore"
        elif name == CHAT_FACE:
            argv_of, target, mode = self.chat_face, "percore", "chat"
        else:
            argv_of, target = self.node, "broadcast"
        self.s.say(f"web ws {kind} round {rnd}: {name}")
        srv, row["result"] = peers.start(self.s, name, argv_of)
        if srv is None:
            return row
        with srv:
            row["result"] = self.s.run_bench(mode, srv,
                                             *self.ws_args(kind, target))
        return row

    # -- static files --

    def nginx_argv(self, port):
        ngdir = tempfile.mkdtemp(prefix="nginx-", dir=self.dir)
        conf = peers.nginx_conf(ngdir, "webbench.py", NGINX_HTTP.format(
            port=port, root=self.root))
        return peers.nginx_argv(ngdir, conf)

    def wrk_argv(self, port, seconds):
        """wrk on the client CPUs, one thread per CPU, as percore-bench."""
        return ["taskset", "-c", self.s.client_cpus, "wrk", "-t",
                str(self.s.threads), "-c", str(WRK_CONNECTIONS), "-d",
                f"{seconds:g}s", "--latency",
                f"http://127.0.0.1:{port}/{FILE_NAME}"]

    def wrk(self, port, seconds):
        argv = self.wrk_argv(port, seconds)
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=seconds + 60)
        return p, argv

    def measure_wrk(self, port, pid, alive):
        """Warm up, then one measured wrk run with the server's CPU time
        read around it."""
        self.wrk(port, self.s.warmup)
        c0 = peers.cpu_s(pid)
        t0 = time.time()
        p, argv = self.wrk(port, self.d)
        wall = time.time() - t0
        c1 = peers.cpu_s(pid)
        r = parse_wrk(p.stdout)
        if r is None:
            return {"error": (p.stderr or p.stdout)[-300:] or "wrk failed"}
        r["argv"] = argv[3:]
        if c0 is not None and c1 is not None and c1 > c0:
            r["server_cpu_s"] = round(c1 - c0, 3)
            r["server_cpu_util"] = round((c1 - c0) / wall, 3)
            r["per_cpu_s"] = r["requests"] / (c1 - c0)
        if not alive():
            r["error"] = "the server died"
        return r

    def static_run(self, name, rnd):
        row = {"part": "static", "server": name, "round": rnd,
               "file_bytes": FILE_SIZE, "connections": WRK_CONNECTIONS}
        missing = self.wrk_missing or (self.nginx_missing if name == "nginx"
                                       else None)
        if missing:
            row["result"] = {"error": missing}
            return row
        self.s.say(f"web static round {rnd}: {name}")
        argv_of = self.percored(self.root) if name == "percored" \
            else self.nginx_argv
        srv, row["result"] = peers.start(self.s, name, argv_of)
        if srv is None:
            return row
        with srv:
            try:
                pid = (peers.worker_pid(srv.pid, srv.alive)
                       if name == "nginx" else srv.pid)
            except RuntimeError as e:
                row["result"] = {"error": str(e)}
                return row
            m0 = peers.cpu_s(srv.pid)
            row["result"] = self.measure_wrk(srv.port, pid, srv.alive)
            if name == "nginx" and m0 is not None:
                row["result"]["nginx_master_cpu_s"] = round(
                    (peers.cpu_s(srv.pid) or m0) - m0, 3)
        return row

    # -- profiles --

    def profile(self, what):
        """percored's top symbols under one workload, or why not."""
        if not self.have_perf:
            return "perf is missing (apt-get install linux-perf)"
        if what == "static" and self.wrk_missing:
            return self.wrk_missing
        self.s.say(f"web profile: percored, {what}")
        srv, failed = peers.start(self.s, "percored", self.percored(
            self.root if what == "static" else None))
        if failed:
            return failed["error"]
        secs = PERF_SECONDS
        with srv:
            if what == "static":
                load = subprocess.Popen(self.wrk_argv(srv.port, secs + 2),
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            else:
                ready = os.path.join(self.dir, "ready")
                if os.path.exists(ready):
                    os.unlink(ready)
                argv = self.s.bench_argv("ws", srv.port, *self.ws_args(
                    "saturation", "percore", secs + 2, 0), "--ready-file",
                    ready)
                load = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                deadline = time.time() + 60
                while (not os.path.exists(ready) and time.time() < deadline
                       and load.poll() is None):
                    time.sleep(0.05)
                time.sleep(0.3)
            try:
                return perf_top(srv.pid, secs)
            finally:
                try:
                    load.wait(timeout=secs + 90)
                except subprocess.TimeoutExpired:
                    load.kill()
                    load.wait()

def case_web(suite):
    loadavg = open("/proc/loadavg").read().split()[:3]
    case = Case(suite)
    try:
        rows = []
        for kind in ("saturation", "light"):
            for rnd in range(1, case.rounds + 1):
                for name in ("percored", "node ws") + (
                        (CHAT_FACE,) if kind == "light" else ()):
                    rows.append(case.ws_run(name, kind, rnd))
        for rnd in range(1, case.rounds + 1):
            for name in ("percored", "nginx"):
                rows.append(case.static_run(name, rnd))
        return {"members": case.members, "senders": SENDERS,
                "pipeline": suite.o.chat_pipeline, "light_rate": LIGHT_RATE,
                "duration_s": case.d, "rounds": case.rounds,
                "node": case.node_missing or subprocess.run(
                    ["node", "--version"], capture_output=True,
                    text=True).stdout.strip(),
                "loadavg": loadavg,
                "loadavg_end": open("/proc/loadavg").read().split()[:3],
                "rows": rows,
                "profiles": {"ws": case.profile("ws"),
                             "static": case.profile("static")}}
    finally:
        case.remove()
