# FindZmq: locate libzmq through pkg-config and expose the imported
# target brine::zmq.
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZMQ QUIET IMPORTED_TARGET libzmq)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Zmq REQUIRED_VARS ZMQ_FOUND
  VERSION_VAR ZMQ_VERSION)
if(Zmq_FOUND AND NOT TARGET brine::zmq)
  add_library(brine::zmq ALIAS PkgConfig::ZMQ)
endif()
