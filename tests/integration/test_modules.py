"""Out-of-tree protocol modules: built against include/percore, loaded by
name from the config, refused when built for another ABI."""

import os
import shutil
import subprocess
import tempfile
import unittest

from percored import Percored, free_port, recv_exactly, run

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CC = shutil.which("cc") or shutil.which("gcc")


def build_module(source_path, out_dir, extra=()):
    out = os.path.join(out_dir, os.path.basename(source_path)[:-2] + ".so")
    subprocess.run([CC, "-shared", "-fPIC", "-O2", "-Wall", "-Werror",
                    "-I", os.path.join(ROOT, "include"), *extra,
                    source_path, "-o", out], check=True)
    return out


class ModuleTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_example_module_loads_and_serves_with_its_options(self):
        so = build_module(os.path.join(ROOT, "examples", "upper.c"), self.dir)
        port = free_port()
        config = (f"[server]\nmodules = {so}\n[listener shout]\n"
                  f"listen = 127.0.0.1:{port}\nprotocol = upper\nmax_line = 16\n")
        with Percored(listeners=(), config=config) as srv:
            srv.ports["shout"] = port
            s = srv.connect("shout")
            s.sendall(b"hello ")
            s.sendall(b"world\nshort\n")
            self.assertEqual(recv_exactly(s, 18), b"HELLO WORLD\nSHORT\n")
            s.sendall(b"this line is far too long\n")
            self.assertEqual(recv_exactly(s, 18), b"ERR line too long\n")
            s.sendall(b"quit\n")
            self.assertEqual(recv_exactly(s, 4), b"BYE\n")
            self.assertEqual(s.recv(10), b"")
            s.close()

    def test_a_bare_name_is_looked_up_in_the_module_directory(self):
        build_module(os.path.join(ROOT, "examples", "upper.c"), self.dir)
        port = free_port()
        for name in ("upper", "upper.so"):
            with self.subTest(name=name):
                config = (f"[server]\nmodule_dir = {self.dir}\n"
                          f"modules = {name}\n[listener shout]\n"
                          f"listen = 127.0.0.1:{port}\nprotocol = upper\n")
                with Percored(listeners=(), config=config) as srv:
                    srv.ports["shout"] = port
                    with srv.connect("shout") as s:
                        s.sendall(b"bare\n")
                        self.assertEqual(recv_exactly(s, 5), b"BARE\n")
        path = os.path.join(self.dir, "missing.ini")
        with open(path, "w") as f:
            f.write(f"[server]\nmodule_dir = {self.dir}\n\nmodules = shout\n")
        r = run(["-t", "-c", path])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, f"percored: {path}:4: [server] modules: "
                         f"module 'shout': looked for {self.dir}/shout.so (in "
                         "server.module_dir): No such file or directory; give "
                         "a path (with a '/') to load one from elsewhere\n")

    def test_without_module_dir_the_build_trees_modules_are_used(self):
        """The installed percored looks in PREFIX/lib/percore/modules
        (test_systemd_real serves a packaged module from there); one run
        from the build tree looks in the build's modules/."""
        from percored import BINARY
        modules = os.path.join(os.path.dirname(os.path.abspath(BINARY)),
                               "modules")
        os.makedirs(modules, exist_ok=True)
        so = build_module(os.path.join(ROOT, "examples", "upper.c"), self.dir)
        target = os.path.join(modules, "pc-test-upper.so")
        shutil.copy(so, target)
        self.addCleanup(os.unlink, target)
        r = run(["-t", "--set", "server.modules=pc-test-upper",
                 "--listen", "upper@127.0.0.1:1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["-t", "--set", "server.modules=pc-test-none",
                 "--listen", "upper@127.0.0.1:1"])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"looked for {os.path.realpath(modules)}/pc-test-none.so "
                      "(in the default module directory)", r.stderr)

    def test_module_option_errors_name_the_line(self):
        so = build_module(os.path.join(ROOT, "examples", "upper.c"), self.dir)
        path = os.path.join(self.dir, "bad.ini")
        with open(path, "w") as f:
            f.write(f"[server]\nmodules = {so}\n[listener shout]\n"
                    "listen = 127.0.0.1:1\nprotocol = upper\nmax_line = 1\n")
        r = run(["-t", "-c", path])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:6: [listener shout] max_line: 1 is out of range", r.stderr)

    def test_module_built_for_another_abi_is_refused(self):
        src = os.path.join(self.dir, "old.c")
        with open(src, "w") as f:
            f.write('#include <percore/percore.h>\n'
                    'static size_t d(struct pc_conn *c, const char *p, size_t n)'
                    '{ (void)c; (void)p; return n; }\n'
                    'const struct pc_proto percore_module = {.abi = 0x70630000u,'
                    ' .name = "old", .on_data = d};\n')
        so = build_module(src, self.dir)
        r = run(["-t", "--set", f"server.modules={so}"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("built for percore ABI 0x70630000", r.stderr)
        self.assertIn("rebuild it against these headers", r.stderr)

    def test_missing_module_file_is_reported(self):
        r = run(["-t", "--set", "server.modules=/nonexistent/mod.so"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--set server.modules: [server] modules: module "
                      "/nonexistent/mod.so: cannot load", r.stderr)

    def test_module_error_names_the_file_and_line(self):
        # fuzz_config's F1: the error named neither file nor line.
        ini = os.path.join(self.dir, "m.ini")
        with open(ini, "w") as f:
            f.write("[server]\nworkers = 1\nmodules = /nonexistent/m.so\n")
        r = run(["-t", "-c", ini])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{ini}:3: [server] modules: module /nonexistent/m.so: "
                      "cannot load", r.stderr)


if __name__ == "__main__":
    unittest.main()
