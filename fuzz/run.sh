#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, one after the other, and prints a summary
# (executions, exec/s, corpus, result). Used by `make fuzz`; see docs/reliability.md.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     (default 30 s, every target)
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. New corpus entries go to fuzz/corpus/<target>/ (only the
# committed seed-* files are tracked); crashes to fuzz/artifacts/<target>/. Logs:
# fuzz/target/logs/<target>.log. Exits non-zero if any target found a crash.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
shift || true
export RUSTC_BOOTSTRAP=1

cargo fuzz build
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	mapfile -t targets < <(cargo fuzz list)
fi
mkdir -p target/logs
summary=()
failed=()
for t in "${targets[@]}"; do
	echo "== $t: ${seconds} s"
	log="target/logs/$t.log"
	if cargo fuzz run "$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
		result="ok"
	else
		result="CRASH: $(grep -h 'Test unit written' "$log" | sed 's/.*written to //' | head -1)"
		failed+=("$t")
		grep -E 'panicked|ERROR' "$log" | head -5 || true
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	corpus=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
	summary+=("$(printf '%-24s %12s %8s %14s  %s' "$t" "${execs:-?}" "${rate:-?}" "${corpus:-?}" "$result")")
done
echo
printf '%-24s %12s %8s %14s  %s\n' target executions exec/s corpus result
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/; replay with cargo fuzz run <target> <file>)"
	exit 1
fi
