#!/usr/bin/env bash
# TRIAGE: Run `spine verify` at the repo root and fix each listed file:line (the help under it says how); a retired entry only needs its status word.
set -euo pipefail

# D378: spine registry verify
# SERVICE_REGISTRY, STACK_REGISTRY and services.health agree with each other and
# with the bindings they share facts with (ssh.targets, vm.lifecycle,
# secrets.binding): hosts and VMs exist, probes point at their services,
# containers, ports and stack ids are unique, a fact stated twice is stated the
# same. Offline: reads files only, no network. Warnings do not fail the gate.

ROOT="${SPINE_ROOT:-$HOME/code/agentic-spine}"
SPINE_BIN="${SPINE_BIN:-spine}"
MAX_LINES=55

fail() {
  echo "D378 FAIL: $*" >&2
  exit 1
}

[[ -f "$ROOT/docs/governance/SERVICE_REGISTRY.yaml" ]] \
  || fail "missing file: $ROOT/docs/governance/SERVICE_REGISTRY.yaml (is SPINE_ROOT the agentic-spine checkout?)"
SPINE_BIN="$(command -v "$SPINE_BIN")" \
  || fail "spine not found (looked for '${SPINE_BIN}' on PATH): install it (cargo install --path <spine clone>) or set SPINE_BIN"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
rc=0
# From the root, so every place is named relative to it (docs/governance/...).
(cd "$ROOT" && "$SPINE_BIN" verify --repo . --color never) >"$out" 2>&1 || rc=$?

case "$rc" in
  0 | 1) ;;
  2)
    head -n "$MAX_LINES" "$out"
    fail "spine could not run (exit 2): a registry file could not be read, see above"
    ;;
  *)
    head -n "$MAX_LINES" "$out"
    fail "spine ended abnormally (exit $rc)"
    ;;
esac

# spine's text output leads with a short report: the verdict, one line per
# problem, the files read, then a blank line. Show that, never more than
# MAX_LINES lines.
summary="$(sed -n '1p' "$out")"
[[ "$summary" == verify:* ]] || fail "unexpected output from spine (first line: ${summary:0:120})"
problems="$(sed -n '2,/^$/p' "$out" | grep '^  V[0-9]' || true)"
count=0
[[ -z "$problems" ]] || count="$(printf '%s\n' "$problems" | wc -l)"
echo "$summary"
if [[ "$count" -gt 0 ]]; then
  printf '%s\n' "$problems" | head -n "$MAX_LINES"
  [[ "$count" -le "$MAX_LINES" ]] || echo "  ... and $((count - MAX_LINES)) more: cd $ROOT && spine verify"
fi

if [[ "$rc" -ne 0 ]]; then
  gates="$(grep '^status:' "$out" | tail -n 1 | sed -n 's/^status: FAIL (\(.*\))$/\1/p')"
  fail "spine verify: $(printf '%s\n' "$problems" | grep -c ' error ' || true) error(s) in ${gates:-?} (details: cd $ROOT && spine verify)"
fi
echo "D378 PASS: registries and bindings agree (spine verify; $(printf '%s\n' "$problems" | grep -c ' warn ' || true) warning(s))"
