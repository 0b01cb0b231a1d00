# FindUv: locate libuv through pkg-config and expose the imported
# target brine::uv.
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV QUIET IMPORTED_TARGET libuv)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Uv REQUIRED_VARS UV_FOUND
  VERSION_VAR UV_VERSION)
if(Uv_FOUND AND NOT TARGET brine::uv)
  add_library(brine::uv ALIAS PkgConfig::UV)
endif()
