#!/bin/sh
# Fails when a C file does not match .clang-format (the committed style).
cd "$(dirname "$0")/.." || exit 1
command -v clang-format > /dev/null || { echo "clang-format is not installed (contrib/install-deps.sh installs it)"; exit 1; }
files=$(find src qmp share net gw tests -name '*.c' -o -name '*.h' | sort)
# shellcheck disable=SC2086
clang-format --dry-run -Werror $files && echo "$(echo "$files" | wc -l) files formatted"
