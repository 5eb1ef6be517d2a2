# libisocache.so: the vdisk and filter API as one shared library, for
# programs that open vdisks and for filters built out of tree; and the
# same API exported from the front ends, so a filter .so they load binds
# its ic_next_* calls to the stack it runs in.
#
# The exported functions are exactly those declared in the public headers
# below: they are read from the headers at configure time, so a function
# added there is exported without a list to keep. Everything else stays
# local. The objects of ic_vdisk and ic_filter are built with default
# visibility (the project default is hidden); the version script and the
# dynamic list then decide what leaves the library and the executables.
set(IC_PUBLIC_HEADERS
  ${PROJECT_SOURCE_DIR}/include/isocache/vdisk.h
  ${PROJECT_SOURCE_DIR}/include/isocache/filter.h
  ${PROJECT_SOURCE_DIR}/include/isocache/layer.h)

set(ic_api_symbols "")
foreach(header ${IC_PUBLIC_HEADERS})
  file(STRINGS ${header} decls REGEX "^[a-z][^(]*[ *]ic_[a-z0-9_]+\\(")
  foreach(decl ${decls})
    string(REGEX REPLACE "^[^(]*[ *](ic_[a-z0-9_]+)\\(.*" "\\1" sym "${decl}")
    list(APPEND ic_api_symbols ${sym})
  endforeach()
endforeach()
list(REMOVE_DUPLICATES ic_api_symbols)
list(SORT ic_api_symbols)
list(JOIN ic_api_symbols ";\n\t" ic_api_lines)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${IC_PUBLIC_HEADERS})
file(WRITE ${CMAKE_BINARY_DIR}/isocache.map
  "ISOCACHE_${PROJECT_VERSION_MAJOR} {\nglobal:\n\t${ic_api_lines};\nlocal:\n\t*;\n};\n")
file(WRITE ${CMAKE_BINARY_DIR}/isocache.dynlist "{\n\t${ic_api_lines};\n};\n")

target_compile_options(ic_vdisk PRIVATE -fvisibility=default)
target_compile_options(ic_filter PRIVATE -fvisibility=default)

add_library(isocache SHARED
  $<TARGET_OBJECTS:ic_vdisk> $<TARGET_OBJECTS:ic_owner> $<TARGET_OBJECTS:ic_filter> $<TARGET_OBJECTS:ic_meta>
  $<TARGET_OBJECTS:ic_etcd> $<TARGET_OBJECTS:ic_common> $<TARGET_OBJECTS:ic_cached_client>
  $<TARGET_OBJECTS:ic_cached_proto>)
target_link_libraries(isocache PRIVATE PkgConfig::LMDB PkgConfig::URING PkgConfig::JSONC
  Threads::Threads ${CMAKE_DL_LIBS})
target_link_options(isocache PRIVATE -Wl,--version-script=${CMAKE_BINARY_DIR}/isocache.map)
if(NOT IC_SANITIZE AND NOT IC_TSAN) # a sanitizer's runtime comes with the executable
  target_link_options(isocache PRIVATE -Wl,--no-undefined)
endif()
set_target_properties(isocache PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  LINK_DEPENDS ${CMAKE_BINARY_DIR}/isocache.map)
install(TARGETS isocache LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${IC_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/isocache)

# The front ends that build filter stacks from --filter specs.
foreach(exe isocache-nbd isocache-fuse)
  if(TARGET ${exe})
    target_link_options(${exe} PRIVATE -Wl,--dynamic-list=${CMAKE_BINARY_DIR}/isocache.dynlist)
    set_property(TARGET ${exe} APPEND PROPERTY LINK_DEPENDS ${CMAKE_BINARY_DIR}/isocache.dynlist)
  endif()
endforeach()

# isocache.pc names the prefix the files are installed to.
ic_install_configured(${PROJECT_SOURCE_DIR}/cmake/isocache.pc.in ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
