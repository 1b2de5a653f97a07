# Runs at install time (install(CODE) in deploy/CMakeLists.txt): writes the
# files whose text names installed paths, for the prefix installed to.
# DESTDIR is honoured by file(INSTALL).
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
if(EXISTS "${ini}")
  if(EXISTS "$ENV{DESTDIR}${sysconfdir}/percore/percored.ini")
    message(STATUS "Keeping: $ENV{DESTDIR}${sysconfdir}/percore/percored.ini")
  else()
    file(INSTALL "${ini}" DESTINATION "${sysconfdir}/percore")
  endif()
else()
  message(WARNING "deploy/percored.ini is missing: no default config installed")
endif()

file(WRITE "${out}/percore.pc" "prefix=${prefix}
includedir=\${prefix}/${PC_INCLUDEDIR}
libdir=\${prefix}/${PC_LIBDIR}

Name: percore
Description: reactor-per-core TCP server framework (module API, libpercore)
Version: ${PC_VERSION}
Cflags: -I\${includedir}
Libs: -L\${libdir} -lpercore
Libs.private: ${PC_LIBS_PRIVATE}
")
file(INSTALL "${out}/percore.pc" DESTINATION "${prefix}/${PC_LIBDIR}/pkgconfig")
