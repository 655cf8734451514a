add_library(mvmboot STATIC cpio.c compress.c kernel.c modules.c initramfs.c)
target_include_directories(mvmboot PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(mvmboot PUBLIC mvmutil PkgConfig::LZ4 PkgConfig::ZSTD PkgConfig::LZMA PkgConfig::ZLIB)
mvm_host_target(mvmboot)
