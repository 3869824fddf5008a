#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs (generated; git ignores corpus/):
#   ws_frame, feed_line, book   one file per line of the captured OKX WebSocket feeds
#   rest_envelope               the captured OKX REST bodies
#   manifest                    manifests as the host reads them (JSON) and the plugins' tradebox.toml
#   package                     tiny modules and components, signed and not, and built plugins if present
#   candles                     tradebox-data's candle and trade bodies and feeds, small CSV files
# The captures live outside the repository, in ../shared/data/okx beside it; if that directory is
# missing (or unreadable) the OKX seeds are skipped. The okx crate's own copies of the same files
# (okx/tests/data) are used as well, so the seeds exist in any clone. jq is used to pick messages
# out of the capture files when it is installed; without it whole lines and files are used.
# Seeds are named by content hash, so running this again adds nothing twice.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(git -C "$fuzz" rev-parse --show-toplevel 2>/dev/null || dirname "$fuzz")"
corpus="$fuzz/corpus"
mkdir -p "$corpus"
have_jq=false
command -v jq >/dev/null 2>&1 && have_jq=true

# put TARGET: stdin becomes one seed file of TARGET (empty input is skipped).
put() {
    local dir="$corpus/$1" tmp
    mkdir -p "$dir"
    tmp="$(mktemp "$dir/.seed.XXXXXX")"
    cat >"$tmp"
    if [[ -s "$tmp" ]]; then
        mv -f "$tmp" "$dir/$(sha1sum "$tmp" | cut -c1-40)"
    else
        rm -f "$tmp"
    fi
}

# lines FILE TARGET...: each non-empty line of FILE (a WebSocket frame) is a seed of each TARGET.
lines() {
    local file="$1" line t
    shift
    while IFS= read -r line || [[ -n "$line" ]]; do
        [[ -z "$line" ]] && continue
        for t in "$@"; do printf '%s' "$line" | put "$t"; done
    done <"$file"
}

# feed FILE TARGET: FILE in runs of 8 frames per seed (books need a snapshot before updates).
feed() {
    local file="$1" target="$2" chunk="" n=0 line
    while IFS= read -r line || [[ -n "$line" ]]; do
        [[ -z "$line" ]] && continue
        chunk+="$line"$'\n'
        n=$((n + 1))
        if ((n == 8)); then
            printf '%s' "$chunk" | put "$target"
            chunk="" n=0
        fi
    done <"$file"
    if [[ -n "$chunk" ]]; then printf '%s' "$chunk" | put "$target"; fi
}

okx_seeds() {
    local dir="$1" f
    [[ -d "$dir" && -r "$dir" ]] || return 0
    for f in "$dir"/*.jsonl; do
        [[ -f "$f" ]] || continue
        if $have_jq && head -n1 "$f" | jq -e 'has("msg")' >/dev/null 2>&1; then
            # {"test","line","msg"} per line: the frame is .msg; REST bodies (with .code) go to rest_envelope.
            jq -c 'select(.msg | has("arg") or has("event")) | .msg' "$f" >"$corpus/.frames"
            jq -c 'select(.msg | has("code")) | .msg' "$f" | while IFS= read -r body; do
                printf '%s' "$body" | put rest_envelope
            done
        else
            cp "$f" "$corpus/.frames"
        fi
        lines "$corpus/.frames" ws_frame feed_line book
        feed "$corpus/.frames" feed_line
        feed "$corpus/.frames" book
        rm -f "$corpus/.frames"
    done
    for f in "$dir"/*.json "$dir"/*.txt; do
        [[ -f "$f" ]] || continue
        case "$(basename "$f")" in
        *_ws_*) lines <(tr -d '\n' <"$f"; echo) ws_frame feed_line book; continue ;;
        esac
        # The docs examples start with a 3-line header.
        if [[ "$f" == *.txt ]]; then body() { tail -n +4 "$f"; }; else body() { cat "$f"; }; fi
        if $have_jq && [[ "$(basename "$f")" == ccxt_* ]]; then
            body | jq -c '.[].httpResponse' | while IFS= read -r r; do printf '%s' "$r" | put rest_envelope; done
        elif $have_jq && [[ $(body | wc -c) -gt 16384 ]]; then
            # Whole instrument tables are hundreds of KB: keep the first few instruments.
            body | jq -c '.data |= .[:4]' | put rest_envelope
        elif [[ $(body | wc -c) -le 16384 ]]; then
            body | put rest_envelope
        fi
    done
}

okx_seeds "$root/../shared/data/okx"
okx_seeds "$root/okx/tests/data"

# candles: tradebox-data's readers: its captured candle and trade bodies and feeds, small CSV files.
for f in "$root"/data/tests/data/*.json "$root"/data/tests/data/*.jsonl; do
    [[ -f "$f" ]] && put candles <"$f"
done
printf 'ts_ms,open,high,low,close,volume\n60000,10,12,9,11,5\n120000,11,11.5,10.5,11,0\n' | put candles
printf 'ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm\n60000,10,12,9,11,5,50,50,1\n' | put candles
printf 'ts_ms,price,size,side,trade_id\n1000,10,1,buy,7\n1000,10.5,2,sell,8\n' | put candles

# manifest: the JSON the host reads (what manifest/src/lib.rs's tests build) and every tradebox.toml.
put manifest <<'EOF'
{
  "format": 1,
  "name": "sma-cross",
  "version": "1.2.0",
  "authors": ["Ada <ada@example.com>"],
  "description": "crossover",
  "license": "MIT",
  "sdk": "0.1.0",
  "contract": "tradebox:strategy@0.1.0",
  "permissions": {
    "instruments": ["{symbol}", "ETH-*"],
    "channels": ["tickers", "books5", "trades", "candle1m"],
    "order_types": ["limit", "post_only", "market", "ioc", "fok"],
    "max_orders_per_sec": 5,
    "max_order_notional": 1000.5
  },
  "config": {
    "fast": {"type": "integer", "default": 10, "description": "fast length", "min": 2, "max": 200},
    "size": {"type": "number", "default": 0.01, "description": "order size", "max": 1.0},
    "live": {"type": "boolean", "default": false},
    "symbol": {"type": "string", "default": "BTC-USDT", "description": "what to trade"}
  }
}
EOF
printf '%s' '{"format":1,"name":"noop","version":"0.1.0","sdk":"0.1.0","contract":"tradebox:strategy@0.1.0"}' | put manifest
# Text beyond ASCII, escaped, as authors from anywhere write it.
printf '%s' '{"format":1,"name":"caf\u00e9","version":"0.1.0","authors":["Jos\u00e9 <j@example.com>"],"sdk":"0.1.0","contract":"tradebox:strategy@0.1.0","permissions":{"instruments":["{s\u00eembole}"]},"config":{"s\u00eembole":{"type":"string","default":"BTC-USDT","description":"l\u2019instrument"}}}' | put manifest
printf '%s\n' '[permissions]' 'instruments = ["{s\u00eembole}"]' '[config."s\u00eembole"]' 'type = "string"' 'default = "BTC-USDT"' 'description = "l\u2019instrument \u00e9chang\u00e9"' | put manifest
while IFS= read -r -d '' f; do put manifest <"$f"; done < <(find "$root/plugins" -name tradebox.toml -not -path '*/target/*' -print0 2>/dev/null)

# package: tiny files built byte by byte. A section is `id | size | contents` (sizes < 128 here,
# so one LEB128 byte); a custom section's contents are `name-len | name | payload`.
byte() { printf "\\x$(printf '%02x' "$1")"; }
custom() { byte 0; byte $((1 + ${#1} + ${#2})); byte ${#1}; printf '%s%s' "$1" "$2"; }
module() { printf '\x00asm\x01\x00\x00\x00'; }
component() { printf '\x00asm\x0d\x00\x01\x00'; }
module | put package
component | put package
{ module; custom name ''; } | put package
{ module; custom tradebox-manifest '{"name":"x"}'; } | put package
{ module; custom a 1; custom tradebox-manifest '{}'; custom z ''; } | put package
# A component nesting a module (section id 1) that carries the manifest, as plugins do.
inner="$(mktemp)"
{ module; custom tradebox-manifest '{"name":"nested"}'; } >"$inner"
{ component; custom producers x; byte 1; byte "$(wc -c <"$inner")"; cat "$inner"; } | put package
rm -f "$inner"
# Built plugins (cargo xtask plugins), the smaller ones only.
for f in "$root"/target/plugins/*.wasm; do
    [[ -f "$f" && $(wc -c <"$f") -le 100000 ]] && put package <"$f"
done
# A file signed with the package target's test key is made by the target itself on every input
# that parses, so no signed seed is needed here.
# tradebox record's lines: a receive time before a frame, a gap, an hour file's first line (a
# fuzzer found the target's own oracle counting `#gap` as a message: seeded so it stays covered).
printf '%s\n' '1765108800123 {"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[]}' \
    '1765108800124 #gap public dropped' '#gap' '1765108800125 #continues okx-public-2026-12-07T11.jsonl.zst' \
    | put feed_line

for t in ws_frame rest_envelope book manifest package feed_line candles; do
    mkdir -p "$corpus/$t"
    printf '%-14s %s seeds\n' "$t" "$(find "$corpus/$t" -type f | wc -l)"
done
