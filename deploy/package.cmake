# ---- Debian packages (CPack DEB, one package per install component) ------
#   cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-pkg -j && cpack --config build-pkg/CPackConfig.cmake
# makes percored, libpercore-dev, percore-bench and the -dbgsym packages of
# the two with binaries. tests/integration/test_package.py runs lintian on
# all of them. Included from deploy/CMakeLists.txt.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME percore)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Debian revision 1: not a native package, so each package carries
# changelog.Debian.gz (deploy/debian/changelog, whose top entry must match).
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_PACKAGE_VENDOR "The percore authors")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER
    "percore authors <percore@users.noreply.github.com>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# Absolute destinations (/etc/percore) land in the package tree.
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL percored dev bench)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: computed from the binaries' shared libraries (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# CPACK_STRIP_FILES stays off: the DEBUGINFO_PACKAGE option below strips
# each binary itself after moving its debug information to <pkg>-dbgsym
# (.ddeb, under /usr/lib/debug/.build-id as Debian's own dbgsym packages),
# and finds nothing to move in a binary stripped before. fix-dbgsym.cmake
# finishes those packages.

# -- percored
set(CPACK_DEBIAN_PERCORED_PACKAGE_NAME percored)
set(CPACK_DEBIAN_PERCORED_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PERCORED_DEBUGINFO_PACKAGE ON)
# The postinst creates the user with systemd-sysusers (as
# dh_installsysusers does) and registers the units with deb-systemd-helper.
set(CPACK_DEBIAN_PERCORED_PACKAGE_DEPENDS
    "systemd | systemd-standalone-sysusers | systemd-sysusers, init-system-helpers (>= 1.54~)")
set(CPACK_COMPONENT_PERCORED_DESCRIPTION "reactor-per-core TCP server
percored serves TCP protocols with one event loop per CPU core: each worker
thread is pinned to a core and owns its connections, so protocol modules
never take a lock. Built in are echo, a line chat and an IRC server over the
same rooms, and a Prometheus metrics endpoint; other protocols are loaded
as modules from /usr/lib/percore/modules. Any listener can speak TLS.
.
It runs as a sandboxed systemd service (Type=notify, watchdog, live reload)
with optional socket activation. Installing the package enables and starts
nothing.")
# Creates the user and registers the units; enables and starts nothing. The
# default config is a conffile: dpkg keeps the administrator's changes.
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/conffiles "/etc/percore/percored.ini\n")
set(CPACK_DEBIAN_PERCORED_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/debian/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/debian/postrm
    ${CMAKE_CURRENT_BINARY_DIR}/conffiles)

# -- libpercore-dev: headers and build metadata only, the same on every
# architecture.
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libpercore-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "percored (>= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_DEV_DESCRIPTION "module API of the percored TCP server
Headers, a pkg-config file (percore.pc) and a CMake package
(find_package(percore)) for building protocol modules that percored loads
at run time. A module is a shared object that includes percore/percore.h
and links nothing; percored provides the functions it calls.
.
An example module is in /usr/share/doc/libpercore-dev/examples.")

# -- percore-bench
set(CPACK_DEBIAN_BENCH_PACKAGE_NAME percore-bench)
set(CPACK_DEBIAN_BENCH_PACKAGE_SECTION net)
set(CPACK_DEBIAN_BENCH_DEBUGINFO_PACKAGE ON)
set(CPACK_COMPONENT_BENCH_DESCRIPTION "load generator for TCP servers
percore-bench opens many connections to a TCP server and measures
throughput, latency percentiles, and the server's CPU time and memory per
message. Its modes are echo, connection churn, idle connections, TLS
handshakes, and chat rooms speaking percored's chat, Redis, NATS or IRC.")

set(CPACK_POST_BUILD_SCRIPTS ${CMAKE_CURRENT_SOURCE_DIR}/fix-dbgsym.cmake)

include(CPack)
