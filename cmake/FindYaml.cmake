# FindYaml: locate yaml-0.1 through pkg-config and expose the imported
# target brine::yaml.
find_package(PkgConfig REQUIRED)
pkg_check_modules(YAML QUIET IMPORTED_TARGET yaml-0.1)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Yaml REQUIRED_VARS YAML_FOUND
  VERSION_VAR YAML_VERSION)
if(Yaml_FOUND AND NOT TARGET brine::yaml)
  add_library(brine::yaml ALIAS PkgConfig::YAML)
endif()
