# ic_install_configured(TEMPLATE DESTINATION): install TEMPLATE (a file
# ending in .in) with the paths it names filled in at install time, when
# the prefix is known for certain (cmake --install --prefix, DESTDIR for a
# package), not when the build was configured. A template may use @prefix@,
# @bindir@, @sbindir@, @libdir@, @includedir@ and @PROJECT_VERSION@.
# DESTINATION is relative to the prefix, or absolute.
function(ic_install_configured template destination)
  get_filename_component(name ${template} NAME_WLE)
  if(IS_ABSOLUTE ${destination})
    set(dest ${destination})
  else()
    set(dest "\${CMAKE_INSTALL_PREFIX}/${destination}")
  endif()
  install(CODE "
    set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
    set(bindir \"\${prefix}/${CMAKE_INSTALL_BINDIR}\")
    set(sbindir \"\${prefix}/${CMAKE_INSTALL_SBINDIR}\")
    set(libdir \"\${prefix}/${CMAKE_INSTALL_LIBDIR}\")
    set(includedir \"\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}\")
    set(PROJECT_VERSION ${PROJECT_VERSION})
    configure_file(${template} ${CMAKE_BINARY_DIR}/install-configured/${name} @ONLY)
    file(INSTALL ${CMAKE_BINARY_DIR}/install-configured/${name} DESTINATION \"${dest}\")
  ")
endfunction()
