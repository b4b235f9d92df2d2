#!/usr/bin/env bash
# Fuzzes the frame decoder with libFuzzer and AddressSanitizer (the Swift toolchain's `-sanitize=fuzzer,address`).
#   Fuzz/run.sh [seconds] [extra libFuzzer flags...]     default 60 s; e.g. Fuzz/run.sh 600 -runs=10000000
# Crashes are written to Fuzz/artifacts/; new inputs to .build/fuzz/corpus (seeded from Fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
out=.build/fuzz
mkdir -p "$out/corpus" Fuzz/artifacts
wire=(Sources/DanubeMetricsWire/*.swift)
if [ ! -d Fuzz/corpus ]; then
    swiftc -O "${wire[@]}" Fuzz/SeedCorpus/main.swift -module-name SeedCorpus -o "$out/seed-corpus"
    "$out/seed-corpus" Fuzz/corpus
fi
swiftc -sanitize=fuzzer,address -parse-as-library -O -g "${wire[@]}" Fuzz/FrameDecoderFuzzer.swift \
    -module-name FrameDecoderFuzzer -o "$out/frame-decoder"
exec "$out/frame-decoder" "$out/corpus" Fuzz/corpus -max_total_time="$seconds" -max_len=70000 \
    -artifact_prefix=Fuzz/artifacts/ -print_final_stats=1 "$@"
