// libFuzzer target: the rows API's cursor decoder over arbitrary text; what decodes must
// re-encode to a cursor that decodes to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCursor(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for (col, desc) in [(nil, false), (Optional(2), true)] as [(Int?, Bool)] {
        if let (value, row) = RowCursor.decode(text, sortColumn: col, descending: desc) {
            let again = RowCursor.encode(sortColumn: col, descending: desc, value: value, row: row)
            guard let (v2, r2) = RowCursor.decode(again, sortColumn: col, descending: desc) else { preconditionFailure("re-encoded cursor does not decode") }
            precondition(r2 == row)
            if case .real(let a) = value, case .real(let b) = v2 { precondition(a.bitPattern == b.bitPattern) } else { precondition(v2 == value) }
        }
    }
    return 0
}
