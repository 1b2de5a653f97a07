# CPack post-build script (CPACK_POST_BUILD_SCRIPTS, deploy/package.cmake):
# finishes each -dbgsym package CPack 3.25 makes, as dh_strip would.
#  - CPack's md5sums names the .debug files by their absolute path in the
#    build tree; dpkg and lintian need paths relative to the package root.
#  - A dbgsym package documents itself by /usr/share/doc/<pkg>-dbgsym, a
#    symlink to its binary package's directory (copyright, changelog), which
#    its exact Depends: on that package makes valid.
#  - Detached debug files are data, not programs: mode 0644.
find_program(DPKG_DEB dpkg-deb REQUIRED)
foreach(ddeb IN LISTS CPACK_PACKAGE_FILES)
  if(NOT ddeb MATCHES "\\.ddeb$")
    continue()
  endif()
  set(tree "${ddeb}.tree")
  file(REMOVE_RECURSE "${tree}")
  execute_process(COMMAND ${DPKG_DEB} -R "${ddeb}" "${tree}"
                  COMMAND_ERROR_IS_FATAL ANY)
  execute_process(COMMAND ${DPKG_DEB} -f "${ddeb}" Package
                  OUTPUT_VARIABLE pkg OUTPUT_STRIP_TRAILING_WHITESPACE
                  COMMAND_ERROR_IS_FATAL ANY)
  string(REGEX REPLACE "-dbgsym$" "" parent "${pkg}")
  file(GLOB_RECURSE debugs RELATIVE "${tree}" "${tree}/usr/lib/debug/*")
  set(sums "")
  foreach(f IN LISTS debugs)
    file(CHMOD "${tree}/${f}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
         WORLD_READ)
    file(MD5 "${tree}/${f}" sum)
    string(APPEND sums "${sum}  ${f}\n")
  endforeach()
  file(WRITE "${tree}/DEBIAN/md5sums" "${sums}")
  file(MAKE_DIRECTORY "${tree}/usr/share/doc")
  file(CREATE_LINK "${parent}" "${tree}/usr/share/doc/${pkg}" SYMBOLIC)
  execute_process(COMMAND ${DPKG_DEB} --root-owner-group -Zxz -b "${tree}" "${ddeb}"
                  OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE "${tree}")
endforeach()
