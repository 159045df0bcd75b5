# cmake/shardflow_packaging.cmake - what `cmake --install` gives beside the CMake package: the
# pkg-config files and the man page.
#
# shardflow_add_pkgconfig(NAME DESCRIPTION ... [LIBS ...] [REQUIRES ...] [PRIVATE ...] [CFLAGS ...])
#   installs lib/pkgconfig/NAME.pc from cmake/shardflow.pc.in. LIBS are the -l flags of NAME's own
#   libraries (-L${libdir} is added), REQUIRES the pkg-config packages its headers need, PRIVATE
#   those its libraries link privately. The libraries are static archives unless BUILD_SHARED_LIBS,
#   so PRIVATE packages go to Requires (a plain `pkg-config --libs` must name them to link), and to
#   Requires.private only for shared libraries. The prefix is the one `cmake --install --prefix`
#   installs to (the file is written at install time), so the paths in it are absolute.
#
# shardflow_add_man_page(TARGET NAME DESCRIPTION)
#   a target `man` (in ALL, so an install always has it) that runs help2man on TARGET's --help and
#   every subcommand's --help (cmake/shardflow_man.cmake) into NAME.1, installed to share/man/man1.
#   Without help2man there is no man page and a status line says so.
include_guard(GLOBAL)
include(GNUInstallDirs)

# An install directory as pkg-config should see it: relative ones under ${prefix}.
function(_shardflow_pc_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

function(shardflow_add_pkgconfig name)
  cmake_parse_arguments(arg "" "" "DESCRIPTION;LIBS;REQUIRES;PRIVATE;CFLAGS" ${ARGN})
  set(PC_NAME ${name})
  string(JOIN " " PC_DESCRIPTION ${arg_DESCRIPTION})
  _shardflow_pc_dir(PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
  _shardflow_pc_dir(PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
  set(requires ${arg_REQUIRES})
  set(requires_private "")
  if(BUILD_SHARED_LIBS)
    list(APPEND requires_private ${arg_PRIVATE})
  else()
    list(APPEND requires ${arg_PRIVATE})
  endif()
  string(JOIN ", " PC_REQUIRES ${requires})
  string(JOIN ", " PC_REQUIRES_PRIVATE ${requires_private})
  set(PC_LIBS "")
  if(arg_LIBS)
    string(JOIN " " PC_LIBS "-L\${libdir}" ${arg_LIBS})
  endif()
  string(JOIN " " PC_CFLAGS "-I\${includedir}" ${arg_CFLAGS})
  # Two steps: now everything but the prefix; at install time the prefix installed to, written
  # straight into the destination (a file in the build tree would be shared by concurrent installs
  # into different prefixes, as the tests/install checks are when ctest runs them in parallel).
  set(SHARDFLOW_PC_PREFIX "@SHARDFLOW_PC_PREFIX@")
  set(stage ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc.in)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/shardflow.pc.in ${stage} @ONLY)
  install(CODE "
    set(SHARDFLOW_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(_pc_dir \"${CMAKE_INSTALL_LIBDIR}/pkgconfig\")
    if(NOT IS_ABSOLUTE \"\${_pc_dir}\")
      set(_pc_dir \"\${CMAKE_INSTALL_PREFIX}/\${_pc_dir}\")
    endif()
    set(_pc \"\$ENV{DESTDIR}\${_pc_dir}/${name}.pc\")
    message(STATUS \"Installing: \${_pc}\")
    configure_file(\"${stage}\" \"\${_pc}\" @ONLY)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${_pc}\")")
endfunction()

# The link flags of an imported library that ships no .pc file (CAF): -L DIR -lNAME, without the -L
# for the compiler's own directories.
function(shardflow_pc_link_flags out file)
  get_filename_component(dir "${file}" DIRECTORY)
  get_filename_component(lib "${file}" NAME_WE)
  string(REGEX REPLACE "^lib" "" lib "${lib}")
  set(flags "-l${lib}")
  if(NOT dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
    set(flags "-L${dir}" ${flags})
  endif()
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

function(shardflow_add_man_page target name description)
  find_program(HELP2MAN_EXECUTABLE help2man)
  mark_as_advanced(HELP2MAN_EXECUTABLE)
  if(NOT HELP2MAN_EXECUTABLE)
    message(STATUS "help2man not found: no man page (Debian: apt-get install help2man)")
    return()
  endif()
  set(page ${PROJECT_BINARY_DIR}/${name}.1)
  add_custom_command(OUTPUT ${page}
    COMMAND ${CMAKE_COMMAND} -DHELP2MAN=${HELP2MAN_EXECUTABLE} -DPROGRAM=$<TARGET_FILE:${target}>
            -DVERSION=${PROJECT_VERSION} -DDESCRIPTION=${description}
            -DLICENSE=${SHARDFLOW_LICENSE} -DOUTPUT=${page}
            -P ${PROJECT_SOURCE_DIR}/cmake/shardflow_man.cmake
    DEPENDS ${target} ${PROJECT_SOURCE_DIR}/cmake/shardflow_man.cmake
    COMMENT "Generating the man page ${name}.1 from --help (help2man)"
    VERBATIM)
  add_custom_target(man ALL DEPENDS ${page})
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endfunction()
