#!/usr/bin/env bash
# Writes the crash inputs of finding 1 of the adversarial test (10 000 levels of `params`
# overflowed the gateway's stack; 1 450 were enough on a 2 MiB thread) into
# jsonrpc_parse/. The files are committed; this only says how they were made.
# Run from anywhere: `bash fuzz/regressions/make-finding1.sh`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/jsonrpc_parse"

# repeat STRING COUNT: STRING written COUNT times, no newline.
repeat() {
    local i
    for ((i = 0; i < $2; i++)); do
        printf '%s' "$1"
    done
}

prefix='{"jsonrpc":"2.0","id":1,"method":"eth_call","params":'

{ printf '%s' "$prefix"; repeat '[' 10000; repeat ']' 10000; printf '}'; } >finding1-arrays-10000
{ printf '%s' "$prefix"; repeat '{"a":' 10000; printf '1'; repeat '}' 10000; printf '}'; } >finding1-objects-10000
{ printf '%s' "$prefix"; repeat '[' 1450; repeat ']' 1450; printf '}'; } >finding1-arrays-1450
