# Man pages, from the scdoc sources in docs/man/NAME.SECTION.scd. scdoc:
# a small C program whose markup reads like the Markdown of docs/, with no
# toolchain behind it (pandoc would pull in Haskell's), and unlike
# help2man it can write a section 3 page about an API.
find_program(SCDOC scdoc)
if(NOT SCDOC)
  message(WARNING "scdoc not found: man pages are not built (apt-get install scdoc)")
  return()
endif()

file(GLOB IC_MAN_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.scd)
set(IC_MAN_PAGES "")
foreach(src ${IC_MAN_SOURCES})
  get_filename_component(page ${src} NAME_WLE) # isocache-nbd.8
  string(REGEX REPLACE ".*\\.([1-9])$" "\\1" section ${page})
  set(out ${CMAKE_BINARY_DIR}/man/${page})
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${SCDOC} < ${src} > ${out}
    DEPENDS ${src} VERBATIM)
  list(APPEND IC_MAN_PAGES ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(man ALL DEPENDS ${IC_MAN_PAGES})
