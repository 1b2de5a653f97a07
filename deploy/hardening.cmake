# Debian's hardening flags, from dpkg-buildflags, so percored is built the
# way a Debian package of it would be: fortified libc calls
# (-D_FORTIFY_SOURCE=2 -O2), -fstack-protector-strong, full RELRO
# (-z relro -z now) and a position-independent executable.
#
# On by default for the optimised build types (the package is made from
# one, and the default developer build is RelWithDebInfo, so the tests check
# the binary that ships). Off for Debug (fortify needs optimisation) and for
# sanitizer builds (their runtimes replace the fortified functions).
# Included from the top-level CMakeLists.txt before any target.
if(PC_SANITIZE STREQUAL "" AND CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo|MinSizeRel)$")
  set(PC_HARDEN_DEFAULT ON)
else()
  set(PC_HARDEN_DEFAULT OFF)
endif()
option(PC_HARDEN "Build with dpkg-buildflags' hardening flags" ${PC_HARDEN_DEFAULT})
if(NOT PC_HARDEN)
  return()
endif()

find_program(PC_DPKG_BUILDFLAGS dpkg-buildflags)
if(NOT PC_DPKG_BUILDFLAGS)
  message(FATAL_ERROR "PC_HARDEN needs dpkg-buildflags: install the Debian "
          "package dpkg-dev, or configure with -DPC_HARDEN=OFF")
endif()

# hardening=+all adds bindnow (full RELRO), which Debian 12 leaves off by
# default. Run from the source directory so -ffile-prefix-map maps it to
# "." (reproducible paths in the debug information).
function(pc_buildflag var kind)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env DEB_BUILD_MAINT_OPTIONS=hardening=+all
            ${PC_DPKG_BUILDFLAGS} --get ${kind}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    OUTPUT_VARIABLE out OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "dpkg-buildflags --get ${kind} failed")
  endif()
  separate_arguments(out UNIX_COMMAND "${out}")
  set(${var} ${out} PARENT_SCOPE)
endfunction()
pc_buildflag(PC_HARDEN_CFLAGS CFLAGS)
pc_buildflag(PC_HARDEN_CPPFLAGS CPPFLAGS)
pc_buildflag(PC_HARDEN_LDFLAGS LDFLAGS)
# Debian's -O2 would come after CMake's own level for the build type; keep
# the build type's (Release: -O3), the fortify checks work with either.
list(FILTER PC_HARDEN_CFLAGS EXCLUDE REGEX "^-O[0-9s]?$")
add_compile_options(${PC_HARDEN_CFLAGS} ${PC_HARDEN_CPPFLAGS})
add_link_options(${PC_HARDEN_LDFLAGS})
# PIE: compile and link every executable position-independent, whatever
# the compiler's default.
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
include(CheckPIESupported)
check_pie_supported()
message(STATUS "Hardening (dpkg-buildflags): ${PC_HARDEN_CFLAGS} "
        "${PC_HARDEN_CPPFLAGS} ${PC_HARDEN_LDFLAGS}")
