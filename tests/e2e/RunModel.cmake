# kilnc --model MODEL -> artifact -> kiln-run with outputs written as .npy.
# Fails when a tool fails or when no output file appears.
file(REMOVE_RECURSE ${WORKDIR})
file(MAKE_DIRECTORY ${WORKDIR})
execute_process(
  COMMAND ${KILNC} --model ${MODEL} -o ${WORKDIR}/${MODEL}.kiln
          --dump-ir-dir ${WORKDIR}/ir
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kilnc failed for ${MODEL} (${rc})")
endif()
execute_process(
  COMMAND ${KILN_RUN} ${WORKDIR}/${MODEL}.kiln --summary --bench 2
          --output-dir ${WORKDIR}/out
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kiln-run failed for ${MODEL} (${rc})")
endif()
file(GLOB outputs ${WORKDIR}/out/*.npy)
if(NOT outputs)
  message(FATAL_ERROR "kiln-run wrote no outputs for ${MODEL}")
endif()
file(GLOB dumps ${WORKDIR}/ir/*.mlir)
list(LENGTH dumps ndumps)
if(ndumps LESS 4)
  message(FATAL_ERROR "expected the input IR and one dump per pass, got ${ndumps}")
endif()
