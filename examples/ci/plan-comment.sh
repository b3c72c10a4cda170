#!/usr/bin/env bash
# The body of a pull-request comment with the plan of this repository's manifests.
#
#   examples/ci/plan-comment.sh [OUTPUT_FILE] [-- PLAN_OPTIONS...]
#
# Runs `appvisor plan --format markdown` in the working directory (its appvisor.yaml and apps.d,
# and the environment, as `plan` reads them) and writes the comment to OUTPUT_FILE, or to stdout
# without one ('-' is stdout too). Options after `--` go to `plan` (e.g. --dir, --config).
# APPVISOR_BIN: the CLI to run (default: npx appvisor), split on spaces, e.g. "node bin/appvisor.js".
# APPVISOR_STATE: a state file (`appvisor state export > state.json`, made where the databases are
# reachable, e.g. by the deploy job): the plan is made against it with `--offline --state`, so this
# job needs no database credentials and connects to no database. Unset: `plan` reads the state
# store and the servers itself (the job then needs the settings and credentials `apply` uses).
#
# Exits 0 for "no changes" and "changes pending" alike, so the comment is posted either way;
# 1 when the plan could not be made (invalid manifests, a server that could not be checked, a
# bad option): the comment is still written when plan printed one, and the job fails.
set -euo pipefail

out=-
if [ "$#" -gt 0 ] && [ "$1" != "--" ]; then
  out=$1
  shift
fi
if [ "$#" -gt 0 ] && [ "$1" = "--" ]; then
  shift
fi

# APPVISOR_BIN is a command with its arguments, split on blanks (no globbing).
read -r -a bin <<<"${APPVISOR_BIN:-npx appvisor}"

body=$(mktemp)
trap 'rm -f "$body"' EXIT

offline=()
if [ -n "${APPVISOR_STATE:-}" ]; then
  offline=(--offline --state "$APPVISOR_STATE")
fi

code=0
"${bin[@]}" plan --format markdown ${offline[@]+"${offline[@]}"} "$@" >"$body" || code=$?

case "$code" in
  0) meaning="No changes: applying this branch changes nothing." ;;
  2) meaning="Changes pending: \`appvisor apply\` (or a running \`serve\`) carries out the steps above; refused steps wait until what they name is fixed." ;;
  *) meaning="The plan is incomplete (exit $code): fix the manifest errors or refusals above (or, with no plan above, the error in the job's log), then plan again." ;;
esac

write() {
  if [ -s "$body" ]; then
    cat "$body"
    printf '\n'
  fi
  printf -- '---\n_%s_\n' "$meaning"
}

if [ "$out" = "-" ]; then
  write
else
  write >"$out"
fi

if [ "$code" -eq 0 ] || [ "$code" -eq 2 ]; then
  exit 0
fi
exit 1
