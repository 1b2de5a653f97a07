# Runs at install time (install(CODE) in deploy/CMakeLists.txt): writes the
# files whose text names installed paths, for the prefix installed to.
# PC_PART says which: "units" (component percored) or "pc" (component dev),
# so each package gets only its own. DESTDIR is honoured by file(INSTALL).
set(prefix "${CMAKE_INSTALL_PREFIX}")
# GNU rule: the /usr prefix keeps its configuration in /etc.
if(prefix STREQUAL "/usr")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${prefix}/etc")
endif()
set(sbindir "${prefix}/${PC_SBINDIR}")
set(out "${PC_DEPLOY_BIN}/installed")
file(MAKE_DIRECTORY "${out}")

if(PC_PART STREQUAL "units")
  foreach(unit percored.service percored.socket)
    file(READ "${PC_DEPLOY_SRC}/${unit}" text)
    string(REPLACE "/usr/sbin/percored" "${sbindir}/percored" text "${text}")
    string(REPLACE "/etc/percore/" "${sysconfdir}/percore/" text "${text}")
    file(WRITE "${out}/${unit}" "${text}")
  endforeach()
  file(INSTALL "${out}/percored.service" "${out}/percored.socket"
       DESTINATION "${prefix}/lib/systemd/system")

  # The default config is the operator's once installed: never overwritten.
  set(ini "${PC_DEPLOY_SRC}/percored.ini")
  if(EXISTS "$ENV{DESTDIR}${sysconfdir}/percore/percored.ini")
    message(STATUS "Keeping: $ENV{DESTDIR}${sysconfdir}/percore/percored.ini")
  else()
    file(INSTALL "${ini}" DESTINATION "${sysconfdir}/percore")
  endif()
endif()

if(PC_PART STREQUAL "pc")
  # No Libs: there is no library to link. A module is a shared object whose
  # pc_* calls percored resolves when it loads it (the daemon exports them),
  # so building one needs only the headers.
  file(WRITE "${out}/percore.pc" "prefix=${prefix}
includedir=\${prefix}/${PC_INCLUDEDIR}
moduledir=\${prefix}/${PC_MODULE_DIR}

# For building percored protocol modules (cc -shared -fPIC \$(pkg-config
# --cflags percore) mod.c -o mod.so), loaded with [server] modules from
# \${moduledir}. Cflags only: a module links nothing, percored provides the
# pc_* functions when it loads it; percore is not a library to embed.
Name: percore
Description: percored protocol module API (headers only)
Version: ${PC_VERSION}
Cflags: -I\${includedir}
")
  file(INSTALL "${out}/percore.pc" DESTINATION "${prefix}/${PC_DATADIR}/pkgconfig")
endif()
