# The gRPC API of `wgllm serve` (src/server/grpc/): Debian's gRPC core (libgrpc-dev) and
# protobuf-c, with the C message code generated from proto/ at build time.
#   WGLLM_GRPC=AUTO  built when both are found, else left out (wgllm serve has no --grpc-port)
#   WGLLM_GRPC=ON    configure fails when they are missing
#   WGLLM_GRPC=OFF   never built
set(WGLLM_GRPC AUTO CACHE STRING "gRPC API of wgllm serve: AUTO, ON or OFF")
set_property(CACHE WGLLM_GRPC PROPERTY STRINGS AUTO ON OFF)
set(WGLLM_GRPC_SOURCES_DIR ${CMAKE_SOURCE_DIR}/src/server/grpc)
set(WGLLM_HAVE_GRPC FALSE)
if(NOT WGLLM_GRPC STREQUAL "OFF")
  pkg_check_modules(GRPC_CORE IMPORTED_TARGET grpc)
  pkg_check_modules(PROTOBUF_C IMPORTED_TARGET libprotobuf-c)
  find_program(PROTOC_C protoc-c)
  if(GRPC_CORE_FOUND AND PROTOBUF_C_FOUND AND PROTOC_C)
    set(WGLLM_HAVE_GRPC TRUE)
  elseif(WGLLM_GRPC STREQUAL "ON")
    message(FATAL_ERROR "WGLLM_GRPC=ON but gRPC core, protobuf-c or protoc-c is missing: "
                        "apt-get install libgrpc-dev libprotobuf-c-dev protobuf-c-compiler "
                        "(scripts/install-deps.sh), or configure with -DWGLLM_GRPC=OFF")
  else()
    message(STATUS "gRPC API: off (libgrpc-dev, libprotobuf-c-dev or protobuf-c-compiler not found; "
                   "wgllm serve will have no --grpc-port)")
  endif()
endif()

if(WGLLM_HAVE_GRPC)
  message(STATUS "gRPC API: on (grpc ${GRPC_CORE_VERSION}, protobuf-c ${PROTOBUF_C_VERSION})")
  set(WGLLM_PROTO_OUT ${CMAKE_BINARY_DIR}/generated/proto)
  set(WGLLM_PROTO_C)
  foreach(proto wgllm/v1/generate grpc/health/v1/health)
    list(APPEND WGLLM_PROTO_C ${WGLLM_PROTO_OUT}/${proto}.pb-c.c)
    add_custom_command(OUTPUT ${WGLLM_PROTO_OUT}/${proto}.pb-c.c ${WGLLM_PROTO_OUT}/${proto}.pb-c.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${WGLLM_PROTO_OUT}
      COMMAND ${PROTOC_C} --c_out=${WGLLM_PROTO_OUT} -I${CMAKE_SOURCE_DIR}/proto ${CMAKE_SOURCE_DIR}/proto/${proto}.proto
      DEPENDS ${CMAKE_SOURCE_DIR}/proto/${proto}.proto
      COMMENT "protoc-c ${proto}.proto")
  endforeach()
  # generated code is not held to our warning set
  set_source_files_properties(${WGLLM_PROTO_C} PROPERTIES COMPILE_OPTIONS "-w")
  file(GLOB WGLLM_GRPC_SOURCES CONFIGURE_DEPENDS ${WGLLM_GRPC_SOURCES_DIR}/*.c)
  target_sources(wgllm_core PRIVATE ${WGLLM_GRPC_SOURCES} ${WGLLM_PROTO_C})
  target_include_directories(wgllm_core SYSTEM PUBLIC ${WGLLM_PROTO_OUT})
  target_link_libraries(wgllm_core PUBLIC PkgConfig::GRPC_CORE PkgConfig::PROTOBUF_C)
  target_compile_definitions(wgllm_core PUBLIC WGLLM_HAVE_GRPC=1)
endif()
