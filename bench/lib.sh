# Helpers the benchmarks share; source it: . "$(dirname "$0")/lib.sh"
# median [DECIMALS] / stats: of the numbers on stdin, one per line;
# stats prints "median min max".  now: seconds since the epoch, with
# nanoseconds.  since T0: seconds elapsed since T0 (a now value).
median() {
    sort -n | awk -v d="${1:-3}" '{a[NR]=$1} END {if (NR == 0) print "-"; else printf "%.*f\n", d, (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'
}
stats() {
    sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f %.3f %.3f\n", m, a[1], a[NR]}'
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.4f\n", b - a}'; }
# bench_setup MVM: exits unless run as root with an executable mvm at MVM.
bench_setup() {
    [ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
    [ -x "$1" ] || { echo "no mvm binary at $1" >&2; exit 1; }
}
