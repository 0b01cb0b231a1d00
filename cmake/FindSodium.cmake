# FindSodium: locate libsodium through pkg-config and expose the imported
# target brine::sodium.
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM QUIET IMPORTED_TARGET libsodium)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Sodium REQUIRED_VARS SODIUM_FOUND
  VERSION_VAR SODIUM_VERSION)
if(Sodium_FOUND AND NOT TARGET brine::sodium)
  add_library(brine::sodium ALIAS PkgConfig::SODIUM)
endif()
