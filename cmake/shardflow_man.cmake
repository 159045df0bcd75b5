# cmake/shardflow_man.cmake - writes the man page of the shardflow command from its --help (-P).
#
#   cmake -DHELP2MAN=... -DPROGRAM=path/to/shardflow -DVERSION=0.12.0 -DDESCRIPTION="..."
#         -DLICENSE=Apache-2.0 -DOUTPUT=shardflow.1 -P shardflow_man.cmake
#
# help2man turns `shardflow --help` into the page (NAME, SYNOPSIS, options, the exit codes of the
# footer); a SUBCOMMANDS section gets each subcommand's own --help, verbatim, under the heading
# "shardflow SUB" (the subcommands are the ones the top-level --help lists under "Subcommands:").
# The program runs from PATH under its own name, so its usage lines read "shardflow ...", not the
# build tree's path.
foreach(var HELP2MAN PROGRAM VERSION DESCRIPTION LICENSE OUTPUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "shardflow_man.cmake: -D${var}=... is required")
  endif()
endforeach()
get_filename_component(program_dir "${PROGRAM}" DIRECTORY)
get_filename_component(program_name "${PROGRAM}" NAME)
set(ENV{PATH} "${program_dir}:$ENV{PATH}")

# The --help of `program_name ARGS...`, failing the build when the program fails.
function(help_of out)
  execute_process(COMMAND ${program_name} ${ARGN} --help
    OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "`${program_name} ${ARGN} --help` failed (${rc}): ${err}")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

help_of(top)
string(REGEX REPLACE ".*\nSubcommands:\n" "" listed "${top}")
string(REGEX REPLACE "\n\n.*" "" listed "${listed}")
string(REGEX MATCHALL "(^|\n)  [a-z][a-z0-9-]*" subcommands "${listed}")
if(NOT subcommands)
  message(FATAL_ERROR "`${program_name} --help` lists no subcommands under \"Subcommands:\"")
endif()

# Each subcommand's help as roff: one .SS per subcommand, no filling, every line behind \& so that
# none is read as a request (a leading . or ') or as a help2man section ([...]), backslashes as \e.
string(CONCAT include "[DESCRIPTION]\n"
  "Every subcommand has options of its own: `${program_name} SUBCOMMAND --help` prints them, and "
  "the section SUBCOMMANDS below repeats each one's help.\n[SUBCOMMANDS]\n")
foreach(sub IN LISTS subcommands)
  string(STRIP "${sub}" sub)
  help_of(text ${sub})
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "\n$" "" text "${text}")
  string(REPLACE "\n" "\n\\&" text "${text}")
  string(APPEND include ".SS \"${program_name} ${sub}\"\n.nf\n\\&${text}\n.fi\n")
endforeach()
string(APPEND include "[COPYRIGHT]\nLicensed under the ${LICENSE} license (the Apache License, "
                      "Version 2.0): share/doc/shardflow/LICENSE.\n")
get_filename_component(out_dir "${OUTPUT}" DIRECTORY)
set(include_file "${out_dir}/${program_name}.h2m")
file(WRITE "${include_file}" "${include}")

execute_process(COMMAND ${HELP2MAN} --no-info --section=1 "--name=${DESCRIPTION}"
                        "--version-string=${VERSION}" "--include=${include_file}"
                        "--output=${OUTPUT}" ${program_name}
  ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUTPUT}")
  message(FATAL_ERROR "help2man failed (${rc}): ${err}")
endif()
