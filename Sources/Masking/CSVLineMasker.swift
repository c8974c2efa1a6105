import KaifangCore

/// Masks records into CSV lines through a compiled plan: the loop of `kaifang mask`. It lives
/// in this module so that the plan's operations inline into it (one switch per cell, no call).
public struct CSVLineMasker {
    /// One output column: the input field it reads, the plan column it applies, and whether
    /// its output must be checked for bytes that force quoting.
    struct Output {
        let field: Int
        let column: Int
        let kernel: Kernel
        let check: Operation.OutputBytes
        /// How many output columns from this one on keep consecutive text fields (at least 1):
        /// from clean input, such a run is copied as one span, delimiters included.
        var run: Int
        /// How the raw value becomes the value a version stores, before the kernel applies.
        let stored: StoredText.Kind
        /// An integer or number column the plan generalizes as a number: the parsed value is
        /// banded as it is (as for a number read from a version), with no stored text made.
        let bandsNumber: Bool
        /// For such a column, the integer-digit counts of plain decimals known to be in range.
        let admitted: Range<Int>
        /// Whether the column stores fractions (a number, not an integer).
        let fractions: Bool
    }

    public let plan: MaskingPlan
    let outputs: [Output]

    /// - Parameter columns: for each output column in order, the record's field index and the
    ///   plan's column index.
    public init(plan: MaskingPlan, columns: [(field: Int, column: Int)]) {
        self.plan = plan
        var outputs = columns.map { c -> Output in
            let stored = StoredText.Kind(plan.columns[c.column].field)
            var numeric = false, fractions = false
            switch stored {
            case .integer: numeric = true
            case .number: numeric = true; fractions = true
            default: break
            }
            return Output(field: c.field, column: c.column, kernel: plan.kernels[c.column], check: plan.ops[c.column].outputBytes, run: 1,
                          stored: stored, bandsNumber: numeric && plan.ops[c.column] == .generalizeNumber,
                          admitted: stored.admittedIntDigits(), fractions: fractions)
        }
        for i in outputs.indices.reversed() where i + 1 < outputs.count {
            let (o, next) = (outputs[i], outputs[i + 1])
            if o.kernel == .keep && next.kernel == .keep && o.stored == .text && next.stored == .text && next.field == o.field + 1 {
                outputs[i].run = next.run + 1
            }
        }
        self.outputs = outputs
    }

    /// Appends `record` masked, as one CSV line ending in LF.
    /// - Parameters:
    ///   - cleanInput: the record's fields hold no comma, quote, CR or LF (the reader read it in
    ///     place from a comma-separated file), so unchanged input bytes need no quoting check.
    ///   - row: the row's number, which seeds noise.
    ///   - typed: a buffer for the stored form of typed values, reused from record to record.
    public func append(_ record: FieldSpans, cleanInput: Bool, row: Int64, scratch: inout MaskScratch, typed: inout ByteBuilder, into out: inout ByteBuilder) {
        outputs.withUnsafeBufferPointer { outputs in
            var i = 0
            while i < outputs.count {
                if i > 0 { out.append(0x2C) }
                let o = outputs[i]
                if o.run > 1 && cleanInput && !Self.anyStartsBlank(record, from: o.field, count: o.run) {
                    // Kept text fields side by side in a comma-separated record: one copy, with
                    // the commas between them.
                    let first = record.field(o.field), last = record.field(o.field + o.run - 1)
                    out.append(contentsOf: UnsafeBufferPointer(start: first.baseAddress, count: last.baseAddress! + last.count - first.baseAddress!))
                    i += o.run
                    continue
                }
                i += 1
                if o.kernel == .suppress { continue }   // an empty field
                var value = record.field(o.field)
                if value.isEmpty { continue }
                switch o.stored {
                case .text:
                    if ValueParser.isSpace(value[0]) && StoredText.isBlank(value) { continue }
                case _ where o.bandsNumber:
                    // A plain decimal whose digits alone show it in range is banded from them.
                    if let shape = Apply.plainDecimalShape(value), o.admitted.contains(shape.intDigits), o.fractions || !shape.fraction {
                        Apply.band(lead: value[0], intDigits: shape.intDigits, &out)
                        continue
                    }
                    guard let v = StoredText.number(value, o.stored) else { continue }
                    let mark = out.count
                    if plan.applyNumber(column: o.column, v, into: &out) != true { out.truncate(to: mark) }
                    continue
                default:
                    guard StoredText.canonical(value, o.stored, into: &typed) else { continue }
                    value = typed.bytes
                }
                let mark = out.count
                if plan.apply(o.kernel, column: o.column, value, row: row, scratch: &scratch, into: &out) {
                    switch o.check {
                    case .generated: break
                    case .input: if !cleanInput { CSVBytes.quoteTail(&out, from: mark) }
                    case .any: CSVBytes.quoteTail(&out, from: mark)
                    }
                } else {
                    out.truncate(to: mark)
                }
            }
        }
        out.append(0x0A)
    }

    /// Whether one of `count` fields from `from` on starts with a space or tab (it may be
    /// blank, which a version stores as null).
    @inline(__always)
    static func anyStartsBlank(_ record: FieldSpans, from: Int, count: Int) -> Bool {
        for k in from..<(from + count) {
            let f = record.field(k)
            if let b = f.first, ValueParser.isSpace(b) { return true }
        }
        return false
    }
}
