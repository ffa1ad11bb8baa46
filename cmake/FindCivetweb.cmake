# FindCivetweb.cmake - Debian's civetweb ships no .pc file and a broken CMake
# config (its targets file names /usr/bin/civetweb), so find it by hand.
find_path(Civetweb_INCLUDE_DIR civetweb.h)
find_library(Civetweb_LIBRARY civetweb)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Civetweb REQUIRED_VARS Civetweb_LIBRARY Civetweb_INCLUDE_DIR)
if(Civetweb_FOUND AND NOT TARGET Civetweb::Civetweb)
  find_package(Threads REQUIRED)
  add_library(Civetweb::Civetweb UNKNOWN IMPORTED)
  set_target_properties(Civetweb::Civetweb PROPERTIES
    IMPORTED_LOCATION "${Civetweb_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Civetweb_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
mark_as_advanced(Civetweb_INCLUDE_DIR Civetweb_LIBRARY)
