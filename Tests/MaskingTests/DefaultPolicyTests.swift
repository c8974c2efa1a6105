import KaifangCore
import Masking
import Testing

/// The default action matrix of docs/policy.md.
@Suite struct DefaultPolicyTests {
    @Test(arguments: [
        (Level.L1, View.public, ActionName.keep), (.L1, .licensed, .keep),
        (.L2, .public, .generalize), (.L2, .licensed, .keep),
        (.L3, .public, .mask), (.L3, .licensed, .pseudonymize),
        (.L4, .public, .suppress), (.L4, .licensed, .mask),
    ])
    func theMatrixByLevelAndView(level: Level, view: View, expected: ActionName) {
        let f = FieldSpec(name: "x", type: .date, level: level)
        #expect(DefaultPolicy.action(for: f, view: view) == expected)
    }

    @Test func l2WithoutAGeneralizationIsKept() {
        #expect(DefaultPolicy.action(for: FieldSpec(name: "g", type: .string, semantic: .category, level: .L2), view: .public) == .keep)
        #expect(DefaultPolicy.action(for: FieldSpec(name: "a", type: .string, semantic: .address, level: .L2), view: .public) == .generalize)
    }

    @Test func aStewardOverrideWinsExceptInTheStewardView() {
        let f = FieldSpec(name: "note", type: .string, level: .L2, action: .suppress)
        #expect(DefaultPolicy.action(for: f, view: .public) == .suppress)
        #expect(DefaultPolicy.action(for: f, view: .licensed) == .suppress)
        #expect(DefaultPolicy.action(for: f, view: .steward) == .keep)
    }
}
