# FindLuv: locate lua5.4-luv through pkg-config and expose the imported
# target brine::luv.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LUV QUIET IMPORTED_TARGET lua5.4-luv)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Luv REQUIRED_VARS LUV_FOUND
  VERSION_VAR LUV_VERSION)
if(Luv_FOUND AND NOT TARGET brine::luv)
  add_library(brine::luv ALIAS PkgConfig::LUV)
endif()
