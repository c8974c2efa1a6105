/// A growable byte buffer for the hot loops (masking, row encoding): one owner, no copy on
/// write. Appending to an `[UInt8]` checks that the array is uniquely referenced and retains
/// it at every call — about a fifth of a masking run's time went there. This buffer is
/// noncopyable, so it cannot be shared, and an append is a bounds check and a store.
public struct ByteBuilder: ~Copyable {
    // Internal storage, usable from inlined code: the methods below are @inlinable so that an
    // append compiles to a compare and a store in the caller's module.
    @usableFromInline var _base: UnsafeMutablePointer<UInt8>
    @usableFromInline var _count: Int
    @usableFromInline var _capacity: Int
    /// False while the bytes are in storage lent by the caller (`init(borrowing:capacity:)`).
    @usableFromInline var _owned: Bool

    /// The first byte; valid until the next append (which may move the storage).
    @inlinable @inline(__always) public var base: UnsafeMutablePointer<UInt8> { _base }
    /// Bytes in the buffer.
    @inlinable @inline(__always) public var count: Int { _count }
    /// Bytes it holds before it must grow.
    @inlinable @inline(__always) public var capacity: Int { _capacity }

    public init(capacity: Int = 64) {
        _capacity = max(capacity, 16)
        _base = .allocate(capacity: _capacity)
        _count = 0
        _owned = true
    }

    /// A builder that writes into `capacity` bytes at `base`, which stay the caller's and must
    /// outlive it: while the bytes fit, they are written there (a response's own buffer, so
    /// the page is not copied into it); growing moves them into storage of the builder's own.
    public init(borrowing base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        _base = base
        _capacity = capacity
        _count = 0
        _owned = false
    }

    /// Whether the bytes are still in the storage given to `init(borrowing:capacity:)`.
    @inlinable public var isBorrowed: Bool { !_owned }

    deinit { if _owned { _base.deallocate() } }

    @inlinable @inline(__always) public var isEmpty: Bool { count == 0 }

    /// The bytes, valid until the buffer is next changed.
    @inlinable @inline(__always) public var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    /// A copy of the bytes as an array.
    @inlinable public var array: [UInt8] { Array(bytes) }

    @inlinable @inline(__always) public subscript(i: Int) -> UInt8 {
        get { precondition(i >= 0 && i < count, "ByteBuilder index out of range"); return base[i] }
        set { precondition(i >= 0 && i < count, "ByteBuilder index out of range"); _base[i] = newValue }
    }

    @inlinable @inline(__always) public mutating func append(_ b: UInt8) {
        if count == capacity { grow(toHold: count + 1) }
        _base[_count] = b
        _count += 1
    }

    @inlinable @inline(__always) public mutating func append(contentsOf b: UnsafeBufferPointer<UInt8>) {
        let n = b.count
        guard n > 0, let from = b.baseAddress else { return }
        if count + n > capacity { grow(toHold: count + n) }
        let to = UnsafeMutableRawPointer(base + count)
        let src = UnsafeRawPointer(from)
        if n >= 4 && n <= 16 {
            // A short value (most masked and kept cells): two overlapping loads and stores of
            // 8 (or 4) bytes, both inside the source, instead of a call to memmove.
            if n >= 8 {
                let head = src.loadUnaligned(as: UInt64.self), tail = src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
                to.storeBytes(of: head, as: UInt64.self)
                to.storeBytes(of: tail, toByteOffset: n - 8, as: UInt64.self)
            } else {
                let head = src.loadUnaligned(as: UInt32.self), tail = src.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
                to.storeBytes(of: head, as: UInt32.self)
                to.storeBytes(of: tail, toByteOffset: n - 4, as: UInt32.self)
            }
        } else if n < 4 {
            // One to three bytes: first, middle, last.
            let t = base + count
            t[0] = from[0]; t[n >> 1] = from[n >> 1]; t[n - 1] = from[n - 1]
        } else {
            (base + count).update(from: from, count: n)
        }
        _count += n
    }

    @inlinable @inline(__always) public mutating func append(contentsOf a: [UInt8]) {
        a.withUnsafeBufferPointer { append(contentsOf: $0) }
    }

    @inlinable @inline(__always) public mutating func append(contentsOf a: ArraySlice<UInt8>) {
        a.withUnsafeBufferPointer { append(contentsOf: $0) }
    }

    /// Appends `n` copies of `b`.
    @inlinable @inline(__always) public mutating func append(repeating b: UInt8, count n: Int) {
        guard n > 0 else { return }
        if count + 16 <= capacity && n <= 16 {
            // A few stars or zeros: two unaligned word stores (bytes past n are overwritten
            // later or never read), not a call to memset.
            let word = UInt64(b) &* 0x0101_0101_0101_0101
            let raw = UnsafeMutableRawPointer(base + count)
            raw.storeBytes(of: word, as: UInt64.self)
            raw.storeBytes(of: word, toByteOffset: 8, as: UInt64.self)
            _count += n
            return
        }
        if count + n > capacity { grow(toHold: count + n) }
        (base + count).update(repeating: b, count: n)
        _count += n
    }

    /// Appends an integer's decimal digits (what SQLite's text of an integer is): the digits
    /// counted first, then written from the last one straight into the buffer.
    @inlinable public mutating func append(decimal v: Int64) {
        if count + 20 > capacity { grow(toHold: count + 20) }   // a sign and 19 digits
        if v < 0 { _base[_count] = 0x2D; _count += 1 }
        var m = v.magnitude
        var digits = 1
        var power: UInt64 = 10
        // An Int64's magnitude is below 10^19: at most 19 digits.
        while digits < 19 && m >= power { digits += 1; power &*= 10 }
        var i = _count + digits
        _count = i
        repeat { i -= 1; _base[i] = UInt8(truncatingIfNeeded: m % 10) &+ 0x30; m /= 10 } while m > 0
    }

    /// Appends a string's UTF-8.
    @inlinable public mutating func append(_ s: String) {
        var copy = s
        copy.withUTF8 { append(contentsOf: $0) }
    }

    /// Keeps the first `n` bytes.
    @inlinable @inline(__always) public mutating func truncate(to n: Int) {
        precondition(n >= 0 && n <= count, "ByteBuilder truncate out of range")
        _count = n
    }

    /// Empties the buffer, keeping its storage.
    @inlinable @inline(__always) public mutating func removeAll() { _count = 0 }

    /// Removes `n` bytes at the front.
    @inlinable public mutating func removeFirst(_ n: Int) {
        precondition(n >= 0 && n <= count, "ByteBuilder removeFirst out of range")
        if n == 0 { return }
        UnsafeMutableRawPointer(base).copyMemory(from: base + n, byteCount: count - n) // may overlap: memmove
        _count -= n
    }

    @usableFromInline @inline(never) mutating func grow(toHold need: Int) {
        var c = max(capacity * 2, 16)
        while c < need { c *= 2 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        nb.update(from: _base, count: _count)
        if _owned { _base.deallocate() }
        _base = nb
        _capacity = c
        _owned = true
    }
}
