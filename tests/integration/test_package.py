"""The Debian packages as Debian and a module author meet them: lintian has
nothing to say, the daemon is hardened and stripped with its debug symbols
in -dbgsym, every package carries its copyright and changelog, the man
pages list every config key, and libpercore-dev builds a module out of tree
with find_package(percore) and with pkg-config. test_systemd_real.py
installs the packages in a booted systemd and serves such a module from
/usr/lib/percore/modules.

Under a sanitizer build the whole file skips: what ships is built
without sanitizers (their runtimes replace the fortified functions, and
lintian would rightly complain), and the plain suite checks what ships."""

import glob
import gzip
import os
import re
import shutil
import tempfile
import unittest

from percored import SANITIZED, Percored, free_port, recv_exactly
from test_systemd_units import BUILD, ROOT, build_packages, sh

LINTIAN = shutil.which("lintian")
CC = shutil.which("cc") or shutil.which("gcc")
MAINTAINER = "percore authors <percore@users.noreply.github.com>"
# Info tags lintian may still print, each with why it stays. (The tags the
# packages override carry their reasons in deploy/debian/*.lintian-overrides.)
ALLOWED_INFO = {
    "cannot-check-whether-usr-share-doc-symlink-points-to-foreign-package":
        "a -dbgsym's /usr/share/doc entry links to its binary package's, "
        "which it depends on with the exact version; lintian can only see "
        "that both come from one source in a .changes file, and CPack "
        "writes none",
    "spelling-error-in-binary thSI this":
        "four bytes of machine code in percored's .text that strings(1) "
        "reads as a word",
}
NOT_PACKAGED = "a sanitizer build is not what ships (no hardening, " \
               "sanitizer runtimes)"


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    return ""


def unpack(deb):
    """deb's files in a fresh directory (dpkg -x); its path."""
    d = tempfile.mkdtemp(prefix="pc-x-")
    r = sh(["dpkg-deb", "-x", deb, d])
    if r.returncode != 0:
        raise AssertionError(r.stderr)
    return d


def control(deb):
    return sh(["dpkg-deb", "-f", deb]).stdout


@unittest.skipUnless(shutil.which("dpkg-deb") and shutil.which("cpack"),
                     "dpkg-deb or cpack is not installed")
@unittest.skipIf(SANITIZED, NOT_PACKAGED + "; the plain suite checks "
                 "the packages")
class PackageTest(unittest.TestCase):

    def tmp(self, d):
        self.addCleanup(shutil.rmtree, d, True)
        return d

    @unittest.skipUnless(LINTIAN, "lintian is not installed (deploy/"
                         "install-deps installs it)")
    def test_lintian_finds_no_errors_or_warnings(self):
        debs = sorted(build_packages().values())
        r = sh([LINTIAN, "--display-level", ">=pedantic", *debs])
        tags = re.findall(r"^([EWIPX]): (\S+): (.*)$", r.stdout, re.M)
        # lintian ran to the end (it exits 1 on an error tag, 2 when it
        # could not check); as root it says so on stderr, nothing else.
        self.assertIn(r.returncode, (0, 1), r.stderr)
        self.assertEqual([l for l in r.stderr.splitlines()
                          if "root privileges" not in l], [], r.stderr)
        bad = ["%s: %s: %s" % t for t in tags if t[0] in "EW"]
        self.assertEqual(bad, [], r.stdout)
        unexplained = ["%s: %s" % (pkg, text) for _, pkg, text in tags
                       if not any(text.startswith(a) for a in ALLOWED_INFO)]
        self.assertEqual(unexplained, [], "info/pedantic tags need a reason "
                         "(ALLOWED_INFO or a lintian override)")

    def test_packaged_daemon_is_hardened(self):
        if cache_value("PC_HARDEN") != "ON":
            self.skipTest("built with PC_HARDEN=OFF (a Debug build)")
        roots = {}
        for pkg, binary in (("percored", "usr/sbin/percored"),
                            ("percore-bench", "usr/bin/percore-bench")):
            roots[pkg] = self.tmp(unpack(build_packages()[pkg]))
            path = os.path.join(roots[pkg], binary)
            dyn = sh(["readelf", "-d", path]).stdout
            self.assertRegex(dyn, r"\(FLAGS\)\s+BIND_NOW", binary)
            self.assertRegex(dyn, r"\(FLAGS_1\)\s+Flags: NOW PIE", binary)
            self.assertIn("GNU_RELRO", sh(["readelf", "-lW", path]).stdout)
            self.assertRegex(sh(["readelf", "-h", path]).stdout,
                             r"Type:\s+DYN \(Position-Independent")
            syms = sh(["nm", "-D", path]).stdout
            self.assertIn("__stack_chk_fail", syms, binary)
            self.assertRegex(syms, r"__\w+_chk@", binary)
        self.assertIn("__snprintf_chk", sh(["nm", "-D", os.path.join(
            roots["percored"], "usr/sbin/percored")]).stdout)

    def test_binaries_are_stripped_with_debug_symbols_in_dbgsym(self):
        debs = build_packages()
        for pkg, binary in (("percored", "usr/sbin/percored"),
                            ("percore-bench", "usr/bin/percore-bench")):
            path = os.path.join(self.tmp(unpack(debs[pkg])), binary)
            self.assertNotIn(".symtab", sh(["readelf", "-SW", path]).stdout)
            build_id = re.search(r"Build ID: ([0-9a-f]+)",
                                 sh(["readelf", "-n", path]).stdout).group(1)
            self.assertIn(pkg + "-dbgsym", debs)
            dbg = self.tmp(unpack(debs[pkg + "-dbgsym"]))
            debug = os.path.join(dbg, "usr/lib/debug/.build-id", build_id[:2],
                                 build_id[2:] + ".debug")
            self.assertTrue(os.path.exists(debug), pkg)
            self.assertIn(".debug_info", sh(["readelf", "-SW", debug]).stdout)
            self.assertIn("Depends: %s (= " % pkg,
                          control(debs[pkg + "-dbgsym"]))

    def test_control_fields_name_a_real_maintainer_and_describe(self):
        sections = {"percored": "net", "libpercore-dev": "libdevel",
                    "percore-bench": "net"}
        for pkg, section in sections.items():
            c = control(build_packages()[pkg])
            self.assertIn("Maintainer: %s\n" % MAINTAINER, c)
            self.assertIn("Section: %s\n" % section, c)
            self.assertIn("Priority: optional\n", c)
            desc = re.search(r"^Description: (.*)\n((?: .*\n)+)", c, re.M)
            self.assertIsNotNone(desc, c)
            synopsis, body = desc.group(1), desc.group(2)
            self.assertLess(len(synopsis), 80)
            self.assertNotRegex(synopsis, r"^(a|an|the) |\.$", pkg)
            self.assertGreaterEqual(len(body.splitlines()), 3, pkg)
        self.assertIn("Architecture: all",
                      control(build_packages()["libpercore-dev"]))

    def test_every_package_has_its_copyright_and_changelog(self):
        for pkg in ("percored", "libpercore-dev", "percore-bench"):
            deb = build_packages()[pkg]
            root = self.tmp(unpack(deb))
            doc = os.path.join(root, "usr/share/doc", pkg)
            with open(os.path.join(doc, "copyright")) as f:
                text = f.read()
            self.assertTrue(text.startswith("Format: https://www.debian.org/"
                                            "doc/packaging-manuals/"
                                            "copyright-format/1.0/"))
            self.assertIn("License: BSD-2-Clause", text)
            self.assertIn("Copyright: 2026 The percore authors", text)
            with gzip.open(os.path.join(doc, "changelog.Debian.gz"), "rt") as f:
                first = f.readline()
            version = re.search(r"^Version: (.*)$", control(deb), re.M)
            self.assertEqual(first.split()[1], "(%s)" % version.group(1))
        with open(os.path.join(ROOT, "LICENSE")) as f:
            self.assertIn("Copyright (c) 2026, The percore authors", f.read())

    def test_the_docs_are_installed_where_help_says(self):
        root = self.tmp(unpack(build_packages()["percored"]))
        doc = os.path.join(root, "usr/share/doc/percored")
        pages = [p for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
                 if not p.endswith("protocol-modules.md")]
        pages += glob.glob(os.path.join(ROOT, "docs", "protocols", "*.md"))
        pages += glob.glob(os.path.join(ROOT, "docs", "img", "*.png"))
        self.assertGreater(len(pages), 10)
        for page in pages:
            rel = os.path.relpath(page, os.path.join(ROOT, "docs"))
            self.assertTrue(os.path.isfile(os.path.join(doc, rel)), rel)
        self.assertTrue(os.path.isfile(os.path.join(doc, "README.md")))
        # The installed binary names its prefix's docs (here the unpacked
        # tree's /usr): the directory that holds them.
        r = sh([os.path.join(root, "usr/sbin/percored"), "--help"])
        m = re.search(r"^Docs: (\S+)/$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(os.path.realpath(m.group(1)), os.path.realpath(doc))
        self.assertTrue(os.path.isfile(os.path.join(m.group(1),
                                                    "operations.md")))

    def test_man_pages_render_cleanly_and_list_every_config_key(self):
        root = self.tmp(unpack(build_packages()["percored"]))
        bench = self.tmp(unpack(build_packages()["percore-bench"]))
        pages = [os.path.join(root, "usr/share/man/man8/percored.8.gz"),
                 os.path.join(root, "usr/share/man/man5/percored.ini.5.gz"),
                 os.path.join(bench, "usr/share/man/man1/percore-bench.1.gz")]
        env = dict(os.environ, LC_ALL="C.UTF-8", MANROFFSEQ="", MANWIDTH="80")
        for page in pages:
            with open(page, "rb") as f:
                self.assertEqual(f.read(2), b"\x1f\x8b", page)
            if shutil.which("man"):
                r = sh(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8",
                        "-Z", page], env=env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "", page)
        with gzip.open(pages[1], "rt") as f:
            ini5 = f.read()
        # The keys as the sources declare them: the parser's tables and the
        # built-in modules' option lists.
        with open(os.path.join(ROOT, "core", "config_keys.c")) as f:
            keys = re.findall(r'\{"(\w+)", K_', f.read())
        for path in glob.glob(os.path.join(ROOT, "protocols", "*", "*.c")):
            with open(path) as f:
                keys += re.findall(r'\{"(\w+)", PC_OPT_', f.read())
        self.assertGreater(len(keys), 30)
        for key in keys:
            self.assertIn("\n.B %s\n" % key.replace("-", "\\-"), ini5, key)
        self.assertIn("/usr/lib/percore/modules", ini5)

    # ---- building a module against libpercore-dev ----------------------

    def dev_root(self):
        """libpercore-dev unpacked: the prefix is <root>/usr."""
        return self.tmp(unpack(build_packages()["libpercore-dev"]))

    def serves(self, so):
        """The module so loads into this build's percored and answers."""
        port = free_port()
        config = ("[server]\nmodules = %s\n[listener shout]\n"
                  "listen = 127.0.0.1:%d\nprotocol = upper\n" % (so, port))
        with Percored(listeners=(), config=config) as srv:
            srv.ports["shout"] = port
            s = srv.connect("shout")
            s.sendall(b"packaged\n")
            self.assertEqual(recv_exactly(s, 9), b"PACKAGED\n")
            s.close()

    @unittest.skipUnless(CC, "no C compiler")
    def test_module_builds_with_find_package_against_libpercore_dev(self):
        root = self.dev_root()
        src = self.tmp(tempfile.mkdtemp(prefix="pc-mod-"))
        shutil.copy(os.path.join(
            root, "usr/share/doc/libpercore-dev/examples/upper.c"), src)
        with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.18)\n"
                    "project(upper C)\n"
                    "find_package(percore 0.1 REQUIRED)\n"
                    "percore_add_module(upper upper.c)\n"
                    "target_compile_options(upper PRIVATE -Wall -Werror)\n"
                    "message(STATUS \"module dir: ${percore_MODULE_DIR}\")\n")
        out = os.path.join(src, "build")
        r = sh(["cmake", "-S", src, "-B", out,
                "-DCMAKE_PREFIX_PATH=" + os.path.join(root, "usr")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("module dir: %s/usr/lib/percore/modules" % root,
                      r.stdout)
        r = sh(["cmake", "--build", out])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.serves(os.path.join(out, "upper.so"))

    @unittest.skipUnless(CC and shutil.which("pkg-config"),
                         "no C compiler or pkg-config")
    def test_module_builds_with_pkg_config_against_libpercore_dev(self):
        root = self.dev_root()
        env = dict(os.environ,
                   PKG_CONFIG_PATH=os.path.join(root, "usr/share/pkgconfig"))
        # --define-prefix: the unpacked tree stands in for /usr.
        r = sh(["pkg-config", "--define-prefix", "--cflags", "--libs",
                "percore"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["-I%s/usr/include" % root],
                         "Cflags only: a module links nothing")
        out = self.tmp(tempfile.mkdtemp(prefix="pc-mod-"))
        so = os.path.join(out, "upper.so")
        r = sh([CC, "-shared", "-fPIC", "-O2", "-Wall", "-Werror",
                *r.stdout.split(), os.path.join(
                    root, "usr/share/doc/libpercore-dev/examples/upper.c"),
                "-o", so])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.serves(so)


if __name__ == "__main__":
    unittest.main()
