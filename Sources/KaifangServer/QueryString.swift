/// A query string (or an `application/x-www-form-urlencoded` body) split into its items once,
/// on bytes, each key and value form-decoded: `+` is a space, `%XX` a byte; a component that is
/// not valid percent-encoded UTF-8 stays as it was given. Empty items (`a=1&&b=2`) are
/// skipped; an item without `=` has the empty value; repeated keys keep their order.
struct QueryString {
    private(set) var items: [(key: String, value: String)] = []

    init(_ raw: String) {
        var raw = raw
        raw.withUTF8 { b in
            var start = 0
            while start <= b.count {
                var end = start
                while end < b.count && b[end] != 0x26 { end += 1 }
                if end > start {
                    var eq = start
                    while eq < end && b[eq] != 0x3D { eq += 1 }
                    let key = Self.decode(UnsafeBufferPointer(rebasing: b[start..<eq]))
                    let value = eq < end ? Self.decode(UnsafeBufferPointer(rebasing: b[(eq + 1)..<end])) : ""
                    items.append((key, value))
                }
                start = end + 1
            }
        }
    }

    /// The first value given for `key`.
    subscript(_ key: String) -> String? {
        for item in items where item.key == key { return item.value }
        return nil
    }

    /// Form decoding of one component.
    static func decode(_ b: UnsafeBufferPointer<UInt8>) -> String {
        guard b.contains(where: { $0 == 0x25 || $0 == 0x2B }) else { return String(decoding: b, as: UTF8.self) }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x37
            case 0x61...0x66: return c - 0x57
            default: return nil
            }
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: b.count) { out -> String in
            var i = 0, n = 0
            while i < b.count {
                let c = b[i]
                if c == 0x2B {
                    out[n] = 0x20
                } else if c == 0x25 {
                    guard i + 2 < b.count, let hi = hex(b[i + 1]), let lo = hex(b[i + 2]) else { return String(decoding: b, as: UTF8.self) }
                    out[n] = hi << 4 | lo
                    i += 2
                } else {
                    out[n] = c
                }
                n += 1
                i += 1
            }
            return String(validating: UnsafeBufferPointer(rebasing: out[..<n]), as: UTF8.self) ?? String(decoding: b, as: UTF8.self)
        }
    }
}
