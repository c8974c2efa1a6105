import KaifangCore

/// Masks records into CSV lines through a compiled plan: the loop of `kaifang mask`. It lives
/// in this module so that the plan's operations inline into it (one switch per cell, no call).
public struct CSVLineMasker {
    /// One output column: the input field it reads, the plan column it applies, and whether
    /// its output must be checked for bytes that force quoting.
    @usableFromInline struct Output {
        let field: Int
        let column: Int
        let op: Operation
        let check: Operation.OutputBytes
    }

    public let plan: MaskingPlan
    let outputs: [Output]

    /// - Parameter columns: for each output column in order, the record's field index and the
    ///   plan's column index.
    public init(plan: MaskingPlan, columns: [(field: Int, column: Int)]) {
        self.plan = plan
        outputs = columns.map { Output(field: $0.field, column: $0.column, op: plan.ops[$0.column], check: plan.ops[$0.column].outputBytes) }
    }

    /// Appends `record` masked, as one CSV line ending in LF.
    /// - Parameters:
    ///   - cleanInput: the record's fields hold no comma, quote, CR or LF (the reader read it in
    ///     place from a comma-separated file), so unchanged input bytes need no quoting check.
    ///   - row: the row's number, which seeds noise.
    public func append(_ record: FieldSpans, cleanInput: Bool, row: Int64, scratch: inout MaskScratch, into out: inout ByteBuilder) {
        outputs.withUnsafeBufferPointer { outputs in
            for i in 0..<outputs.count {
                if i > 0 { out.append(0x2C) }
                let o = outputs[i]
                let value = record.field(o.field)
                if value.isEmpty { continue }
                let mark = out.count
                if plan.apply(o.op, column: o.column, value, row: row, scratch: &scratch, into: &out) {
                    switch o.check {
                    case .generated: break
                    case .input: if !cleanInput { CSVBytes.quoteTail(&out, from: mark) }
                    case .folded: CSVBytes.quoteTail(&out, from: mark)
                    }
                } else {
                    out.truncate(to: mark)
                }
            }
        }
        out.append(0x0A)
    }
}
