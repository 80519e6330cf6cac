# Cross-compiles the CPU backend for win-x64 from Linux with MinGW-w64 (posix threads), e.g.
#   cmake -S . -B build/win-x64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-x86_64.cmake -DSPARSEATTN_CUDA=OFF
# Debian: apt-get install g++-mingw-w64-x86-64-posix (and wine64 to run the tests under ctest).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
find_program(SPARSEATTN_WINE NAMES wine64 wine)
if(SPARSEATTN_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SPARSEATTN_WINE})
endif()
