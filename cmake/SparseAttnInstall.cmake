# Install rules and a CMake package config, so native programs can find_package(SparseAttn).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(TARGETS sparseattn EXPORT SparseAttnTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY native/include/sparseattn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT SparseAttnTargets NAMESPACE SparseAttn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/SparseAttn)
file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/SparseAttnConfig.cmake"
  "include(\"\${CMAKE_CURRENT_LIST_DIR}/SparseAttnTargets.cmake\")\n")
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/SparseAttnConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/SparseAttnConfig.cmake"
  "${CMAKE_CURRENT_BINARY_DIR}/SparseAttnConfigVersion.cmake"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/SparseAttn)
