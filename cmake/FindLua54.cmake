# FindLua54: locate lua5.4 through pkg-config and expose the imported
# target brine::lua54.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LUA54 QUIET IMPORTED_TARGET lua5.4)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Lua54 REQUIRED_VARS LUA54_FOUND
  VERSION_VAR LUA54_VERSION)
if(Lua54_FOUND AND NOT TARGET brine::lua54)
  add_library(brine::lua54 ALIAS PkgConfig::LUA54)
endif()
