import Foundation
@testable import Storage
import Testing

/// `catalog.changes`: the mark a cache is kept under must move with every bump, in this process
/// or another, and with the file removed or replaced — the mark is read through a descriptor
/// kept open, so these are the cases where it could go stale.
@Suite struct ChangeSignalTests {
    let dir: String
    init() throws {
        dir = NSTemporaryDirectory() + "kaifang-changes-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    @Test func theMarkMovesWithEveryBumpRemovalAndReplacement() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/catalog.changes"
        let signal = ChangeSignal(path: path)
        #expect(signal.mark() == nil)
        signal.bump()
        let first = try #require(signal.mark())
        #expect(signal.mark() == first)
        // Another writer (a second instance stands for another process) appends to the same file.
        ChangeSignal(path: path).bump()
        let second = try #require(signal.mark())
        #expect(second != first && second.size == first.size + 1)
        // Removed: no mark, so nothing is cached, until the next write creates it again.
        try FileManager.default.removeItem(atPath: path)
        #expect(signal.mark() == nil)
        ChangeSignal(path: path).bump()
        let third = try #require(signal.mark())
        #expect(third != second)
        // Replaced by rename with a file of the same size: a different inode, a different mark.
        let other = dir + "/other"
        try Data("\n".utf8).write(to: URL(fileURLWithPath: other))
        #expect(rename(other, path) == 0)
        let fourth = try #require(signal.mark())
        #expect(fourth != third && fourth.size == third.size)
        signal.bump()
        #expect(try #require(signal.mark()) != fourth)
    }
}
