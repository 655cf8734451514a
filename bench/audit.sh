#!/bin/bash
# What the share audit costs on a 100k-file project: the snapshot mvm
# takes before boot and the audit after exit (walk, compare, git configs),
# each timed RUNS times on a tree of FILES files (1000 directories, a git
# repository, a package.json), page cache warm as it is after a run.
# Usage: bench/audit.sh [RUNS] [FILES] [BUILD_DIR]   (defaults: 7, 100000, build)
# Goal: the audit under 1 s for 100k files.  Prints medians.
set -euo pipefail
RUNS=${1:-7}
FILES=${2:-100000}
BUILD=$(realpath "${3:-$(dirname "$0")/../build}")
BIN=$BUILD/tests/unit/test-audit
[ -x "$BIN" ] || { echo "no $BIN: build the tests first (cmake --build $BUILD)" >&2; exit 1; }
work=$(mktemp -d /tmp/mvm-bench-audit.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree=$work/project

dirs=1000
per=$((FILES / dirs))
mkdir -p "$tree/.git/hooks" "$tree/.vscode"
printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n' > "$tree/.git/config"
for h in pre-commit pre-push commit-msg; do printf '#!/bin/sh\n' > "$tree/.git/hooks/$h.sample"; done
echo '{"name": "p", "scripts": {"test": "jest"}}' > "$tree/package.json"
echo '{}' > "$tree/.vscode/settings.json"
names=$(seq -f 'file%g.c' "$per")
for d in $(seq "$dirs"); do
    sub="$tree/src/m$((d % 10))/d$d"
    mkdir -p "$sub"
    (cd "$sub" && touch $names) # shellcheck disable=SC2086
done
total=$(find "$tree" | wc -l)

median() { sort -n | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
"$BIN" bench "$tree" > /dev/null # warm the cache
for _ in $(seq "$RUNS"); do "$BIN" bench "$tree"; done > "$work/times"
snap=$(awk '{print $4}' "$work/times" | median)
audit=$(awk '{print $6}' "$work/times" | median)
echo "share audit on $total entries: snapshot median ${snap} ms, audit median ${audit} ms over $RUNS runs; goal 1000 ms: $(awk "BEGIN { printf \"%.2f\", $audit / 1000 }")x of goal"
