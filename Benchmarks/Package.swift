// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so that `./dev test` and CI do not build ordo-one/benchmark.
// Run: cd Benchmarks && swift package --disable-sandbox benchmark  (see docs/BENCHMARKS.md)
let package = Package(
    name: "danube-metrics-benchmarks",
    dependencies: [
        .package(name: "danube-metrics-agent", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "DanubeMetricsAgent", package: "danube-metrics-agent"),
                .product(name: "DanubeMetricsWire", package: "danube-metrics-agent"),
            ],
            path: "Support"
        ),
        .executableTarget(
            name: "FlusherCost",
            dependencies: ["BenchmarkSupport", .product(name: "DanubeMetricsEmitter", package: "danube-metrics-agent")],
            path: "Tools/FlusherCost"
        ),
        // Emitter connections that fill an agent with a given number of series (ScaleBench, TLSBench).
        .target(
            name: "ScaleFeed",
            dependencies: [.product(name: "DanubeMetricsWire", package: "danube-metrics-agent")],
            path: "Tools/ScaleFeed"
        ),
        .executableTarget(name: "ScaleBench", dependencies: ["ScaleFeed"], path: "Tools/ScaleBench"),
        .executableTarget(name: "TLSBench", dependencies: ["ScaleFeed"], path: "Tools/TLSBench"),
        .executableTarget(name: "FreshnessBench", dependencies: ["ScaleFeed"], path: "Tools/FreshnessBench"),
        .executableTarget(
            name: "RenderTiming",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "DanubeMetricsAgent", package: "danube-metrics-agent"),
            ],
            path: "Tools/RenderTiming"
        ),
        .executableTarget(
            name: "HotPathBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DanubeMetricsEmitter", package: "danube-metrics-agent"),
            ],
            path: "Benchmarks/HotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SpanTiming",
            dependencies: [
                .product(name: "DanubeMetricsEmitter", package: "danube-metrics-agent"),
                .product(name: "DanubeMetricsWire", package: "danube-metrics-agent"),
            ],
            path: "Tools/SpanTiming"
        ),
        .executableTarget(
            name: "HotPathTiming",
            dependencies: [.product(name: "DanubeMetricsEmitter", package: "danube-metrics-agent")],
            path: "Tools/HotPathTiming"
        ),
        .executableTarget(
            name: "ExpiryTiming",
            dependencies: [
                .product(name: "DanubeMetricsAgent", package: "danube-metrics-agent"),
                .product(name: "DanubeMetricsWire", package: "danube-metrics-agent"),
            ],
            path: "Tools/ExpiryTiming"
        ),
        .executableTarget(
            name: "IngestThroughput",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "DanubeMetricsAgent", package: "danube-metrics-agent"),
                .product(name: "DanubeMetricsWire", package: "danube-metrics-agent"),
            ],
            path: "Tools/IngestThroughput"
        ),
        .executableTarget(
            name: "AgentBenchmarks",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DanubeMetricsAgent", package: "danube-metrics-agent"),
                .product(name: "DanubeMetricsWire", package: "danube-metrics-agent"),
            ],
            path: "Benchmarks/Agent",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
