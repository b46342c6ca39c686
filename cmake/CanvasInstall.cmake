# SPDX-License-Identifier: Apache-2.0
# What `cmake --install` puts where (docs/install.md): include/canvas.h, libcanvas.a and
# libcanvas.so, canvas.pc, the CMake package (find_package(canvas): canvas::canvas is the
# shared library, canvas::canvas_static the static one), the canvas CLI, its man page and
# its bash completion. Included from CMakeLists.txt once the targets exist.
include(CMakePackageConfigHelpers)

# Until 1.0 a minor release may change the ABI, so the soname and the package's
# compatibility follow MAJOR.MINOR (libcanvas.so.0.1); from 1.0 on, MAJOR alone.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(CANVAS_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  set(CANVAS_COMPATIBILITY SameMinorVersion)
else()
  set(CANVAS_SOVERSION ${PROJECT_VERSION_MAJOR})
  set(CANVAS_COMPATIBILITY SameMajorVersion)
endif()
set_target_properties(canvas_shared PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${CANVAS_SOVERSION}
                      EXPORT_NAME canvas)

install(FILES ${PROJECT_SOURCE_DIR}/include/canvas.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS canvas_shared canvas_static EXPORT canvasTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS canvas RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(CANVAS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/canvas)
install(EXPORT canvasTargets NAMESPACE canvas:: DESTINATION ${CANVAS_CMAKE_DIR})
configure_file(${PROJECT_SOURCE_DIR}/cmake/canvasConfig.cmake.in ${PROJECT_BINARY_DIR}/canvasConfig.cmake @ONLY)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/canvasConfigVersion.cmake
                                 COMPATIBILITY ${CANVAS_COMPATIBILITY})
install(FILES ${PROJECT_BINARY_DIR}/canvasConfig.cmake ${PROJECT_BINARY_DIR}/canvasConfigVersion.cmake
        DESTINATION ${CANVAS_CMAKE_DIR})

# pkg-config: the libraries libcanvas uses are private (only a static link needs them).
# The prefix is found from where canvas.pc lies (${pcfiledir}), so `cmake --install --prefix`
# and a moved tree work; an absolute libdir or includedir is written as it is.
file(RELATIVE_PATH CANVAS_PC_UP /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" CANVAS_PC_UP "${CANVAS_PC_UP}")
set(CANVAS_PC_PREFIX "\${pcfiledir}/${CANVAS_PC_UP}")
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(CANVAS_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(CANVAS_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/canvas.pc.in ${PROJECT_BINARY_DIR}/canvas.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/canvas.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The man page and the bash completion are made from the CLI's own help texts
# (`canvas --help`, `canvas CMD --help`), so they cannot say something the CLI does not.
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/canvas.1
                   COMMAND bash ${PROJECT_SOURCE_DIR}/tools/gen_manpage.sh $<TARGET_FILE:canvas>
                           ${PROJECT_VERSION} > ${PROJECT_BINARY_DIR}/canvas.1.tmp
                   COMMAND ${CMAKE_COMMAND} -E rename ${PROJECT_BINARY_DIR}/canvas.1.tmp ${PROJECT_BINARY_DIR}/canvas.1
                   DEPENDS canvas ${PROJECT_SOURCE_DIR}/tools/gen_manpage.sh ${PROJECT_SOURCE_DIR}/tools/cli_help.sh
                   COMMENT "Man page canvas.1 from the CLI's help texts")
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/canvas.bash-completion
                   COMMAND bash ${PROJECT_SOURCE_DIR}/tools/gen_completion.sh $<TARGET_FILE:canvas>
                           > ${PROJECT_BINARY_DIR}/canvas.bash-completion.tmp
                   COMMAND ${CMAKE_COMMAND} -E rename ${PROJECT_BINARY_DIR}/canvas.bash-completion.tmp
                           ${PROJECT_BINARY_DIR}/canvas.bash-completion
                   DEPENDS canvas ${PROJECT_SOURCE_DIR}/tools/gen_completion.sh ${PROJECT_SOURCE_DIR}/tools/cli_help.sh
                   COMMENT "Bash completion from the CLI's help texts")
add_custom_target(canvas_cli_docs ALL DEPENDS ${PROJECT_BINARY_DIR}/canvas.1 ${PROJECT_BINARY_DIR}/canvas.bash-completion)
install(FILES ${PROJECT_BINARY_DIR}/canvas.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_BINARY_DIR}/canvas.bash-completion DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME canvas)
