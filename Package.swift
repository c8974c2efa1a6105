// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Kaifang",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kaifang", targets: ["kaifang"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        // Already built for the OpenAPI generator; the portal reads the spec with it for /docs/api.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // Hummingbird's own dependencies, named because the server imports them directly.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // The shared store for deployments of several replicas (no ORM).
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Domain types shared by every module: tiers, levels, semantic types, manifests, roles.
        .target(name: "KaifangCore"),
        // Detectors, masking operators, policy compiler, pseudonymizer. Foundation and Crypto only.
        .target(name: "Masking", dependencies: [
            "KaifangCore",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // libarchive, for .zip / .tar.gz bundles.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        // The CSV reader's structural index: vector compares with movemask (AVX2/SSE2), which
        // Swift's SIMD types cannot express.
        .target(name: "CByteScan"),
        // CSV / JSONL / bundle readers, encodings, validation.
        .target(name: "Ingest", dependencies: ["KaifangCore", "Masking", "CArchive", "CByteScan"]),
        // Hash-chained audit log: canonical JSON, chain hashing, verification.
        .target(name: "Audit", dependencies: [
            "KaifangCore",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // A dataset version's file: an immutable SQLite file, written page by page (or by SQLite
        // alone), read through SQLite or straight from its pages, with its row sets.
        .target(name: "VersionFormat", dependencies: [
            "KaifangCore",
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The catalog database (GRDB): datasets, versions, keys, licenses, jobs, the audit chain.
        .target(name: "Storage", dependencies: [
            "KaifangCore", "Audit", "VersionFormat",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The catalog in PostgreSQL, for several stateless replicas: the same store interface as
        // the embedded catalog, version files fetched into a verified local cache, jobs leased.
        .target(name: "PostgresStore", dependencies: [
            "KaifangCore", "Storage", "VersionFormat", "Audit",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
            // `store copy` reads the embedded catalog it copies.
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // The sandbox's second wall around SQLite: sqlite3_db_config (variadic, so C), authorizer,
        // limits and the deadline progress handler.
        .target(name: "CSQLiteGuard", linkerSettings: [.linkedLibrary("sqlite3")]),
        // SQL parser and guard, runner, disclosure control, DP, synthetic data.
        .target(name: "Sandbox", dependencies: [
            "KaifangCore", "Masking", "Storage", "VersionFormat", "Audit", "CSQLiteGuard",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        // What the CLI and the server both do to data: the import pipeline (files in, versions
        // out), the one masking-plan builder, masked rows as bytes and exports, the steward's
        // operations (publish with the k-anonymity gate, classify), harvesting, the demo's data.
        .target(name: "Publishing", dependencies: [
            "KaifangCore", "Masking", "Ingest", "Storage", "VersionFormat", "Audit",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Generated from openapi/openapi.yaml (symlinked into the target folder).
        .target(name: "KaifangAPI", dependencies: [
            .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
        ], plugins: [
            .plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator"),
        ]),
        // The HTTP server only: the OpenAPI handlers and the rows route, auth, rate limits,
        // problem+json, metrics, the portal, and the services it runs (sandbox workers, harvest
        // scheduler, catalog checkpoints).
        .target(name: "KaifangServer", dependencies: [
            "KaifangCore", "Masking", "Ingest", "Storage", "CSQLiteGuard", "VersionFormat", "Sandbox", "Audit", "Publishing", "KaifangAPI",
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Mustache", package: "swift-mustache"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            // Entity tags of served content (SHA-256).
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["Embedded"], plugins: ["EmbedResources"]),
        // Embeds Sources/<target>/Embedded/* (the spec, later the portal's templates and CSS)
        // into the binary, so `kaifang` runs from anywhere without a resource bundle.
        .executableTarget(name: "embed-tool"),
        .plugin(name: "EmbedResources", capability: .buildTool(), dependencies: ["embed-tool"]),
        // The steward CLI.
        .executableTarget(name: "kaifang", dependencies: [
            "KaifangCore", "Masking", "Ingest", "Storage", "VersionFormat", "PostgresStore", "Sandbox", "Audit", "Publishing", "KaifangServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "KaifangCoreTests", dependencies: ["KaifangCore"]),
        .testTarget(name: "MaskingTests", dependencies: ["Masking", "Ingest", "KaifangCore", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "KaifangCore", "CByteScan"]),
        .testTarget(name: "AuditTests", dependencies: ["Audit"]),
        // What several test targets share: the test PostgreSQL server and fresh schemas on it.
        .target(name: "KaifangTestSupport", dependencies: [
            "PostgresStore", "Storage",
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ], path: "Tests/Support"),
        // Three `kaifang serve` replicas over one PostgreSQL store, one of them killed mid-load.
        .testTarget(name: "ReplicaTests", dependencies: ["KaifangTestSupport", "PostgresStore"]),
        // The store conformance suite: every case against the embedded store and PostgreSQL.
        .testTarget(name: "StoreTests", dependencies: [
            "Storage", "VersionFormat", "PostgresStore", "KaifangCore", "Audit", "KaifangTestSupport",
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ]),
        .testTarget(name: "VersionFormatTests", dependencies: [
            "VersionFormat", "KaifangCore",
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        .testTarget(name: "StorageTests", dependencies: [
            "Storage", "VersionFormat", "Audit", "KaifangCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "KaifangCore", "VersionFormat"]),
        .testTarget(name: "KaifangAPITests", dependencies: ["KaifangAPI"]),
        // End-to-end tests start the real server on a loopback port and talk to it with URLSession
        // (HummingbirdTesting would add async-http-client and a second TLS stack to every build).
        .testTarget(name: "KaifangServerTests", dependencies: [
            "KaifangServer", "Publishing", "KaifangCore", "Masking", "Storage", "VersionFormat", "Ingest", "Sandbox", "Audit", "PostgresStore", "KaifangTestSupport",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            // A webhook receiver on loopback, and the signatures it checks.
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "kaifangTests", dependencies: [
            "kaifang", "KaifangCore", "Storage", "VersionFormat", "Audit", "Sandbox",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
    ]
)
