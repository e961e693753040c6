#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs, at run time, from data that stays outside the
# repository (DESIGN §7): the attestation vectors of $SHROUD_VECTORS_DIR (default
# ../shared/attestation-vectors) and the JSON-RPC requests and responses of
# $SHROUD_FIXTURES_DIR (default ../shared/jsonrpc-fixtures), both relative to the repository
# root. Adds the repository's own seeds (fuzz/seeds/, docs/configuration.md) and every input
# of fuzz/regressions/. A missing folder is skipped with a message, or fails with
# SHROUD_REQUIRE_VECTORS=1 (as in .ci/run).
#
# Framings the targets expect (see fuzz/src/): dcap_quote is `u16be len, quote, collateral`;
# snp_report is the 1184-byte report then its endorsements; ohttp_decapsulate and
# ohttp_response take a mode byte first (odd: the rest is a binary HTTP message that the
# target seals itself).
set -euo pipefail
shopt -s nullglob
# Byte lengths, not characters.
export LC_ALL=C

fuzz=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$fuzz")
vectors=${SHROUD_VECTORS_DIR:-$root/../shared/attestation-vectors}
fixtures=${SHROUD_FIXTURES_DIR:-$root/../shared/jsonrpc-fixtures}
corpus=$fuzz/corpus

targets=(jsonrpc_parse jsonrpc_nesting ratls_certificate claims_cbor cmw nitro_evidence
    dcap_quote snp_report endorsements ohttp_decapsulate ohttp_response bhttp config)

missing() {
    if [[ ${SHROUD_REQUIRE_VECTORS:-0} == 1 ]]; then
        echo "seed.sh: no $1 at $2 (SHROUD_REQUIRE_VECTORS=1)" >&2
        exit 1
    fi
    echo "seed.sh: skipped: no $1 at $2"
}

# --- binary writers (stdout; NUL-safe: nothing binary goes through a variable) ---------------

# byte N...: the bytes with these values.
byte() {
    local b
    for b in "$@"; do
        # shellcheck disable=SC2059 # the format is the escape being built
        printf "\\x$(printf %02x "$b")"
    done
}

# hex HEX: the bytes of a hex string.
hex() {
    local i
    for ((i = 0; i < ${#1}; i += 2)); do
        # shellcheck disable=SC2059
        printf "\\x${1:i:2}"
    done
}

# A QUIC variable-length integer (RFC 9000 §16), as binary HTTP uses, and its size.
varint() {
    local n=$1
    if ((n < 64)); then
        byte "$n"
    elif ((n < 16384)); then
        byte $((0x40 | n >> 8)) $((n & 255))
    else
        byte $((0x80 | n >> 24)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255))
    fi
}
varint_size() {
    if (($1 < 64)); then echo 1; elif (($1 < 16384)); then echo 2; else echo 4; fi
}

# A length-prefixed string (binary HTTP).
lenstr() {
    varint ${#1}
    printf '%s' "$1"
}

# A known-length field section of NAME VALUE pairs.
fields() {
    local size=0 name value
    local args=("$@")
    for ((i = 0; i < ${#args[@]}; i += 2)); do
        name=${args[i]} value=${args[i + 1]}
        size=$((size + $(varint_size ${#name}) + ${#name} + $(varint_size ${#value}) + ${#value}))
    done
    varint "$size"
    for ((i = 0; i < ${#args[@]}; i += 2)); do
        lenstr "${args[i]}"
        lenstr "${args[i + 1]}"
    done
}

# bhttp_request PATH BODY: `POST PATH` with a JSON body and a date, known-length (RFC 9292).
bhttp_request() {
    varint 0
    lenstr POST
    lenstr https
    lenstr ""
    lenstr "$1"
    fields content-type application/json date "Thu, 01 Jan 2026 00:00:00 GMT"
    lenstr "$2"
    varint 0
}

# bhttp_response STATUS BODY: a JSON response, known-length.
bhttp_response() {
    varint 1
    varint "$1"
    fields content-type application/json
    lenstr "$2"
    varint 0
}

# A CBOR head: major type, length (RFC 8949 §3).
cbor_head() {
    local major=$1 n=$2
    if ((n < 24)); then
        byte $((major << 5 | n))
    elif ((n < 256)); then
        byte $((major << 5 | 24)) "$n"
    elif ((n < 65536)); then
        byte $((major << 5 | 25)) $((n >> 8)) $((n & 255))
    else
        byte $((major << 5 | 26)) $((n >> 24)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255))
    fi
}
cbor_text() {
    cbor_head 3 ${#1}
    printf '%s' "$1"
}
# cbor_file FILE: a byte string holding FILE.
cbor_file() {
    cbor_head 2 "$(wc -c <"$1")"
    cat "$1"
}

# The claims buffer of a certificate: {"pubkey-hash": bstr(cbor [1, bstr 32])}, optionally
# with iat, nonce and ohttp-keys, keys in deterministic order.
claims() {
    if [[ ${1:-} == full ]]; then
        byte 0xa4
        cbor_text iat
        hex 1a69555f00
        cbor_text nonce
        cbor_head 2 8
        hex 6e6f6e63656e6f6e
        cbor_text ohttp-keys
        cbor_head 2 3
        hex 010020
    else
        byte 0xa1
    fi
    cbor_text pubkey-hash
    cbor_head 2 36
    hex 82015820
    hex 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
}

# wrapped MEDIA EVIDENCE-FILE CLAIMS-FILE: [media-type, bstr(cbor [evidence, claims])].
wrapped() {
    local inner
    inner=$(mktemp)
    {
        byte 0x82
        cbor_file "$2"
        cbor_file "$3"
    } >"$inner"
    byte 0x82
    cbor_text "$1"
    cbor_file "$inner"
    rm -f "$inner"
}

# --- the corpora ------------------------------------------------------------------------------

for target in "${targets[@]}"; do
    mkdir -p "$corpus/$target"
    for file in "$fuzz/regressions/$target"/* "$fuzz/seeds/$target"/*; do
        cp "$file" "$corpus/$target/"
    done
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
claims >"$tmp/claims"
claims full >"$tmp/claims-full"
cp "$tmp/claims" "$corpus/claims_cbor/minimal"
cp "$tmp/claims-full" "$corpus/claims_cbor/full"

# Configuration: every TOML example of docs/configuration.md, and small ones.
awk -v dir="$corpus/config" '
    /^```toml/ { n++; out = dir "/docs-" n ".toml"; printf "" > out; inside = 1; next }
    /^```/ { inside = 0; next }
    inside { print >> out }
' "$root/docs/configuration.md"
printf '[tee]\nplatform = "simulated"\n\n[[chain]]\nname = "eth"\nupstreams = ["http://127.0.0.1:8545"]\n' \
    >"$corpus/config/dev.toml"
printf '[[chain]]\nname = "eth"\nchain_id = 1\nupstreams = [{ url = "https://node.example/v1", headers = { authorization = "Bearer x" } }]\n' \
    >"$corpus/config/upstream-table.toml"

# JSON-RPC: every recorded request (`>>`) and response (`<<`).
if [[ -d $fixtures ]]; then
    n=0
    while IFS= read -r -d '' io; do
        while IFS= read -r line; do
            case $line in
            ">> "*)
                n=$((n + 1))
                body=${line#>> }
                printf '%s' "$body" >"$corpus/jsonrpc_parse/fixture-$n"
                if ((n % 8 == 0)); then
                    bhttp_request /eth "$body" >"$corpus/bhttp/fixture-$n"
                    { byte $((n / 8 % 4 * 2 + 1)); bhttp_request /eth "$body"; } \
                        >"$corpus/ohttp_decapsulate/fixture-$n"
                fi
                ;;
            "<< "*)
                if ((n % 8 == 0)); then
                    { byte 1; bhttp_response 200 "${line#<< }"; } >"$corpus/ohttp_response/fixture-$n"
                fi
                ;;
            esac
        done <"$io"
    done < <(find "$fixtures" -name '*.io' -print0 | sort -z)
    echo "seed.sh: $n JSON-RPC requests from $fixtures"
else
    missing "JSON-RPC fixtures" "$fixtures"
fi
printf '%s' '[{"jsonrpc":"2.0","id":"a","method":"eth_chainId"},{"jsonrpc":"2.0","method":"eth_x","params":{"b":[1.50,-0,1e400],"a":"\u0041"}}]' \
    >"$corpus/jsonrpc_parse/batch"
bhttp_request /eth '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' >"$corpus/bhttp/chain-id"
{ byte 3; bhttp_request /eth '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}'; } >"$corpus/ohttp_decapsulate/p256"
{ byte 0; hex 0100200001000100; head -c 40 /dev/zero; } >"$corpus/ohttp_decapsulate/raw-x25519"
{ byte 1; bhttp_response 429 '{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limit"}}'; } \
    >"$corpus/ohttp_response/rate-limited"

# Attestation evidence.
if [[ -d $vectors ]]; then
    v=$vectors
    cp "$v"/nitro/*.cose "$corpus/nitro_evidence/"
    cp "$v"/ra-tls-certs/*.pem "$corpus/ratls_certificate/"
    for q in sgx_quote tdx_quote tdx_quote_outdated; do
        size=$(wc -c <"$v/intel/$q.bin")
        { byte $((size >> 8)) $((size & 255)); cat "$v/intel/$q.bin" "$v/intel/${q}_collateral.json"; } \
            >"$corpus/dcap_quote/$q"
        { hex d9ea6082; cbor_file "$v/intel/$q.bin"; cbor_file "$tmp/claims"; } >"$corpus/cmw/$q"
        { byte 0x82; cbor_text application/vnd.shroud.intel-collateral+json; cbor_file "$v/intel/${q}_collateral.json"; } \
            >"$corpus/endorsements/${q}_collateral"
    done
    size=$(wc -c <"$v/intel/tdx_quote_debug_td.bin")
    { byte $((size >> 8)) $((size & 255)); cat "$v/intel/tdx_quote_debug_td.bin"; } >"$corpus/dcap_quote/tdx_quote_debug_td"
    cat "$v/sev-snp/report_milan.bin" "$v/sev-snp/vcek_milan.der" >"$corpus/snp_report/milan-der"
    {
        cat "$v/sev-snp/report_milan.bin"
        echo "-----BEGIN CERTIFICATE-----"
        base64 -w 64 "$v/sev-snp/vcek_milan.der"
        echo "-----END CERTIFICATE-----"
        cat "$v/sev-snp/ask_milan.pem"
    } >"$corpus/snp_report/milan-pem"
    { cat "$v/sev-snp/report_milan.bin"; byte 0x82; cbor_file "$v/sev-snp/vcek_milan.der"; cbor_file "$v/sev-snp/vcek_milan.der"; } \
        >"$corpus/snp_report/milan-cbor"
    { byte 0x81; cbor_file "$v/sev-snp/vcek_milan.der"; } >"$tmp/snp-list"
    { byte 0x82; cbor_text application/vnd.shroud.sev-snp-endorsements+cbor; cbor_file "$tmp/snp-list"; } \
        >"$corpus/endorsements/sev-snp"
    cp "$v/sev-snp/vcek_milan.der" "$corpus/endorsements/vcek.der"
    cp "$v/sev-snp/ask_milan.pem" "$corpus/endorsements/ask.pem"
    wrapped application/vnd.shroud.nitro-evidence+cbor "$v/nitro/attestation_doc.cose" "$tmp/claims" \
        >"$corpus/cmw/nitro"
    wrapped application/vnd.shroud.sev-snp-evidence+cbor "$v/sev-snp/report_milan.bin" "$tmp/claims-full" \
        >"$corpus/cmw/sev-snp"
    echo "seed.sh: attestation evidence from $vectors"
else
    missing "attestation vectors" "$vectors"
fi

for target in "${targets[@]}"; do
    printf '  %-18s %4d seeds\n' "$target" "$(find "$corpus/$target" -type f | wc -l)"
done
