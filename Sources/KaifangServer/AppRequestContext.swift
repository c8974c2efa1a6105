import Hummingbird
import NIOCore

/// The request context: Hummingbird's core storage plus the peer's address (for per-address
/// rate limits of anonymous callers).
public struct AppRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
