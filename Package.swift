// swift-tools-version:6.1
import PackageDescription

// Data flow, one module per step:
//   DanubeMetricsWire (frames, codec, limits; no I/O)
//   DanubeMetricsProcess (this process's CPU, memory, descriptors from /proc: for emitters and the agent)
//   DanubeMetricsCatalog (the Danube metric catalog as data: admission rules, operator file, docs)
//     -> DanubeMetricsEmitter (hot-path handles over CDanubeCells, flusher, socket client)
//        -> DanubeMetrics (typed Danube API over the catalog) / DanubeMetricsSwiftMetrics (swift-metrics back end)
//     -> DanubeMetricsAgent (ingest -> store -> exposition -> HTTP)
//   danube-metrics-agent / danube-metrics-loadgen: the executables.
let package = Package(
    name: "danube-metrics-agent",
    products: [
        .library(name: "DanubeMetricsWire", targets: ["DanubeMetricsWire"]),
        .library(name: "DanubeMetricsCatalog", targets: ["DanubeMetricsCatalog"]),
        .library(name: "DanubeMetricsEmitter", targets: ["DanubeMetricsEmitter"]),
        .library(name: "DanubeMetrics", targets: ["DanubeMetrics"]),
        .library(name: "DanubeMetricsSwiftMetrics", targets: ["DanubeMetricsSwiftMetrics"]),
        .library(name: "DanubeMetricsAgent", targets: ["DanubeMetricsAgent"]),
        .library(name: "DanubeMetricsSystemd", targets: ["DanubeMetricsSystemd"]),
        .executable(name: "danube-metrics-agent", targets: ["danube-metrics-agent"]),
        .executable(name: "danube-metrics-loadgen", targets: ["danube-metrics-loadgen"]),
        .executable(name: "danube-metrics-chaos", targets: ["danube-metrics-chaos"]),
        .library(name: "DanubeMetricsTestKit", targets: ["DanubeMetricsTestKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .target(name: "DanubeMetricsWire"),
        .target(name: "DanubeMetricsProcess"),
        .target(name: "DanubeMetricsSync"),
        .target(name: "DanubeMetricsCatalog", dependencies: ["DanubeMetricsWire"]),
        .target(name: "CDanubeCells"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CCrypt", pkgConfig: "libcrypt", providers: [.apt(["libcrypt-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .target(
            name: "DanubeMetricsSystemd",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "DanubeMetricsEmitter",
            dependencies: ["DanubeMetricsWire", "DanubeMetricsProcess", "DanubeMetricsSync", "CDanubeCells", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "DanubeMetrics", dependencies: ["DanubeMetricsEmitter", "DanubeMetricsCatalog"]),
        .target(
            name: "DanubeMetricsSwiftMetrics",
            dependencies: [
                "DanubeMetricsEmitter", "DanubeMetricsCatalog",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "DanubeMetricsAgent",
            dependencies: [
                "DanubeMetricsWire",
                "DanubeMetricsCatalog",
                "DanubeMetricsProcess",
                "DanubeMetricsSync",
                "CZlib",
                "CMalloc",
                "CSnappy",
                "CCrypt",
                "CYAML",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "danube-metrics-agent",
            dependencies: [
                "DanubeMetricsAgent",
                "DanubeMetricsCatalog",
                "DanubeMetricsSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "danube-metrics-loadgen",
            dependencies: [
                "DanubeMetricsEmitter",
                "DanubeMetrics",
                "DanubeMetricsCatalog",
                "DanubeMetricsTestKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Child processes, a blocking HTTP client and an exposition parser, for tests and the chaos command.
        .target(name: "DanubeMetricsTestKit"),
        .executableTarget(
            name: "danube-metrics-chaos",
            dependencies: [
                "DanubeMetricsTestKit", "DanubeMetricsWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "DanubeMetricsWireTests", dependencies: ["DanubeMetricsWire"]),
        .testTarget(name: "DanubeMetricsEmitterTests", dependencies: ["DanubeMetricsEmitter", "DanubeMetricsSync", "DanubeMetricsTestKit"]),
        .testTarget(name: "DanubeMetricsCatalogTests", dependencies: ["DanubeMetricsCatalog", "DanubeMetricsWire"]),
        .testTarget(
            name: "DanubeMetricsTests",
            dependencies: [
                "DanubeMetrics", "DanubeMetricsSwiftMetrics", "DanubeMetricsCatalog", "DanubeMetricsEmitter",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "DanubeMetricsSystemdTests",
            dependencies: ["DanubeMetricsSystemd", .product(name: "Logging", package: "swift-log")]
        ),
        // Counts the test process's allocations (interposes malloc): only for the budget tests.
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(
            name: "AllocationBudgetTests",
            dependencies: [
                "CAllocationCounter", "DanubeMetricsAgent", "DanubeMetricsEmitter", "DanubeMetricsWire", "DanubeMetricsCatalog",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DanubeMetricsAgentTests",
            dependencies: [
                "CZlib",
                "DanubeMetricsAgent", "DanubeMetricsEmitter", "DanubeMetricsWire", "DanubeMetricsCatalog",
                "DanubeMetrics", "DanubeMetricsSwiftMetrics", "DanubeMetricsTestKit",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
