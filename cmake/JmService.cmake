# jm_service(NAME): one service of services/NAME. Everything but main.c is
# the static library jm_NAME (so unit tests can link the service's logic
# without its main loop); main.c makes the binary jobmill-NAME.
function(jm_service name)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  list(REMOVE_ITEM sources ${CMAKE_CURRENT_SOURCE_DIR}/main.c)
  add_library(jm_${name} STATIC ${sources})
  target_include_directories(jm_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(jm_${name} PUBLIC jobmill::shared PRIVATE jm_warnings)
  add_executable(jobmill-${name} main.c)
  target_link_libraries(jobmill-${name} PRIVATE jm_${name} jm_warnings)
endfunction()
