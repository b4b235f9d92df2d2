#!/usr/bin/env bash
# Fuzzes a decoder with libFuzzer and AddressSanitizer (the Swift toolchain's `-sanitize=fuzzer,address`).
#   Fuzz/run.sh [frame-decoder|state-file] [seconds] [extra libFuzzer flags...]
#   Fuzz/run.sh 900 -runs=12000000            (the target defaults to frame-decoder, the time to 60 s)
# Crashes are written to Fuzz/artifacts/; new inputs to .build/fuzz/<target>/corpus (seeded from Fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
target=frame-decoder
case "${1:-}" in frame-decoder|state-file) target="$1"; shift ;; esac
seconds="${1:-60}"
shift || true
out=.build/fuzz
mkdir -p "$out/$target/corpus" Fuzz/artifacts
wire=(Sources/DanubeMetricsWire/*.swift)
if [ ! -d Fuzz/corpus ]; then
    swiftc -O "${wire[@]}" Fuzz/SeedCorpus/main.swift -module-name SeedCorpus -o "$out/seed-corpus"
    "$out/seed-corpus" Fuzz/corpus
fi
case "$target" in
frame-decoder)
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g "${wire[@]}" Fuzz/FrameDecoderFuzzer.swift \
        -module-name FrameDecoderFuzzer -o "$out/$target/fuzzer"
    seeds=(Fuzz/corpus) ;;
state-file)
    # The state format lives in the agent module; build the wire module it imports first, instrumented too.
    mkdir -p "$out/$target/modules"
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
        -emit-library -static -emit-module -module-name DanubeMetricsWire "${wire[@]}" \
        -emit-module-path "$out/$target/modules/DanubeMetricsWire.swiftmodule" -o "$out/$target/libDanubeMetricsWire.a"
    # CZlib (crc32) is a system library module: its module map and -lz.
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g -I "$out/$target/modules" -I Sources/CZlib -lz \
        Sources/DanubeMetricsAgent/Durability/StateFormat.swift Sources/DanubeMetricsAgent/Durability/StoreSnapshot.swift \
        Fuzz/StateFileFuzzer.swift "$out/$target/libDanubeMetricsWire.a" -module-name StateFileFuzzer -o "$out/$target/fuzzer"
    seeds=(Fuzz/state-corpus) ;;
esac
exec "$out/$target/fuzzer" "$out/$target/corpus" "${seeds[@]}" -max_total_time="$seconds" -max_len=70000 \
    -artifact_prefix=Fuzz/artifacts/ -print_final_stats=1 "$@"
