"""The peer servers bench/run's cases measure percored against, and what
every case does the same way to start and watch them: nginx's config
head, its command line and its one worker, a process's CPU time, a server
started or the reason it could not be. Used by bench/tlsbench.py,
bench/webbench.py and bench/tests/."""

import os
import shutil
import tempfile
import time

NGINX = "/usr/sbin/nginx"

# What every case's nginx.conf starts with: one worker (the process
# measured) under a master, its pid and log in the run's directory.
NGINX_HEAD = """\
# Written by percore's bench/{writer} for one benchmark run.
{modules}daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
}}
"""


def nginx_conf(directory, writer, body, modules=()):
    """Writes directory/nginx.conf: the common head, then `body` (the
    case's stream or http block). writer names the case's file; modules
    are the .so files to load. Returns its path."""
    path = os.path.join(directory, "nginx.conf")
    with open(path, "w") as f:
        f.write(NGINX_HEAD.format(
            writer=writer, dir=directory,
            modules="".join(f"load_module {m};\n" for m in modules)))
        f.write(body)
    return path


def nginx_argv(directory, conf):
    # -e: the error log before the config is read (else /var/log/nginx).
    return [NGINX, "-p", directory, "-c", conf,
            "-e", os.path.join(directory, "error.log")]


def cpu_s(pid):
    """utime + stime of a process, seconds, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def worker_pid(master, alive=lambda: True, timeout=10):
    """The PID of nginx's one worker, once the master has forked it."""
    deadline = time.time() + timeout
    while not children(master):
        if time.time() > deadline or not alive():
            raise RuntimeError("nginx started no worker")
        time.sleep(0.02)
    return children(master)[0]


class Worker:
    """A started nginx seen through its one worker: what Suite.run_bench
    needs (port, pid, alive, output) with the worker's PID."""

    def __init__(self, srv):
        self.srv, self.port = srv, srv.port
        try:
            self.pid = worker_pid(srv.pid, srv.alive)
        except RuntimeError as e:
            raise RuntimeError(f"{e}:\n{srv.output()}")

    def alive(self):
        return self.srv.alive()

    def output(self):
        return self.srv.output()


def start(suite, name, argv_of):
    """(server, None) once bench/run's suite started it, or (None,
    {"error": why}) for the row's result: a server that does not start
    costs its row, not the case."""
    try:
        return suite.start(name, argv_of), None
    except RuntimeError as e:
        return None, {"error": str(e)[-300:]}


class Case:
    """What every case that starts peers keeps: bench/run's suite and its
    options, the measured duration, the rounds (1 with --quick, else 2)
    and a temporary directory for configs and files, gone after remove()."""

    def __init__(self, suite, prefix):
        self.s = suite
        self.o = suite.o
        self.d = suite.d
        self.rounds = 1 if self.o.quick else 2
        self.dir = tempfile.mkdtemp(prefix=prefix)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)
