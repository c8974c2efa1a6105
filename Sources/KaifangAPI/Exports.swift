// The generated types and the `APIProtocol` of openapi/openapi.yaml live in this module.
// The spec is the source of truth; `openapi.yaml` here is a symlink to ../../openapi/openapi.yaml.

/// Facts about the contract this module was generated from.
package enum APIContract {
    /// The spec's file, relative to the repository root.
    package static let specPath = "openapi/openapi.yaml"
}
