#!/usr/bin/env bash
# Runs the README's five-minute tour exactly as written, so that it cannot rot: `npm start` in the background on a
# fresh `data/local-3`, then every ```sh block between `<!-- tour -->` and `<!-- /tour -->` in README.md, in order,
# in one `bash -euo pipefail` from the repository root, as in a reader's terminal. The tour fails at the first
# command that fails. At the end `npm start` is stopped with SIGTERM and every node must have exited 0. CI runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -e data/local-3 ]; then
  echo "tour: data/local-3 exists; the tour starts from a fresh cluster (move it away first)" >&2
  exit 2
fi
blocks=$(mktemp -d)
log="$blocks/start.log"
# the sh blocks inside the tour markers, one file each
awk -v dir="$blocks" '
  /^<!-- tour -->$/ { on = 1; next }
  /^<!-- \/tour -->$/ { on = 0; next }
  on && /^```sh$/ { n++; file = sprintf("%s/%02d.sh", dir, n); inblock = 1; next }
  inblock && /^```$/ { inblock = 0; next }
  inblock { print > file }
' README.md
count=$(find "$blocks" -name '*.sh' | wc -l)
if [ "$count" -eq 0 ]; then echo "tour: no sh blocks between <!-- tour --> and <!-- /tour --> in README.md" >&2; exit 1; fi

npm start >"$log" 2>&1 &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
fail() {
  echo "tour: $1" >&2
  tail -n 40 "$log" >&2
  stop
  rm -rf "$blocks" data/local-3
  exit 1
}
# what a reader does before the tour: wait until the nodes serve and have formed one cluster map
ready=""
for _ in $(seq 1 300); do
  if curl -fsS http://127.0.0.1:8703/readyz >/dev/null 2>&1 && [ -f data/local-3/admin.token ] \
    && curl -fsS -H "authorization: Bearer $(cat data/local-3/admin.token)" http://127.0.0.1:8701/v1/registrations 2>/dev/null | grep -q '"phase":"cluster"'; then
    ready=1
    break
  fi
  sleep 0.2
done
[ -n "$ready" ] || fail "npm start did not form a cluster within 60 s"

# one shell for the whole tour, as a reader's terminal: what a block exports, the next one sees
script="$blocks/tour.sh"
for block in "$blocks"/[0-9]*.sh; do
  n=$(basename "$block" .sh)
  printf 'echo; echo "tour: block %s of %s"\n' "$n" "$count" >>"$script"
  cat "$block" >>"$script"
done
grep -v '^echo; echo "tour' "$script" | sed 's/^/  $ /'
bash -euo pipefail "$script" || fail "the tour stopped at a failing command (above)"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
# npm re-raises the signal it forwarded (143); what matters is that every node stopped cleanly
case "$status" in 0|143) ;; *) fail "npm start exited $status" ;; esac
for _ in $(seq 1 100); do grep -q 'exited (' "$log" && break; sleep 0.1; done
grep -q 'exited (0)' "$log" || fail "a node did not stop cleanly"
if grep -q 'exited ([1-9]' "$log"; then fail "a node did not stop cleanly"; fi
rm -rf "$blocks" data/local-3
echo "tour: all $count blocks ran"
