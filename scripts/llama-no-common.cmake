# Included by CMake at the end of llama.cpp's own project() call (scripts/setup.sh passes
# -DCMAKE_PROJECT_llama.cpp_INCLUDE=<this file>). llama-cpp-python forces LLAMA_BUILD_COMMON on, yet its Python
# package never loads libllama-common, whose 51 source files are a large share of the build. This runs after that
# force and before llama.cpp reads the option, so the library is not built.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
